// test_shape_ops.c: nn/shape_ops.h against tests/ref/gen_dense_shape.py:
// upsample, padding, concat/split, patchify/unpatchify in both token orders
// (the generator checks PATCH_PQC against DiT's unpatchify einsum), every
// backward vs float64 central finite differences and accumulating; plus a
// cross-check that a kernel = stride = p conv2d equals linear on PATCH_CPQ
// tokens (LightningDiT's patch embed done as a linear layer).
#include <omp.h>

#include "nn/conv.h"
#include "nn/linear.h"
#include "nn/shape_ops.h"
#include "tests/nn/dense_check.h"

#define G "dense_shape"
enum { B = 2, C = 3, H = 4, W = 6, N = B * C * H * W };

static float *ld(const char *name) { return ref_f32(G, name, NULL); }
static double *ldd(const char *name) { return ref_f64(G, name, NULL); }

Test(shape_ops, upsample2x) {
    float *x = ld("x"), *g0 = ld("g0_x"), *R = ld("up_R");
    double *oref = ldd("up_out"), *dref = ldd("up_dinp");
    float *y = malloc(sizeof(float) * N * 4), *dx = copy_f32(g0, N);
    upsample2x_forward(y, x, B, C, H, W);
    check_vs("upsample2x fwd", y, oref, N * 4, 0, 0);
    upsample2x_backward(dx, R, B, C, H, W);
    check_grad("upsample2x dinp", dx, g0, dref, N, 1e-6, 1e-6);
    free(x); free(g0); free(R); free(oref); free(dref); free(y); free(dx);
}

Test(shape_ops, pad2d) {
    const int pads[2][4] = {{0, 1, 0, 1}, {1, 2, 3, 0}};
    float *x = ld("x"), *g0 = ld("g0_x");
    for (int k = 0; k < 2; k++) {
        const int *p = pads[k];
        int64_t no = (int64_t)B * C * (H + p[0] + p[1]) * (W + p[2] + p[3]);
        char key[32], what[64];
        snprintf(key, sizeof key, "pad%d_R", k);
        float *R = ld(key);
        snprintf(key, sizeof key, "pad%d_out", k);
        double *oref = ldd(key);
        snprintf(key, sizeof key, "pad%d_dinp", k);
        double *dref = ldd(key);
        float *y = malloc(sizeof(float) * no), *dx = copy_f32(g0, N);
        for (int64_t i = 0; i < no; i++) y[i] = 1234.0f;   // must be overwritten
        pad2d_forward(y, x, B, C, H, W, p[0], p[1], p[2], p[3]);
        snprintf(what, sizeof what, "pad2d %d%d%d%d fwd", p[0], p[1], p[2], p[3]);
        check_vs(what, y, oref, no, 0, 0);
        pad2d_backward(dx, R, B, C, H, W, p[0], p[1], p[2], p[3]);
        snprintf(what, sizeof what, "pad2d %d%d%d%d dinp", p[0], p[1], p[2], p[3]);
        check_grad(what, dx, g0, dref, N, 1e-6, 1e-6);
        free(R); free(oref); free(dref); free(y); free(dx);
    }
    free(x); free(g0);
}

Test(shape_ops, concat_split_channels) {
    enum { CB = 2, NY = B * CB * H * W };
    float *x = ld("x"), *y = ld("y");
    double *ref = ldd("cat_out");
    float *cat = malloc(sizeof(float) * (N + NY));
    concat_channels_forward(cat, x, y, B, C, CB, H * W);
    check_vs("concat fwd", cat, ref, N + NY, 0, 0);
    float *a = malloc(sizeof(float) * N), *b = malloc(sizeof(float) * NY);
    split_channels_forward(a, b, cat, B, C, CB, H * W);
    expect_same_bits("split a", a, x, N);
    expect_same_bits("split b", b, y, NY);
    // concat backward = split of dout, accumulated; split backward = concat.
    float *da = calloc(N, sizeof(float)), *db = calloc(NY, sizeof(float));
    for (int i = 0; i < N; i++) da[i] = 1.0f;
    concat_channels_backward(da, db, cat, B, C, CB, H * W);
    for (int i = 0; i < N; i++) cr_expect_eq(da[i], 1.0f + x[i]);
    expect_same_bits("concat db", db, y, NY);
    float *dcat = malloc(sizeof(float) * (N + NY));
    for (int i = 0; i < N + NY; i++) dcat[i] = 0.5f;
    split_channels_backward(dcat, x, NULL, B, C, CB, H * W);   // only a's gradient
    for (int bb = 0; bb < B; bb++)
        for (int i = 0; i < (C + CB) * H * W; i++) {
            float want = i < C * H * W ? 0.5f + x[bb * C * H * W + i] : 0.5f;
            cr_expect_eq(dcat[bb * (C + CB) * H * W + i], want);
        }
    free(x); free(y); free(ref); free(cat); free(a); free(b); free(da); free(db); free(dcat);
}

