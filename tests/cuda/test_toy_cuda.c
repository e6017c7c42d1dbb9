// test_toy_cuda.c: the 2D toy's training on the GPU against the CPU (skips
// without a GPU; the host emulation of the new kernels is test_toy_loss_emul):
//  - nn/loss.h's latent-side ops through the op API on device memory
//    (nn/cuda/loss_vae.cu): every value (MSE, KL, VE in its three forms,
//    magnitude element-wise and global in three layouts, one with several
//    channels of several elements) against the CPU op; every gradient
//    (each op and output alone, VE in all three forms) accumulated onto a
//    non-zero start, each check shown able to fail (a dropped op, a wrong
//    channel index: see expect_grad); the reparameterised sample; a ragged
//    size larger than one pass of the reduction grid; two runs give
//    identical value bits;
//  - one toy tokenizer step (KL and VE) and one toy flow step (raw and
//    Fourier time) of the models moved with toy_tok_to_device /
//    toy_flow_to_device: the loss terms and every parameter gradient
//    (a move that fails at any of its steps: tests/models/test_to_device_failure);
//  - a second flow step on another batch (gradients zeroed again, staging
//    reused); the velocity of the GPU model. No optimizer steps here: Adam's
//    first steps move a weight by about lr * sign(g), so a gradient that
//    cancels to ~0 could differ by 2 lr between the sides whatever the GEMM
//    precision (the optimizer itself: test_parity_adam; losses over hundreds
//    of steps: tests/device/run.sh part toy_gpu).
// Tolerances (HACKING.md): values reduced in double, which differ by the
// order of additions, the device's exp and nvcc's FMA contraction (a
// rounding or so per term, nn/cuda/loss_vae_terms.h): relative 1e-12 for the loss
// ops on identical inputs. The loss ops' gradients: 1e-4 of each element's
// own magnitudes (expect_grad). Model gradients and outputs: CUDA fp32 against
// the CPU, 1e-4 relative with atol 1e-4 * max|reference| (cuBLAS and
// OpenBLAS sum the GEMMs in different orders; the same bound as
// test_parity_muon's), measured values logged by each check.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/cuda/cuda_test.h"

#ifdef VEL_HAVE_CUDA
#include "core/error.h"
#include "models/toy_flow.h"
#include "models/toy_tok.h"
#include "nn/backend.h"
#include "nn/device.h"
#include "nn/loss.h"

#define VTOL 1e-12
#define TOL 1e-4

static float *up(const float *h, int64_t n) {
    float *d = NULL;
    cr_assert_eq(device_alloc(DEVICE_CUDA, (void **)&d, sizeof(float) * (size_t)n), 0, "%s", vel_errmsg(VEL_ENOMEM));
    if (h) cr_assert_eq(device_copy(d, h, sizeof(float) * (size_t)n), 0);
    return d;
}

static void expect_dev(const char *what, const float *dev, const float *cpu, int64_t n) {
    float *h = malloc(sizeof(float) * (size_t)n);
    int e = nn_sync();
    cr_assert_eq(e, 0, "%s: %s", what, vel_errmsg(e));
    cr_assert_eq(device_copy(h, dev, sizeof(float) * (size_t)n), 0);
    double mx = 0;
    for (int64_t i = 0; i < n; i++) mx = fmax(mx, fabs(cpu[i]));
    cmp_result r = compare_f32(h, cpu, n, TOL * mx, TOL);
    cr_log_info("%s: n=%lld max_abs=%.3g max_rel=%.3g nmse=%.3g", what, (long long)n, r.max_abs, r.max_rel, r.nmse);
    expect_close_f32(what, h, cpu, n, TOL * mx, TOL);
    free(h);
}

static void expect_value(const char *what, double g, double c) {
    int e = nn_sync();
    cr_assert_eq(e, 0, "%s: %s", what, vel_errmsg(e));
    cr_log_info("%s: gpu %.17g cpu %.17g", what, g, c);
    cr_expect(fabs(g - c) <= VTOL * fabs(c) + 1e-300, "%s: gpu %.17g cpu %.17g", what, g, c);
}

