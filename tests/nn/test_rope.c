// Tests for nn/rope.h: the tables and the rotation against a literal numpy
// port of LightningDiT's VisionRotaryEmbeddingFast (tests/ref/gen_dit_ops.py),
// in place and on the strided q part of a packed qkv; backward against
// central differences of a double-precision rotation; backward o forward = id.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/rope.h"
#include "tests/util.h"

static void report(const char *what, const float *x, const float *r, int64_t n,
                   double atol, double rtol) {
    cmp_result c = compare_f32(x, r, n, atol, rtol);
    fprintf(stderr, "[rope] %-14s max_abs %.3g max_rel %.3g\n", what, c.max_abs, c.max_rel);
    expect_close_f32(what, x, r, n, atol, rtol);
}

enum { B = 2, NH = 3, H = 4, W = 6, HD = 16, T = H * W, D = NH * HD };

Test(rope, tables_vs_numpy) {
    int64_t n;
    float c[T * HD], s[T * HD];
    rope2d_tables(c, s, H, W, HD, 10000.0);
    float *cr = ref_f32("dit_ops", "rope_cos", &n), *sr = ref_f32("dit_ops", "rope_sin", &n);
    cr_assert_eq(n, T * HD);
    report("cos 4x6", c, cr, n, 1e-7, 1e-6);
    report("sin 4x6", s, sr, n, 1e-7, 1e-6);
    free(cr); free(sr);
    float *c16 = malloc(256 * 64 * 4), *s16 = malloc(256 * 64 * 4);
    rope2d_tables(c16, s16, 16, 16, 64, 10000.0);
    cr = ref_f32("dit_ops", "rope16_cos", &n); sr = ref_f32("dit_ops", "rope16_sin", &n);
    report("cos 16x16", c16, cr, n, 1e-7, 1e-6);
    report("sin 16x16", s16, sr, n, 1e-7, 1e-6);
    free(cr); free(sr); free(c16); free(s16);
}

Test(rope, forward_vs_numpy_plain_inplace_strided) {
    int64_t n;
    float c[T * HD], s[T * HD];
    rope2d_tables(c, s, H, W, HD, 10000.0);
    float *x = ref_f32("dit_ops", "rope_x", &n), *y = ref_f32("dit_ops", "rope_y", &n);
    float *out = malloc(n * 4);
    rope_forward(out, x, c, s, B, T, NH, HD, D, D);
    report("forward", out, y, n, 1e-6, 1e-5);
    memcpy(out, x, n * 4);
    rope_forward(out, out, c, s, B, T, NH, HD, D, D);
    report("in place", out, y, n, 1e-6, 1e-5);
    // q slot of a packed (B,T,3,NH,HD): only that slot changes
    float *qkv = malloc(n * 3 * 4), *back = malloc(n * 4);
    fill_normal(qkv, n * 3, 5, 1.0f);
    float *keep = malloc(n * 3 * 4);
    memcpy(keep, qkv, n * 3 * 4);
    for (int bt = 0; bt < B * T; bt++) memcpy(qkv + (size_t)bt * 3 * D, x + (size_t)bt * D, D * 4);
    rope_forward(qkv, qkv, c, s, B, T, NH, HD, 3 * D, 3 * D);
    for (int bt = 0; bt < B * T; bt++) {
        memcpy(back + (size_t)bt * D, qkv + (size_t)bt * 3 * D, D * 4);
        cr_assert(memcmp(qkv + (size_t)bt * 3 * D + D, keep + (size_t)bt * 3 * D + D, 2 * D * 4) == 0,
                  "k/v slots touched at row %d", bt);
    }
    report("strided", back, y, n, 1e-6, 1e-5);
    free(x); free(y); free(out); free(qkv); free(back); free(keep);
}

static double loss_f64(const double *x, const double *g, const float *c, const float *s) {
    double L = 0;
    for (int bt = 0; bt < B * T; bt++)
        for (int h = 0; h < NH; h++)
            for (int d = 0; d < HD; d += 2) {
                const int t = bt % T, i = bt * D + h * HD + d;
                double o0 = x[i] * c[t * HD + d] - x[i + 1] * s[t * HD + d];
                double o1 = x[i + 1] * c[t * HD + d] + x[i] * s[t * HD + d];
                L += g[i] * o0 + g[i + 1] * o1;
            }
    return L;
}

Test(rope, backward_vs_finite_differences_and_inverse) {
    const int n = B * T * D;
    float c[T * HD], s[T * HD];
    rope2d_tables(c, s, H, W, HD, 10000.0);
    float *x = malloc(n * 4), *g = malloc(n * 4), *dx = malloc(n * 4), *y = malloc(n * 4);
    fill_normal(x, n, 1, 1.0f);
    fill_normal(g, n, 2, 1.0f);
    for (int i = 0; i < n; i++) dx[i] = 0.5f;
    rope_backward(dx, g, c, s, B, T, NH, HD, D, D);
    double *xd = malloc(n * 8), *gd = malloc(n * 8), *fd = malloc(n * 8), *an = malloc(n * 8);
    for (int i = 0; i < n; i++) { xd[i] = x[i]; gd[i] = g[i]; an[i] = dx[i] - 0.5; }
    for (int i = 0; i < n; i++) {
        double x0 = xd[i];
        xd[i] = x0 + 1e-4; double lp = loss_f64(xd, gd, c, s);
        xd[i] = x0 - 1e-4; double lm = loss_f64(xd, gd, c, s);
        xd[i] = x0;
        fd[i] = (lp - lm) / 2e-4;
    }
    cmp_result cr = compare_f64(an, fd, n, 1e-6, 1e-6);
    fprintf(stderr, "[rope] dinp vs FD      max_abs %.3g max_rel %.3g\n", cr.max_abs, cr.max_rel);
    expect_close_f64("rope dinp vs FD", an, fd, n, 1e-6, 1e-6);
    // rotating back by -angle returns the input
    rope_forward(y, x, c, s, B, T, NH, HD, D, D);
    memset(dx, 0, n * 4);
    rope_backward(dx, y, c, s, B, T, NH, HD, D, D);
    report("bwd(fwd(x))", dx, x, n, 1e-6, 1e-6);
    free(x); free(g); free(dx); free(y); free(xd); free(gd); free(fd); free(an);
}
