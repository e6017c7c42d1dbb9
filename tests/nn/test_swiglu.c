// Tests for nn/swiglu.h: forward vs numpy (tests/ref/gen_dit_ops.py),
// backward vs central differences of the double-precision formula, "+=".
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "nn/swiglu.h"
#include "tests/util.h"

enum { N = 7, H = 13 };

Test(swiglu, forward_vs_numpy) {
    int64_t n;
    float *x12 = ref_f32("dit_ops", "swiglu_x12", &n), *h = ref_f32("dit_ops", "swiglu_h", &n);
    float out[N * H];
    swiglu_forward(out, x12, N, H);
    cmp_result c = compare_f32(out, h, N * H, 1e-6, 1e-5);
    fprintf(stderr, "[swiglu] forward max_abs %.3g max_rel %.3g\n", c.max_abs, c.max_rel);
    expect_close_f32("swiglu h", out, h, N * H, 1e-6, 1e-5);
    free(x12); free(h);
}

static double loss_f64(const double *x12, const double *g) {
    double L = 0;
    for (int n = 0; n < N; n++)
        for (int i = 0; i < H; i++) {
            double a = x12[n * 2 * H + i], b = x12[n * 2 * H + H + i];
            L += g[n * H + i] * a / (1 + exp(-a)) * b;
        }
    return L;
}

Test(swiglu, backward_vs_finite_differences) {
    float x12[N * 2 * H], g[N * H], dx[N * 2 * H];
    fill_normal(x12, N * 2 * H, 3, 2.0f);
    fill_normal(g, N * H, 4, 1.0f);
    for (int i = 0; i < N * 2 * H; i++) dx[i] = -1.0f;
    swiglu_backward(dx, g, x12, N, H);
    double xd[N * 2 * H], gd[N * H], fd[N * 2 * H], an[N * 2 * H];
    for (int i = 0; i < N * 2 * H; i++) { xd[i] = x12[i]; an[i] = dx[i] + 1.0; }
    for (int i = 0; i < N * H; i++) gd[i] = g[i];
    for (int i = 0; i < N * 2 * H; i++) {
        double x0 = xd[i];
        xd[i] = x0 + 1e-5; double lp = loss_f64(xd, gd);
        xd[i] = x0 - 1e-5; double lm = loss_f64(xd, gd);
        xd[i] = x0;
        fd[i] = (lp - lm) / 2e-5;
    }
    cmp_result c = compare_f64(an, fd, N * 2 * H, 1e-5, 1e-5);
    fprintf(stderr, "[swiglu] backward max_abs %.3g max_rel %.3g\n", c.max_abs, c.max_rel);
    expect_close_f64("swiglu dx12 vs FD", an, fd, N * 2 * H, 1e-5, 1e-5);
}
