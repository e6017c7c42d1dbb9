// test_loss.c: nn/loss.h against tests/ref/gen_loss.py: every loss value vs
// numpy float64 and every gradient vs float64 central finite differences
// (including zero gradient outside the logvar clamp and the cosine loss's
// zero-norm clamp), the accumulate-with-dloss contract, closed-form spot
// checks, and 1-vs-2 thread bit identity of values and gradients.
#include <math.h>
#include <omp.h>

#include "nn/loss.h"
#include "tests/nn/dense_check.h"

#define G "loss"

static float *ld(const char *name, int64_t *n) { return ref_f32(G, name, n); }
static double *ldd(const char *name) { return ref_f64(G, name, NULL); }

// Loss values are double sums of float inputs: 1e-6 relative covers the
// float rounding of the per-element terms (measured values are logged).
static void check_value(const char *what, double got, const char *ref_name) {
    double *ref = ldd(ref_name);
    cr_log_info("ERR %-40s value=%.10g ref=%.10g rel=%.3g", what, got, ref[0],
                fabs(got - ref[0]) / fmax(fabs(ref[0]), 1e-30));
    expect_close_f64(what, &got, ref, 1, 1e-7, 1e-6);
    free(ref);
}

// Gradient with dloss = 0.5 onto g0: result must be g0 + 0.5 * ref.
static void check_grad_scaled(const char *what, const float *g, const float *g0,
                              const char *ref_name, int64_t n) {
    double *ref = ldd(ref_name);
    for (int64_t i = 0; i < n; i++) ref[i] *= 0.5;
    check_grad(what, g, g0, ref, n, 1e-6, 1e-5);
    free(ref);
}

Test(loss, mse_l1) {
    int64_t n;
    float *p = ld("pred", &n), *t = ld("target", NULL), *g0a = ld("g0a", NULL), *g0b = ld("g0b", NULL);
    check_value("mse value", mse_loss_forward(p, t, n), "mse_loss");
    check_value("l1 value", l1_loss_forward(p, t, n), "l1_loss");
    float *dp = copy_f32(g0a, n), *dt = copy_f32(g0b, n);
    mse_loss_backward(dp, dt, p, t, n, 0.5f);
    check_grad_scaled("mse dpred", dp, g0a, "mse_dpred", n);
    check_grad_scaled("mse dtarget", dt, g0b, "mse_dtarget", n);
    memcpy(dp, g0a, sizeof(float) * n); memcpy(dt, g0b, sizeof(float) * n);
    l1_loss_backward(dp, dt, p, t, n, 0.5f);
    check_grad_scaled("l1 dpred", dp, g0a, "l1_dpred", n);
    check_grad_scaled("l1 dtarget", dt, g0b, "l1_dtarget", n);
    // closed forms: identical inputs give 0 loss and 0 gradient
    cr_expect_eq(mse_loss_forward(p, p, n), 0.0);
    cr_expect_eq(l1_loss_forward(p, p, n), 0.0);
    memset(dp, 0, sizeof(float) * n);
    l1_loss_backward(dp, NULL, p, p, n, 1.0f);
    for (int64_t i = 0; i < n; i++) cr_expect_eq(dp[i], 0.0f);
    free(p); free(t); free(g0a); free(g0b); free(dp); free(dt);
}

