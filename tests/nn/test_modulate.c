// Tests for nn/modulate.h: modulate and gated residual forward vs numpy
// (chunks of an adaLN (B, 6C) output, ld = 6C), in place; backward vs central
// differences of the double-precision formulas, "+=" and NULL gradients;
// the split by image (B >= 8) against one-image calls, bit for bit.
#include <criterion/criterion.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/modulate.h"
#include "tests/util.h"

enum { B = 3, T = 5, C = 8, LD = 6 * C, NX = B * T * C };

static void report(const char *what, const float *x, const float *r, int64_t n) {
    cmp_result c = compare_f32(x, r, n, 1e-6, 1e-5);
    fprintf(stderr, "[modulate] %-10s max_abs %.3g max_rel %.3g\n", what, c.max_abs, c.max_rel);
    expect_close_f32(what, x, r, n, 1e-6, 1e-5);
}

Test(modulate, forward_vs_numpy) {
    int64_t n;
    float *ada = ref_f32("dit_ops", "mod_ada", &n), *x = ref_f32("dit_ops", "mod_x", &n);
    float *y = ref_f32("dit_ops", "mod_y", &n), *mo = ref_f32("dit_ops", "mod_out", &n);
    float *go = ref_f32("dit_ops", "gate_out", &n);
    float out[NX];
    modulate_forward(out, x, ada, ada + C, B, T, C, LD);
    report("modulate", out, mo, NX);
    memcpy(out, x, sizeof out);
    modulate_forward(out, out, ada, ada + C, B, T, C, LD);
    report("mod inplace", out, mo, NX);
    gate_residual_forward(out, x, y, ada + 2 * C, B, T, C, LD);
    report("gate", out, go, NX);
    memcpy(out, x, sizeof out);
    gate_residual_forward(out, out, y, ada + 2 * C, B, T, C, LD);
    report("gate inplace", out, go, NX);
    free(ada); free(x); free(y); free(mo); free(go);
}

// Loss over a flat parameter vector p = [x (NX), y (NX), ada (B*LD)]:
// sum(g1 * modulate(x; shift, scale)) + sum(g2 * (x + gate*y)).
static double loss_f64(const double *p, const double *g1, const double *g2) {
    const double *x = p, *y = p + NX, *ada = p + 2 * NX;
    double L = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) {
                int i = (b * T + t) * C + c;
                L += g1[i] * (x[i] * (1 + ada[b * LD + C + c]) + ada[b * LD + c]);
                L += g2[i] * (x[i] + ada[b * LD + 2 * C + c] * y[i]);
            }
    return L;
}

Test(modulate, backward_vs_finite_differences) {
    enum { NP = 2 * NX + B * LD };
    float p[NP], g1[NX], g2[NX], dp[NP];
    fill_normal(p, NP, 7, 1.0f);
    fill_normal(g1, NX, 8, 1.0f);
    fill_normal(g2, NX, 9, 1.0f);
    for (int i = 0; i < NP; i++) dp[i] = 0.125f;
    float *x = p, *y = p + NX, *ada = p + 2 * NX;
    float *dx = dp, *dy = dp + NX, *dada = dp + 2 * NX;
    modulate_backward(dx, dada, dada + C, g1, x, ada + C, B, T, C, LD);
    gate_residual_backward(dx, dy, dada + 2 * C, g2, y, ada + 2 * C, B, T, C, LD);
    double pd[NP], gd1[NX], gd2[NX], an[NP], fd[NP];
    for (int i = 0; i < NP; i++) { pd[i] = p[i]; an[i] = dp[i] - 0.125; }
    for (int i = 0; i < NX; i++) { gd1[i] = g1[i]; gd2[i] = g2[i]; }
    for (int i = 0; i < NP; i++) {
        double v = pd[i];
        pd[i] = v + 1e-4; double lp = loss_f64(pd, gd1, gd2);
        pd[i] = v - 1e-4; double lm = loss_f64(pd, gd1, gd2);
        pd[i] = v;
        fd[i] = (lp - lm) / 2e-4;
    }
    // the chunks 3..5 of the adaLN output are unused here: FD and analytic 0
    cmp_result c = compare_f64(an, fd, NP, 1e-5, 1e-5);
    fprintf(stderr, "[modulate] backward max_abs %.3g max_rel %.3g\n", c.max_abs, c.max_rel);
    expect_close_f64("modulate+gate grads vs FD", an, fd, NP, 1e-5, 1e-5);
}