// The device gradient against the CPU's, both accumulated onto `start` by
// one op. Element i may differ by 1e-4 of its own magnitudes, |start_i| +
// |op's share_i| (the fp32 rounding of the share and of the sum), with no
// atol taken from the largest element: a wrong small element fails too. The
// check must be able to fail: at least half of the elements carry a share
// that dropping the op would put 10 times past their bound.
static void expect_grad(const char *what, const float *dev, const float *ref, const float *start, int64_t n) {
    float *h = malloc(sizeof(float) * (size_t)n);
    int e = nn_sync();
    cr_assert_eq(e, 0, "%s: %s", what, vel_errmsg(e));
    cr_assert_eq(device_copy(h, dev, sizeof(float) * (size_t)n), 0);
    int64_t bad = 0, worst = 0, sensitive = 0;
    double worst_r = 0;
    for (int64_t i = 0; i < n; i++) {
        const double share = fabs((double)ref[i] - start[i]), tol = TOL * (fabs((double)start[i]) + share);
        const double d = fabs((double)h[i] - ref[i]), r = tol > 0 ? d / tol : (d > 0 ? INFINITY : 0);
        if (share > 10 * tol) sensitive++;
        if (!(d <= tol)) bad++;
        if (!(r <= worst_r)) worst_r = r, worst = i;
    }
    cr_log_info("%s: n=%lld worst at %lld: gpu %.9g cpu %.9g start %.9g (%.3g of its bound); sensitive %lld", what,
                (long long)n, (long long)worst, h[worst], ref[worst], start[worst], worst_r, (long long)sensitive);
    cr_expect(bad == 0, "%s: %lld of %lld elements past 1e-4 of |start| + |share|; worst at %lld: gpu %.9g cpu %.9g "
              "start %.9g", what, (long long)bad, (long long)n, (long long)worst, h[worst], ref[worst], start[worst]);
    cr_expect(2 * sensitive >= n, "%s: only %lld of %lld elements would notice a dropped op", what,
              (long long)sensitive, (long long)n);
    free(h);
}