Test(loss, cosine) {
    int64_t nc;
    double *cases = ref_f64(G, "cos_cases", &nc);
    for (int ci = 0; ci < nc / 3; ci++) {
        int o = (int)cases[3 * ci], C = (int)cases[3 * ci + 1], in = (int)cases[3 * ci + 2];
        int64_t n = (int64_t)o * C * in;
        char key[64], what[64];
        float *x = pcase_f32(G, "cos", ci, "x", NULL), *y = pcase_f32(G, "cos", ci, "y", NULL);
        snprintf(key, sizeof key, "cosc%d_loss", ci);
        snprintf(what, sizeof what, "cosine value (%d,%d,%d)", o, C, in);
        check_value(what, cosine_loss_forward(x, y, o, C, in), key);
        float *g0 = malloc(sizeof(float) * n);
        fill_normal(g0, n, 71, 1.0f);
        float *dx = copy_f32(g0, n), *dy = copy_f32(g0, n);
        cosine_loss_backward(dx, dy, x, y, o, C, in, 0.5f);
        snprintf(key, sizeof key, "cosc%d_dx", ci);
        snprintf(what, sizeof what, "cosine dpred (%d,%d,%d)", o, C, in);
        if (ci == 1) {
            // The zero-norm position's gradient is ~1e8 (y/(eps |y|)): check
            // it relatively (it is exact in float up to rounding), the rest
            // with the usual tolerance.
            double *ref = ldd(key);
            for (int c = 0; c < C; c++) {
                double want = g0[c] + 0.5 * ref[c];
                cr_expect(fabs(dx[c] - want) <= 1e-5 * fabs(want), "zero-norm grad %d: %g vs %g",
                          c, dx[c], want);
            }
            for (int64_t i = 0; i < C; i++) ref[i] = 0.0;
            float *dxr = copy_f32(dx, n);
            for (int c = 0; c < C; c++) dxr[c] = g0[c];
            for (int64_t i = 0; i < n; i++) ref[i] *= 0.5;
            check_grad(what, dxr, g0, ref, n, 1e-6, 1e-5);
            free(ref); free(dxr);
        } else {
            check_grad_scaled(what, dx, g0, key, n);
        }
        snprintf(key, sizeof key, "cosc%d_dy", ci);
        snprintf(what, sizeof what, "cosine dtarget (%d,%d,%d)", o, C, in);
        check_grad_scaled(what, dy, g0, key, n);
        free(x); free(y); free(g0); free(dx); free(dy);
    }
    free(cases);
    // closed form: parallel vectors give 0, opposite give 2
    float a[6] = {1, 2, 3, 2, 4, 6}, b[6] = {-1, -2, -3, -2, -4, -6};
    cr_expect(fabs(cosine_loss_forward(a, a + 3, 1, 3, 1)) < 1e-12);
    cr_expect(fabs(cosine_loss_forward(a, b, 2, 3, 1) - 2.0) < 1e-12);
}

