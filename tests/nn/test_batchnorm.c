// test_batchnorm.c: nn/batchnorm.h. Training-mode forward, saved statistics
// and running-statistics update vs tests/ref/gen_patchgan.py (float64 numpy of
// torch.nn.BatchNorm2d); eval mode; backward (dinp, dweight, dbias) vs central
// finite differences of a float64 evaluation of the same formula; backward
// accumulates; 1 vs 2 threads bit-identical.
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "nn/batchnorm.h"
#include "tests/util.h"

#define B_ 3
#define C_ 5
#define HW_ 24

Test(batchnorm, forward_train_and_running_stats_match_numpy) {
    int64_t n;
    float *x = ref_f32("patchgan", "bn_x", &n), *w = ref_f32("patchgan", "bn_w", NULL);
    float *b = ref_f32("patchgan", "bn_b", NULL), *rm = ref_f32("patchgan", "bn_rm", NULL);
    float *rv = ref_f32("patchgan", "bn_rv", NULL), *out_ref = ref_f32("patchgan", "bn_out", NULL);
    float *rm_ref = ref_f32("patchgan", "bn_rm_new", NULL), *rv_ref = ref_f32("patchgan", "bn_rv_new", NULL);
    float *ev_ref = ref_f32("patchgan", "bn_out_eval", NULL);
    cr_assert_eq(n, B_ * C_ * HW_);
    float out[B_ * C_ * HW_], mean[C_], rstd[C_];
    batchnorm_forward_train(out, mean, rstd, rm, rv, x, w, b, B_, C_, HW_, 1e-5f, 0.1f);
    expect_close_f32("bn train out", out, out_ref, n, 1e-5, 1e-5);
    expect_close_f32("bn running_mean", rm, rm_ref, C_, 1e-6, 1e-5);
    expect_close_f32("bn running_var", rv, rv_ref, C_, 1e-6, 1e-5);
    batchnorm_forward_eval(out, x, rm, rv, w, b, B_, C_, HW_, 1e-5f);
    expect_close_f32("bn eval out", out, ev_ref, n, 1e-5, 1e-5);
    // NULL running stats: left alone, output unchanged.
    float out2[B_ * C_ * HW_];
    batchnorm_forward_train(out2, mean, rstd, NULL, NULL, x, w, b, B_, C_, HW_, 1e-5f, 0.1f);
    expect_close_f32("bn train out (no running)", out2, out_ref, n, 1e-5, 1e-5);
    free(x); free(w); free(b); free(rm); free(rv); free(out_ref); free(rm_ref); free(rv_ref); free(ev_ref);
}

// L = sum(R * bn(x)) in float64.
static double loss64(const double *x, const double *w, const double *b, const double *R) {
    double L = 0;
    for (int c = 0; c < C_; c++) {
        double s = 0, v = 0, n = B_ * HW_;
        for (int i = 0; i < B_; i++)
            for (int k = 0; k < HW_; k++) s += x[(i * C_ + c) * HW_ + k];
        double m = s / n;
        for (int i = 0; i < B_; i++)
            for (int k = 0; k < HW_; k++) { double d = x[(i * C_ + c) * HW_ + k] - m; v += d * d; }
        double r = 1 / sqrt(v / n + 1e-5);
        for (int i = 0; i < B_; i++)
            for (int k = 0; k < HW_; k++) {
                int j = (i * C_ + c) * HW_ + k;
                L += R[j] * ((x[j] - m) * r * w[c] + b[c]);
            }
    }
    return L;
}