// The latent-side ops on (B, C, inner) latents, n = B * C * inner elements
// (KL per image C * inner; the global magnitude in three views: one RMS
// (B, 1, C*inner), one per coordinate (B, C*inner, 1), and (B, C, inner)).
static void loss_ops(int B, int C, int inner, uint64_t seed) {
    const int P = C * inner;
    const int64_t n = (int64_t)B * P;
    float *mu = malloc(n * 4), *lv = malloc(n * 4), *lvg = malloc(n * 4), *eps = malloc(n * 4);
    float *g0 = malloc(n * 4), *g = malloc(n * 4);
    fill_normal(mu, n, seed, 1.5f);
    for (int64_t i = 0; i < n; i++) mu[i] *= 1.0f + 0.25f * (float)(i % P);   // every channel its own RMS
    fill_normal(lv, n, seed + 1, 15.0f);   // values: both sides of the clamp
    fill_normal(lvg, n, seed + 4, 3.0f);   // gradients: mostly inside, plus the edges
    fill_normal(eps, n, seed + 2, 1.0f);
    fill_normal(g0, n, seed + 3, 0.1f);    // the non-zero start of every gradient
    lv[0] = LOGVAR_MIN, lv[n - 1] = LOGVAR_MAX;
    lvg[0] = LOGVAR_MIN, lvg[1] = LOGVAR_MIN - 5.0f, lvg[n - 2] = LOGVAR_MAX + 5.0f, lvg[n - 1] = LOGVAR_MAX;
    float *dmu = up(mu, n), *dlv = up(lv, n), *dlvg = up(lvg, n), *deps = up(eps, n), *dg = up(g0, n);
    expect_value("mse", mse_loss_forward(dmu, deps, n), mse_loss_forward(mu, eps, n));
    double v1 = kl_loss_forward(dmu, dlv, B, P), v2 = kl_loss_forward(dmu, dlv, B, P);
    expect_value("kl", v1, kl_loss_forward(mu, lv, B, P));
    cr_expect(memcmp(&v1, &v2, sizeof v1) == 0, "kl: two runs differ: %.17g %.17g", v1, v2);
    for (int k = VE_INV_VAR; k <= VE_NEG_LOGSTD; k++)
        expect_value("ve", ve_loss_forward(dlv, n, (ve_kind)k, 1e-6f), ve_loss_forward(lv, n, (ve_kind)k, 1e-6f));
    expect_value("mag elem", mag_reg_elem_forward(dmu, n, 1.0f), mag_reg_elem_forward(mu, n, 1.0f));
    const int views[3][2] = {{1, P}, {P, 1}, {C, inner}};
    for (int v = 0; v < 3; v++)
        expect_value("mag global", mag_reg_global_forward(dmu, B, views[v][0], views[v][1], 0.5f),
                     mag_reg_global_forward(mu, B, views[v][0], views[v][1], 0.5f));
    // Gradients: one op per check, each onto a fresh copy of the start g0,
    // its dloss chosen so that its share per element is of order mu or
    // sigma^2 (a mean over n scaled by n), not lost next to the start.
    const float fn = (float)n;
#define GRAD_CHECK(what, host_call, dev_call)                                     \
    do {                                                                          \
        memcpy(g, g0, n * 4);                                                     \
        cr_assert_eq(device_copy(dg, g0, n * 4), 0);                              \
        { float *o = g; host_call; }                                              \
        { float *o = dg; dev_call; }                                              \
        expect_grad(what, dg, g, g0, n);                                          \
    } while (0)
    GRAD_CHECK("kl dmu", kl_loss_backward(o, NULL, mu, lvg, B, P, (float)B),
               kl_loss_backward(o, NULL, dmu, dlvg, B, P, (float)B));
    GRAD_CHECK("kl dlogvar", kl_loss_backward(NULL, o, mu, lvg, B, P, (float)B),
               kl_loss_backward(NULL, o, dmu, dlvg, B, P, (float)B));
    const char *ve_names[3] = {"ve inv-var dlogvar", "ve neg-var dlogvar", "ve neg-logstd dlogvar"};
    for (int k = VE_INV_VAR; k <= VE_NEG_LOGSTD; k++)
        GRAD_CHECK(ve_names[k], ve_loss_backward(o, lvg, n, (ve_kind)k, 1e-6f, fn),
                   ve_loss_backward(o, dlvg, n, (ve_kind)k, 1e-6f, fn));
    GRAD_CHECK("mag elem dmu", mag_reg_elem_backward(o, mu, n, 0.5f, fn), mag_reg_elem_backward(o, dmu, n, 0.5f, fn));
    const char *view_names[3] = {"mag global (B,1,C*inner) dmu", "mag global (B,C*inner,1) dmu",
                                 "mag global (B,C,inner) dmu"};
    for (int v = 0; v < 3; v++) {
        const int vc = views[v][0], vi = views[v][1];
        const float dl = (float)vc * (float)B * (float)vi;   // C * M: the share is mu times O(1)
        GRAD_CHECK(view_names[v], mag_reg_global_backward(o, mu, B, vc, vi, 0.5f, dl),
                   mag_reg_global_backward(o, dmu, B, vc, vi, 0.5f, dl));
    }
    // dz = eps, eps = mu: any inputs do
    GRAD_CHECK("reparam dmu", reparam_backward(o, NULL, eps, lvg, mu, n), reparam_backward(o, NULL, deps, dlvg, dmu, n));
    GRAD_CHECK("reparam dlogvar", reparam_backward(NULL, o, eps, lvg, mu, n),
               reparam_backward(NULL, o, deps, dlvg, dmu, n));
#undef GRAD_CHECK
    reparam_forward(g, mu, lv, eps, n);
    reparam_forward(dg, dmu, dlv, deps, n);
    expect_dev("reparam z", dg, g, n);
    void *p[] = {dmu, dlv, dlvg, deps, dg};
    for (int i = 0; i < 5; i++) device_free(&p[i]);
    free(mu); free(lv); free(lvg); free(eps); free(g0); free(g);
}