Test(loss, kl_ve_mag_reparam) {
    const int B = 3;
    int64_t n;
    float *mu = ld("mu", &n), *lv = ld("logvar", NULL), *eps = ld("eps", NULL);
    float *g0 = malloc(sizeof(float) * n);
    fill_normal(g0, n, 81, 1.0f);
    check_value("kl value", kl_loss_forward(mu, lv, B, n / B), "kl_loss");
    float *dmu = copy_f32(g0, n), *dlv = copy_f32(g0, n);
    kl_loss_backward(dmu, dlv, mu, lv, B, n / B, 0.5f);
    check_grad_scaled("kl dmu", dmu, g0, "kl_dmu", n);
    check_grad_scaled("kl dlogvar", dlv, g0, "kl_dlogvar", n);
    for (int i = 0; i < 4; i++) cr_expect_eq(dlv[i], g0[i], "outside clamp: no gradient");

    const char *ve_names[3] = {"ve (iii) 1/(s2+d)", "ve (i) -s2", "ve (ii) -log s"};
    for (int k = 0; k < 3; k++) {
        char key[32];
        snprintf(key, sizeof key, "ve%d_loss", k);
        check_value(ve_names[k], ve_loss_forward(lv, n, (ve_kind)k, 1e-6f), key);
        memcpy(dlv, g0, sizeof(float) * n);
        ve_loss_backward(dlv, lv, n, (ve_kind)k, 1e-6f, 0.5f);
        snprintf(key, sizeof key, "ve%d_dlogvar", k);
        char what[64];
        snprintf(what, sizeof what, "%s dlogvar", ve_names[k]);
        check_grad_scaled(what, dlv, g0, key, n);
    }

    check_value("mag (a) value", mag_reg_elem_forward(mu, n, 1.0f), "maga_loss");
    memcpy(dmu, g0, sizeof(float) * n);
    mag_reg_elem_backward(dmu, mu, n, 1.0f, 0.5f);
    check_grad_scaled("mag (a) dmu", dmu, g0, "maga_dmu", n);

    int64_t nc;
    double *cases = ref_f64(G, "magb_cases", &nc);
    for (int ci = 0; ci < nc / 3; ci++) {
        int b = (int)cases[3 * ci], c = (int)cases[3 * ci + 1], in = (int)cases[3 * ci + 2];
        int64_t m = (int64_t)b * c * in;
        float *x = pcase_f32(G, "magb", ci, "mu", NULL);
        char key[32], what[64];
        snprintf(key, sizeof key, "magbc%d_loss", ci);
        snprintf(what, sizeof what, "mag (b) value (%d,%d,%d)", b, c, in);
        check_value(what, mag_reg_global_forward(x, b, c, in, 1.0f), key);
        float *d = copy_f32(g0, m);
        mag_reg_global_backward(d, x, b, c, in, 1.0f, 0.5f);
        snprintf(key, sizeof key, "magbc%d_dmu", ci);
        snprintf(what, sizeof what, "mag (b) dmu (%d,%d,%d)", b, c, in);
        check_grad_scaled(what, d, g0, key, m);
        free(x); free(d);
    }
    free(cases);

    float *R = ld("rep_R", NULL), *z = malloc(sizeof(float) * n);
    double *zref = ldd("rep_z");
    reparam_forward(z, mu, lv, eps, n);
    check_vs("reparam z", z, zref, n, 1e-5, 1e-5);
    memcpy(dmu, g0, sizeof(float) * n); memcpy(dlv, g0, sizeof(float) * n);
    reparam_backward(dmu, dlv, R, lv, eps, n);
    double *r1 = ldd("rep_dmu"), *r2 = ldd("rep_dlogvar");
    check_grad("reparam dmu", dmu, g0, r1, n, 1e-6, 1e-5);
    check_grad("reparam dlogvar", dlv, g0, r2, n, 1e-6, 1e-5);
    for (int i = 0; i < 4; i++) cr_expect_eq(dlv[i], g0[i], "outside clamp: no gradient");
    free(r1); free(r2); free(R); free(z); free(zref);
    free(mu); free(lv); free(eps); free(g0); free(dmu); free(dlv);
}

Test(loss, one_vs_two_threads_identical) {
    const int64_t n = 100003;
    float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
    fill_normal(a, n, 91, 2.0f); fill_normal(b, n, 92, 2.0f);
    double v[2][6];
    float *g[2];
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t + 1);
        v[t][0] = mse_loss_forward(a, b, n);
        v[t][1] = l1_loss_forward(a, b, n);
        v[t][2] = cosine_loss_forward(a, b, 1, 7, (int)(n / 7));
        v[t][3] = kl_loss_forward(a, b, 1, n);
        v[t][4] = ve_loss_forward(b, n, VE_INV_VAR, 1e-6f);
        v[t][5] = mag_reg_global_forward(a, 1, 1, (int)n, 1.0f);
        g[t] = calloc(n, sizeof(float));
        cosine_loss_backward(g[t], NULL, a, b, 1, 7, (int)(n / 7), 1.0f);
        mag_reg_global_backward(g[t], a, 1, 1, (int)n, 1.0f, 1.0f);
    }
    for (int k = 0; k < 6; k++)
        cr_expect(memcmp(&v[0][k], &v[1][k], sizeof(double)) == 0,
                  "loss %d: %.17g vs %.17g", k, v[0][k], v[1][k]);
    expect_same_bits("loss grads", g[0], g[1], n);
    free(g[0]); free(g[1]); free(a); free(b);
}
