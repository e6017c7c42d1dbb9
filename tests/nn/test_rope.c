// Tests for nn/rope.h: the tables and the rotation against a literal numpy
// port of LightningDiT's VisionRotaryEmbeddingFast (tests/ref/gen_dit_ops.py),
// in place and on the strided q part of a packed qkv; backward against
// central differences of a double-precision rotation; backward o forward = id;
// the fused q/k norm + RoPE against the ops it stands for.
#include <criterion/criterion.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/norm.h"
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

// ---- fused q/k RMSNorm + RoPE (qknorm_rope_forward / _backward) ----------
// Reference: the sequence of separately tested ops it stands for (rows copy,
// rmsnorm_forward / _backward_set, rope_forward / _backward_set); the fused
// op must give the same bits (weight gradients: the same sums in a
// different order, so within rounding), leave v alone, and give the same
// bits at 1 and 2 OpenMP threads.

static int same_bits(const float *a, const float *b, int64_t n) {
    return memcmp(a, b, sizeof(float) * (size_t)n) == 0;
}

// Runs the fused forward + backward at `threads` OpenMP threads into the
// out buffers (qkv, raw q, raw k, rstd q, rstd k, dqkv, dwq, dwk).
static void qk_fused(float *o[8], const float *qkv, const float *dq, const float *w,
                     const float *dw0, const float *c, const float *s, int Bq, int Tq, int NHq,
                     int HDq, int threads) {
    const int64_t N = (int64_t)Bq * Tq, Dq = (int64_t)NHq * HDq;
    omp_set_num_threads(threads);
    memcpy(o[0], qkv, sizeof(float) * N * 3 * Dq);
    qknorm_rope_forward(o[0], o[1], o[2], o[3], o[4], w, w + HDq, c, s, NULL, Bq, Tq, NHq, HDq,
                        1e-6f);
    memcpy(o[5], dq, sizeof(float) * N * 3 * Dq);
    memcpy(o[6], dw0, sizeof(float) * HDq);
    memcpy(o[7], dw0 + HDq, sizeof(float) * HDq);
    qknorm_rope_backward(o[5], o[6], o[7], o[1], o[2], o[3], o[4], w, w + HDq, c, s, NULL, Bq,
                         Tq, NHq, HDq);
}

Test(rope, qknorm_fused_equals_sequence) {
    // small (serial) and DiT-S-like (past the parallel threshold, HD 64)
    const int cases[2][5] = {{2, 4, 6, 3, 16}, {8, 8, 8, 6, 64}};   // B, H, W, NH, HD
    for (int ci = 0; ci < 2; ci++) {
        const int Bq = cases[ci][0], Hq = cases[ci][1], Wq = cases[ci][2], NHq = cases[ci][3];
        const int HDq = cases[ci][4], Tq = Hq * Wq, Dq = NHq * HDq, N = Bq * Tq;
        const int64_t nq = (int64_t)N * 3 * Dq, nd = (int64_t)N * Dq, nr = (int64_t)N * NHq;
        float *c = malloc(sizeof(float) * Tq * HDq), *s = malloc(sizeof(float) * Tq * HDq);
        rope2d_tables(c, s, Hq, Wq, HDq, 10000.0);
        float *qkv = malloc(sizeof(float) * nq), *dq = malloc(sizeof(float) * nq);
        float w[2 * 64], dw0[2 * 64];
        fill_normal(qkv, nq, 21, 1.5f);
        fill_normal(dq, nq, 22, 1.0f);
        fill_uniform(w, 2 * HDq, 23, 0.5f, 1.5f);
        fill_normal(dw0, 2 * HDq, 24, 1.0f);
        // the sequence
        float *rq = malloc(sizeof(float) * nq), *raw[2], *rstd[2], dwr[2][64];
        float *t1 = malloc(sizeof(float) * nd), *t2 = malloc(sizeof(float) * nd);
        float *rd = malloc(sizeof(float) * nq);
        memcpy(rq, qkv, sizeof(float) * nq);
        memcpy(rd, dq, sizeof(float) * nq);
        for (int p = 0; p < 2; p++) {
            raw[p] = malloc(sizeof(float) * nd);
            rstd[p] = malloc(sizeof(float) * nr);
            for (int n = 0; n < N; n++)
                memcpy(raw[p] + (size_t)n * Dq, rq + (size_t)n * 3 * Dq + p * Dq, sizeof(float) * Dq);
            rmsnorm_forward(t1, rstd[p], raw[p], w + p * HDq, N * NHq, HDq, 1e-6f);
            rope_forward(rq + p * Dq, t1, c, s, Bq, Tq, NHq, HDq, 3 * Dq, Dq);
            memcpy(dwr[p], dw0 + p * HDq, sizeof(float) * HDq);
            rope_backward_set(t1, rd + p * Dq, c, s, Bq, Tq, NHq, HDq, Dq, 3 * Dq);
            rmsnorm_backward_set(t2, dwr[p], t1, raw[p], w + p * HDq, rstd[p], N * NHq, HDq);
            for (int n = 0; n < N; n++)
                memcpy(rd + (size_t)n * 3 * Dq + p * Dq, t2 + (size_t)n * Dq, sizeof(float) * Dq);
        }
        // the fused op at 1 and 2 threads
        const int64_t sz[8] = {nq, nd, nd, nr, nr, nq, HDq, HDq};
        float *o[2][8];
        for (int t = 0; t < 2; t++) {
            for (int k = 0; k < 8; k++) o[t][k] = malloc(sizeof(float) * sz[k]);
            qk_fused(o[t], qkv, dq, w, dw0, c, s, Bq, Tq, NHq, HDq, t + 1);
        }
        omp_set_num_threads(2);
        const float *want[8] = {rq, raw[0], raw[1], rstd[0], rstd[1], rd, dwr[0], dwr[1]};
        const char *names[8] = {"qkv", "qraw", "kraw", "rstd_q", "rstd_k", "dqkv", "dwq", "dwk"};
        for (int k = 0; k < 8; k++) {
            char what[64];
            snprintf(what, sizeof what, "qknorm %s B%d HD%d", names[k], Bq, HDq);
            if (k < 6)
                cr_expect(same_bits(o[0][k], want[k], sz[k]), "%s: not the sequence's bits", what);
            else   // HD sums of N*NH terms each, double sums rounded once
                report(what, o[0][k], want[k], sz[k], 1e-6, 1e-6);
            cr_expect(same_bits(o[0][k], o[1][k], sz[k]), "%s: omp 1 vs 2 differ", what);
            free(o[0][k]); free(o[1][k]);
        }
        for (int p = 0; p < 2; p++) { free(raw[p]); free(rstd[p]); }
        free(c); free(s); free(qkv); free(dq); free(rq); free(rd); free(t1); free(t2);
    }
}