// Several channels with several elements each: the (b*C + c)*inner + j
// indexing of the global magnitude.
Test(toy_cuda, loss_ops_small) {
    cuda_test_activate();
    loss_ops(37, 3, 5, 1);
    device_release();
}

// 2 * 40009 elements, the toy's (B, 2): more than one pass of the 256 x 256
// reduction grid.
Test(toy_cuda, loss_ops_ragged_large) {
    cuda_test_activate();
    loss_ops(40009, 1, 2, 2);
    device_release();
}

// More channels than a grid's y or z dimension allows (65535): the global
// magnitude's one block per channel runs along x.
Test(toy_cuda, mag_global_many_channels) {
    cuda_test_activate();
    enum { NB = 3, C = 70001, IN = 2 };
    const int64_t n = (int64_t)NB * C * IN;
    float *mu = malloc(n * 4), *g0 = malloc(n * 4), *g = malloc(n * 4);
    fill_normal(mu, n, 11, 1.5f);
    fill_normal(g0, n, 12, 0.1f);
    memcpy(g, g0, n * 4);
    float *dmu = up(mu, n), *dg = up(g0, n);
    expect_value("mag global, 70001 channels", mag_reg_global_forward(dmu, NB, C, IN, 0.5f),
                 mag_reg_global_forward(mu, NB, C, IN, 0.5f));
    const float dl = (float)C * NB * IN;
    mag_reg_global_backward(g, mu, NB, C, IN, 0.5f, dl);
    mag_reg_global_backward(dg, dmu, NB, C, IN, 0.5f, dl);
    expect_grad("mag global, 70001 channels, dmu", dg, g, g0, n);
    device_free((void **)&dmu);
    device_free((void **)&dg);
    free(mu); free(g0); free(g);
    device_release();
}

static void batch(float *x, float *eps, int B, uint64_t seed) {
    fill_normal(x, 2 * B, seed, 1.0f);
    fill_normal(eps, 2 * B, seed + 1, 1.0f);
}

static void tok_step(const toy_tok_cfg *cfg, const char *what) {
    cuda_test_activate();
    enum { DEPTH = 3, WIDTH = 64, B = 300 };
    toy_tok *c = NULL, *g = NULL;
    cr_assert_eq(toy_tok_create(&c, DEPTH, WIDTH, B), 0);
    cr_assert_eq(toy_tok_create(&g, DEPTH, WIDTH, B), 0);
    toy_tok_init(c, 5);
    toy_tok_init(g, 5);
    int e = toy_tok_to_device(g, DEVICE_CUDA);
    cr_assert_eq(e, 0, "%s", vel_errmsg(e));
    float x[2 * B], eps[2 * B];
    batch(x, eps, B, 9);
    toy_tok_losses lc = toy_tok_loss_backward(c, cfg, x, eps, B), lg = toy_tok_loss_backward(g, cfg, x, eps, B);
    cr_assert_eq(g->err, 0, "%s", vel_errmsg(g->err));
    const double lgv[5] = {lg.total, lg.rec, lg.kl, lg.ve, lg.reg}, lcv[5] = {lc.total, lc.rec, lc.kl, lc.ve, lc.reg};
    const char *names[5] = {"total", "rec", "kl", "ve", "reg"};
    for (int k = 0; k < 5; k++) {
        cr_log_info("%s %s: gpu %.9g cpu %.9g", what, names[k], lgv[k], lcv[k]);
        cr_expect(fabs(lgv[k] - lcv[k]) <= TOL * fabs(lcv[k]) + 1e-12, "%s %s: gpu %.9g cpu %.9g", what, names[k],
                  lgv[k], lcv[k]);
    }
    expect_dev(what, g->pt.grads, c->pt.grads, c->pt.total);
    double ms[2], rm[2];
    cr_assert_eq(toy_tok_latent_stats(c, B, &ms[0], &rm[0]), 0);
    cr_assert_eq(toy_tok_latent_stats(g, B, &ms[1], &rm[1]), 0);
    cr_expect(fabs(ms[1] - ms[0]) <= TOL * ms[0] && fabs(rm[1] - rm[0]) <= TOL * rm[0],
              "%s latent stats: gpu %g %g cpu %g %g", what, ms[1], rm[1], ms[0], rm[0]);
    toy_tok_destroy(&c);
    toy_tok_destroy(&g);
    device_release();
}