Test(shape_ops, patchify_unpatchify) {
    float *x = ld("x"), *g0 = ld("g0_x");
    const int ps[2] = {1, 2};
    for (int k = 0; k < 2; k++) {
        int p = ps[k];
        int64_t nt = N;   // permutation: same element count
        char key[32], what[64];
        snprintf(key, sizeof key, "p%d_R", p);
        float *R = ld(key);
        for (int o = 0; o < 2; o++) {
            patch_order order = o ? PATCH_PQC : PATCH_CPQ;
            const char *on = o ? "pqc" : "cpq";
            snprintf(key, sizeof key, "p%d_%s_tok", p, on);
            double *tref = ldd(key);
            snprintf(key, sizeof key, "p%d_%s_dinp", p, on);
            double *dref = ldd(key);
            float *tok = malloc(sizeof(float) * nt), *back = malloc(sizeof(float) * N);
            patchify_forward(tok, x, B, C, H, W, p, order);
            snprintf(what, sizeof what, "patchify p%d %s fwd", p, on);
            check_vs(what, tok, tref, nt, 0, 0);
            unpatchify_forward(back, tok, B, C, H, W, p, order);
            snprintf(what, sizeof what, "unpatchify p%d %s", p, on);
            expect_same_bits(what, back, x, N);
            float *dx = copy_f32(g0, N);
            patchify_backward(dx, R, B, C, H, W, p, order);
            snprintf(what, sizeof what, "patchify p%d %s dinp", p, on);
            check_grad(what, dx, g0, dref, N, 1e-6, 1e-6);
            // unpatchify backward: dtok += patchify(dimage)
            float *dtok = calloc(nt, sizeof(float)), *want = malloc(sizeof(float) * nt);
            unpatchify_backward(dtok, g0, B, C, H, W, p, order);
            patchify_forward(want, g0, B, C, H, W, p, order);
            snprintf(what, sizeof what, "unpatchify p%d %s dtok", p, on);
            expect_same_bits(what, dtok, want, nt);
            free(tref); free(dref); free(tok); free(back); free(dx); free(dtok); free(want);
        }
        free(R);
    }
    free(x); free(g0);
}

// LightningDiT's patch embed: Conv2d(C, D, k=p, s=p) then flatten+transpose
// to (B, T, D). With PATCH_CPQ tokens it is linear_forward with the conv
// weight viewed as (D, C*p*p).
Test(shape_ops, patch_embed_conv_equals_linear) {
    enum { P = 2, D = 5, T = (H / P) * (W / P) };
    float *x = ld("x");
    float wgt[D * C * P * P], bias[D];
    fill_normal(wgt, D * C * P * P, 51, 0.3f);
    fill_normal(bias, D, 52, 1.0f);
    conv2d_cfg c = conv2d_make(B, C, H, W, D, P, P, 0);
    float *scratch = malloc(sizeof(float) * conv2d_scratch_floats(&c));
    float conv_out[B * D * T], tok[B * T * C * P * P], lin[B * T * D];
    conv2d_forward(conv_out, x, wgt, bias, scratch, &c);
    patchify_forward(tok, x, B, C, H, W, P, PATCH_CPQ);
    linear_forward(lin, tok, wgt, bias, B * T, C * P * P, D);
    double want[B * T * D];
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int d = 0; d < D; d++) want[(b * T + t) * D + d] = conv_out[(b * D + d) * T + t];
    // Same 12 products summed by two different GEMM calls: rounding only.
    check_vs("patch embed conv vs linear", lin, want, B * T * D, 1e-6, 1e-6);
    free(x); free(scratch);
}

Test(shape_ops, one_vs_two_threads_identical) {
    enum { BB = 3, CC = 8, HH = 16, WW = 16, NN = BB * CC * HH * WW };
    float *x = malloc(sizeof(float) * NN), *g = malloc(sizeof(float) * NN * 4);
    fill_normal(x, NN, 61, 1.0f); fill_normal(g, NN * 4, 62, 1.0f);
    float *r[2][3];
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t + 1);
        r[t][0] = malloc(sizeof(float) * NN * 4);
        r[t][1] = calloc(NN, sizeof(float));
        r[t][2] = calloc(NN, sizeof(float));
        upsample2x_forward(r[t][0], x, BB, CC, HH, WW);
        upsample2x_backward(r[t][1], g, BB, CC, HH, WW);
        patchify_backward(r[t][2], g, BB, CC, HH, WW, 2, PATCH_PQC);
    }
    expect_same_bits("upsample fwd", r[0][0], r[1][0], NN * 4);
    expect_same_bits("upsample bwd", r[0][1], r[1][1], NN);
    expect_same_bits("patchify bwd", r[0][2], r[1][2], NN);
    for (int t = 0; t < 2; t++) for (int k = 0; k < 3; k++) free(r[t][k]);
    free(x); free(g);
}