Test(modulate, null_gradients_are_skipped) {
    float x[NX], g[NX], ada[B * LD], dx[NX];
    fill_normal(x, NX, 1, 1.0f);
    fill_normal(g, NX, 2, 1.0f);
    fill_normal(ada, B * LD, 3, 1.0f);
    memset(dx, 0, sizeof dx);
    modulate_backward(NULL, NULL, NULL, g, x, ada + C, B, T, C, LD);
    gate_residual_backward(NULL, dx, NULL, g, x, ada + 2 * C, B, T, C, LD);
    for (int i = 0; i < NX; i++)
        cr_assert_float_eq(dx[i], ada[(i / (T * C)) * LD + 2 * C + i % C] * g[i], 1e-6);
}

// With >= 8 images the backward splits by image and reads dout once
// (nn/cpu/modulate.c FUSE_MIN_B); with fewer it takes two passes. Both must
// give the same bits: B = 10 in one call against ten one-image calls, onto
// nonzero gradients, accumulating and _set, at 1 and 2 threads; sizes past
// the parallel threshold.
Test(modulate, backward_by_image_equals_per_image) {
    enum { BB = 10, TT = 70, CC = 72, L2 = 6 * CC, NB = BB * TT * CC };
    float *x = malloc(sizeof(float) * NB), *g = malloc(sizeof(float) * NB);
    float *par = malloc(sizeof(float) * BB * L2);
    fill_normal(x, NB, 51, 1.0f);
    fill_normal(g, NB, 52, 1.0f);
    fill_normal(par, BB * L2, 53, 0.5f);
    float *init = malloc(sizeof(float) * (2 * NB + BB * L2));
    fill_normal(init, 2 * NB + BB * L2, 54, 1.0f);
    for (int op = 0; op < 4; op++) {   // modulate acc / set, gate acc / set
        float *got[3];
        for (int run = 0; run < 3; run++) {   // one call at 1 and 2 threads, per image
            omp_set_num_threads(run == 1 ? 2 : 1);
            float *r = malloc(sizeof(float) * (2 * NB + BB * L2));
            memcpy(r, init, sizeof(float) * (2 * NB + BB * L2));
            float *dx = r, *dy = r + NB, *dp = r + 2 * NB;
            const int nb = run == 2 ? BB : 1, per = run == 2 ? 1 : BB;
            for (int i = 0; i < nb; i++) {
                const size_t o = (size_t)i * TT * CC, p = (size_t)i * L2;
                if (op == 0) modulate_backward(dx + o, dp + p, dp + p + CC, g + o, x + o, par + p + CC, per, TT, CC, L2);
                if (op == 1) modulate_backward_set(dx + o, dp + p, dp + p + CC, g + o, x + o, par + p + CC, per, TT, CC, L2);
                if (op == 2) gate_residual_backward(dx + o, dy + o, dp + p + 2 * CC, g + o, x + o, par + p + 2 * CC, per, TT, CC, L2);
                if (op == 3) gate_residual_backward_set(dx + o, dy + o, dp + p + 2 * CC, g + o, x + o, par + p + 2 * CC, per, TT, CC, L2);
            }
            got[run] = r;
        }
        const size_t n = 2 * NB + BB * L2;
        cr_expect(memcmp(got[0], got[2], sizeof(float) * n) == 0, "op %d: B %d in one call != per image", op, BB);
        cr_expect(memcmp(got[0], got[1], sizeof(float) * n) == 0, "op %d: omp 1 vs 2 differ", op);
        for (int run = 0; run < 3; run++) free(got[run]);
    }
    omp_set_num_threads(2);
    free(x); free(g); free(par); free(init);
}
