// test_toy_loss_emul.c: the per-element bodies of nn/cuda/loss_vae.cu
// (nn/cuda/loss_vae_terms.h, the code the kernels run for element i) run on
// the HOST, looped over i as the grid-stride loops do, against the CPU ops of
// nn/loss.h (nn/cpu/loss_vae.c, tested against numpy in tests/nn/test_loss):
// every gradient accumulated onto a non-zero start, every loss value as the
// sum of the terms over the count the kernels divide by. Inputs reach both
// sides of the logvar clamp (|logvar| up to 40 > 30, 20) and both sides of
// the magnitude threshold, and include logvar exactly at the clamp bounds.
// Runs everywhere (no GPU); the device itself: test_toy_cuda.
//
// Tolerance: the host bodies and the CPU ops evaluate the same expressions in
// the same precision (the scales passed as the kernels' wrappers form them,
// e.g. (double)dloss / B), so the gradients must agree to the last bit
// (compared exactly) and the values to double rounding of a different
// summation order (relative 1e-12). This covers the formulas only: nvcc
// contracts a*b + c into fused multiply-adds on the device (this host build
// does not: -std=c11 turns gcc's contraction off), and the device has its own exp, so the GPU's last bits may differ
// (test_toy_cuda's tolerances allow for that).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "nn/cuda/loss_vae_terms.h"
#include "nn/loss.h"
#include "tests/util.h"

enum { B = 37, D = 3, N = B * D };

static float mu[N], lv[N], eps[N], dz[N];

static void inputs(uint64_t seed) {
    fill_normal(mu, N, seed, 1.5f);        // |mu| beyond tau = 1 for many elements
    fill_normal(lv, N, seed + 1, 15.0f);   // some beyond the clamp at -30 and 20
    fill_normal(eps, N, seed + 2, 1.0f);
    fill_normal(dz, N, seed + 3, 0.5f);
    lv[0] = LOGVAR_MIN, lv[1] = LOGVAR_MAX, lv[2] = -40.0f, lv[3] = 25.0f;
}

static void start(float *a, float *b, uint64_t seed) {   // non-zero starts (accumulation)
    fill_normal(a, N, seed, 0.1f);
    memcpy(b, a, sizeof(float) * N);
}

static void expect_same(const char *what, const float *emu, const float *cpu) {
    int bad = 0;
    for (int i = 0; i < N; i++)
        if (memcmp(&emu[i], &cpu[i], sizeof(float)) && bad++ < 3)
            cr_log_error("%s[%d]: emulated %.9g cpu %.9g", what, i, emu[i], cpu[i]);
    cr_expect_eq(bad, 0, "%s: %d of %d elements differ", what, bad, N);
}

static void expect_value(const char *what, double emu, double cpu) {
    cr_expect(fabs(emu - cpu) <= 1e-12 * fabs(cpu), "%s: emulated %.17g cpu %.17g", what, emu, cpu);
}

Test(toy_loss_emul, kl_value_and_gradients) {
    inputs(11);
    double s = 0;
    for (int i = 0; i < N; i++) s += lvt_kl_term(mu[i], lv[i]);
    expect_value("kl", s / (2.0 * B), kl_loss_forward(mu, lv, B, D));   // loss_vae.cu divides by 2B
    float a[N], b[N], c[N], d[N];
    start(a, b, 20);
    start(c, d, 21);
    for (int i = 0; i < N; i++) lvt_kl_bwd(a, c, mu, lv, i, (double)0.7f / B);
    kl_loss_backward(b, d, mu, lv, B, D, 0.7f);
    expect_same("kl dmu", a, b);
    expect_same("kl dlogvar", c, d);
}

Test(toy_loss_emul, ve_values_and_gradients_all_forms) {
    inputs(12);
    for (int kind = VE_INV_VAR; kind <= VE_NEG_LOGSTD; kind++) {
        double s = 0;
        for (int i = 0; i < N; i++) s += lvt_ve_term(lv[i], kind, 1e-6f);
        expect_value("ve", s / N, ve_loss_forward(lv, N, (ve_kind)kind, 1e-6f));
        float a[N], b[N];
        start(a, b, 30 + kind);
        for (int i = 0; i < N; i++) lvt_ve_bwd(a, lv, i, kind, 1e-6f, (double)1e-3f / N);
        ve_loss_backward(b, lv, N, (ve_kind)kind, 1e-6f, 1e-3f);
        expect_same(kind == VE_INV_VAR ? "ve inv-var" : kind == VE_NEG_VAR ? "ve neg-var" : "ve neg-logstd", a, b);
    }
}

Test(toy_loss_emul, magnitude_elementwise_and_global) {
    inputs(13);
    const float tau = 1.0f;
    double s = 0;
    for (int i = 0; i < N; i++) s += lvt_mag_term(mu[i], tau);
    expect_value("mag elem", s / N, mag_reg_elem_forward(mu, N, tau));
    float a[N], b[N];
    start(a, b, 40);
    for (int i = 0; i < N; i++) lvt_mag_elem_bwd(a, mu, i, tau, (double)0.5f / N);
    mag_reg_elem_backward(b, mu, N, tau, 0.5f);
    expect_same("mag elem dmu", a, b);
    // global: mu as (B, C, inner) two ways: C = 1 (the toy: one RMS), C = D
    // with inner 1 (one RMS per coordinate); tau below the RMS so the
    // gradient is not zero, and above it (zero)
    const int shapes[2][2] = {{1, D}, {D, 1}};
    const float taus[2] = {0.5f, 50.0f};
    for (int sh = 0; sh < 2; sh++)
        for (int k = 0; k < 2; k++) {
            int C = shapes[sh][0], inner = shapes[sh][1];
            double ssq[D] = {0};
            for (int i = 0; i < N; i++) ssq[(i / inner) % C] += (double)mu[i] * mu[i];
            double v = 0;
            for (int c = 0; c < C; c++) {   // k_lv_global_final's terms
                double e = sqrt(ssq[c] / ((double)B * inner)) - taus[k];
                v += e > 0.0 ? expm1(e) : 0.0;
            }
            expect_value("mag global", v / C, mag_reg_global_forward(mu, B, C, inner, taus[k]));
            start(a, b, 50 + 2 * sh + k);
            for (int i = 0; i < N; i++) lvt_mag_global_bwd(a, mu, i, ssq, C, inner, (double)B * inner, taus[k], 0.8f);
            mag_reg_global_backward(b, mu, B, C, inner, taus[k], 0.8f);
            // ssq is summed in the CPU's order here (b, then inner), so exact
            expect_same(k == 0 ? "mag global dmu (active)" : "mag global dmu (below tau)", a, b);
        }
}

Test(toy_loss_emul, reparameterisation_forward_and_backward) {
    inputs(14);
    float z1[N], z2[N];
    for (int i = 0; i < N; i++) lvt_reparam_fwd(z1, mu, lv, eps, i);
    reparam_forward(z2, mu, lv, eps, N);
    expect_same("reparam z", z1, z2);
    float a[N], b[N], c[N], d[N];
    start(a, b, 60);
    start(c, d, 61);
    for (int i = 0; i < N; i++) lvt_reparam_bwd(a, c, dz, lv, eps, i);
    reparam_backward(b, d, dz, lv, eps, N);
    expect_same("reparam dmu", a, b);
    expect_same("reparam dlogvar", c, d);
}

Test(toy_loss_emul, mse_value) {
    inputs(15);
    double s = 0;
    for (int i = 0; i < N; i++) s += lvt_sq_diff(mu[i], eps[i]);
    expect_value("mse", s / N, mse_loss_forward(mu, eps, N));
}