Test(toy_cuda, tokenizer_step_kl) {
    toy_tok_cfg cfg = {.reg = TOY_REG_KL, .kl_weight = 1e-2f};
    tok_step(&cfg, "tokenizer kl grads");
}

Test(toy_cuda, tokenizer_step_ve_global_and_elem) {
    toy_tok_cfg cfg = {.reg = TOY_REG_VE, .lambda_ve = 1e-3f, .lambda_reg = 1.0f, .tau = 0.2f, .delta = 1e-6f,
                       .ve_form = VE_INV_VAR, .reg_global = 1};
    tok_step(&cfg, "tokenizer ve global grads");
    cfg.reg_global = 0;
    tok_step(&cfg, "tokenizer ve elem grads");
}

// The flow: n_steps loss/gradient calls on both sides, each on a new batch.
static void flow_steps(toy_time_embed te, int n_steps, const char *what) {
    cuda_test_activate();
    enum { DEPTH = 3, WIDTH = 64, B = 256 };
    toy_flow *c = NULL, *g = NULL;
    cr_assert_eq(toy_flow_create(&c, DEPTH, WIDTH, B, te, 8), 0);
    cr_assert_eq(toy_flow_create(&g, DEPTH, WIDTH, B, te, 8), 0);
    toy_flow_init(c, 7);
    toy_flow_init(g, 7);
    int e = toy_flow_to_device(g, DEVICE_CUDA);
    cr_assert_eq(e, 0, "%s", vel_errmsg(e));
    float z1[2 * B], x0[2 * B], t[B];
    for (int s = 0; s < n_steps; s++) {
        batch(z1, x0, B, 100 + 2 * s);
        fill_normal(t, B, 500 + s, 0.3f);
        for (int i = 0; i < B; i++) t[i] = fminf(fmaxf(fabsf(t[i]), 0.0f), 1.0f);
        double lc = toy_flow_loss_backward(c, z1, x0, t, B), lg = toy_flow_loss_backward(g, z1, x0, t, B);
        cr_assert_eq(g->err, 0, "%s", vel_errmsg(g->err));
        cr_log_info("%s loss, call %d: gpu %.9g cpu %.9g", what, s, lg, lc);
        cr_expect(fabs(lg - lc) <= TOL * fabs(lc), "%s loss, call %d: gpu %.9g cpu %.9g", what, s, lg, lc);
        expect_dev(what, g->pt.grads, c->pt.grads, c->pt.total);
    }
    // the velocity of the GPU model (host arrays in and out)
    float vc[2 * B], vg[2 * B];
    toy_flow_velocity(c, vc, z1, t, B);
    toy_flow_velocity(g, vg, z1, t, B);
    e = nn_sync();
    cr_assert_eq(e, 0, "%s", vel_errmsg(e));
    double mx = 0;
    for (int i = 0; i < 2 * B; i++) mx = fmax(mx, fabs(vc[i]));
    expect_close_f32("flow velocity", vg, vc, 2 * B, TOL * mx, TOL);
    toy_flow_destroy(&c);
    toy_flow_destroy(&g);
    device_release();
}

Test(toy_cuda, flow_step_raw_time) { flow_steps(TOY_TIME_RAW, 1, "flow raw grads"); }
Test(toy_cuda, flow_steps_fourier_time) { flow_steps(TOY_TIME_FOURIER, 2, "flow fourier grads"); }
#else
Test(toy_cuda, skipped) { cr_skip_test("built without nvcc: CUDA tests skipped"); }
#endif