Test(batchnorm, backward_matches_finite_differences_and_accumulates) {
    const int n = B_ * C_ * HW_;
    float x[B_ * C_ * HW_], R[B_ * C_ * HW_], w[C_], b[C_];
    fill_normal(x, n, 11, 1.5f);
    for (int i = 0; i < n; i++) x[i] += (float)(i % C_);
    fill_normal(R, n, 12, 1.0f);
    fill_uniform(w, C_, 13, 0.5f, 1.5f);
    fill_normal(b, C_, 14, 0.3f);
    double xd[B_ * C_ * HW_], Rd[B_ * C_ * HW_], wd[C_], bd[C_];
    for (int i = 0; i < n; i++) { xd[i] = x[i]; Rd[i] = R[i]; }
    for (int c = 0; c < C_; c++) { wd[c] = w[c]; bd[c] = b[c]; }
    float out[B_ * C_ * HW_], mean[C_], rstd[C_];
    batchnorm_forward_train(out, mean, rstd, NULL, NULL, x, w, b, B_, C_, HW_, 1e-5f, 0.1f);
    // Gradients start at 0.5 to check accumulation.
    float dx[B_ * C_ * HW_], dw[C_], db[C_];
    for (int i = 0; i < n; i++) dx[i] = 0.5f;
    for (int c = 0; c < C_; c++) dw[c] = db[c] = 0.5f;
    batchnorm_backward(dx, dw, db, R, x, w, mean, rstd, B_, C_, HW_);
    const double h = 1e-5;
    double num[B_ * C_ * HW_];
    float got[B_ * C_ * HW_];
    for (int i = 0; i < n; i++) {
        double s = xd[i];
        xd[i] = s + h; double lp = loss64(xd, wd, bd, Rd);
        xd[i] = s - h; double lm = loss64(xd, wd, bd, Rd);
        xd[i] = s;
        num[i] = (lp - lm) / (2 * h);
        got[i] = dx[i] - 0.5f;
    }
    double *num_c = num;
    // float backward vs float64 FD at the default tolerance.
    float numf[B_ * C_ * HW_];
    for (int i = 0; i < n; i++) numf[i] = (float)num_c[i];
    expect_close_f32("bn dinp", got, numf, n, 1e-5, 1e-5);
    float gw[C_], gb[C_], nw[C_], nb[C_];
    for (int c = 0; c < C_; c++) {
        double s = wd[c];
        wd[c] = s + h; double lp = loss64(xd, wd, bd, Rd);
        wd[c] = s - h; double lm = loss64(xd, wd, bd, Rd);
        wd[c] = s;
        nw[c] = (float)((lp - lm) / (2 * h));
        s = bd[c];
        bd[c] = s + h; lp = loss64(xd, wd, bd, Rd);
        bd[c] = s - h; lm = loss64(xd, wd, bd, Rd);
        bd[c] = s;
        nb[c] = (float)((lp - lm) / (2 * h));
        gw[c] = dw[c] - 0.5f;
        gb[c] = db[c] - 0.5f;
    }
    expect_close_f32("bn dweight", gw, nw, C_, 1e-5, 1e-5);
    expect_close_f32("bn dbias", gb, nb, C_, 1e-5, 1e-5);
}

Test(batchnorm, one_and_two_threads_identical) {
    enum { B = 4, C = 6, HW = 50 };
    static float x[B * C * HW], R[B * C * HW], o1[B * C * HW], o2[B * C * HW];
    static float d1[B * C * HW], d2[B * C * HW];
    float w[C], b[C], m[C], r[C], rm1[C] = {0}, rv1[C], rm2[C] = {0}, rv2[C], dw1[C] = {0}, dw2[C] = {0};
    fill_normal(x, B * C * HW, 21, 2.0f);
    fill_normal(R, B * C * HW, 22, 1.0f);
    fill_uniform(w, C, 23, 0.5f, 1.5f);
    fill_normal(b, C, 24, 0.2f);
    for (int c = 0; c < C; c++) rv1[c] = rv2[c] = 1;
    omp_set_num_threads(1);
    batchnorm_forward_train(o1, m, r, rm1, rv1, x, w, b, B, C, HW, 1e-5f, 0.1f);
    batchnorm_backward(d1, dw1, NULL, R, x, w, m, r, B, C, HW);
    omp_set_num_threads(2);
    batchnorm_forward_train(o2, m, r, rm2, rv2, x, w, b, B, C, HW, 1e-5f, 0.1f);
    batchnorm_backward(d2, dw2, NULL, R, x, w, m, r, B, C, HW);
    cr_assert(!memcmp(o1, o2, sizeof o1) && !memcmp(d1, d2, sizeof d1) && !memcmp(dw1, dw2, sizeof dw1) &&
              !memcmp(rm1, rm2, sizeof rm1) && !memcmp(rv1, rv2, sizeof rv1));
}
