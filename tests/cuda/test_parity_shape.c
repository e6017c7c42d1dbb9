// test_parity_shape.c: CUDA vs CPU for the element-wise ops (add, mul,
// scale, per-channel bias) and the data-movement ops (upsample x2, padding,
// channel concat/split, patchify/unpatchify in both token orders), forward
// and backward, fp32 within 1e-4 (most are exact copies or single adds).
// Gradients start non-zero to check accumulation. Skips without a GPU.
#include <stdio.h>
#include <stdlib.h>

#include <criterion/criterion.h>

#include "core/base.h"
#include "nn/elementwise.h"
#include "nn/shape_ops.h"
#include "tests/cuda/cuda_test.h"

#ifdef VEL_HAVE_CUDA
#include "nn/cuda/ops.h"

#define TOL 1e-4

typedef struct {
    vcuda_ctx *ctx;
    void *dev[24];
    int nd;
} pool;

static float *up(pool *p, const float *h, int64_t n) {
    float *d = cuda_test_upload(p->ctx, h, (size_t)n * 4);
    p->dev[p->nd++] = d;
    return d;
}
static void release(pool *p) {
    for (int i = 0; i < p->nd; i++) vcuda_free(&p->dev[i]);
    p->nd = 0;
}
static float *rnd(int64_t n, uint64_t seed) {
    float *x = malloc((size_t)n * 4);
    fill_normal(x, n, seed, 1.0f);
    return x;
}

Test(parity_shape, elementwise) {
    pool P = {.ctx = cuda_test_ctx()};
    enum { B = 2, C = 5, HW = 37, n = B * C * HW };
    float *a = rnd(n, 1), *b = rnd(n, 2), *g = rnd(n, 3), *da = rnd(n, 4), *db = rnd(n, 5);
    float *bias = rnd(C, 6), *dbias = rnd(C, 7), *out = malloc(n * 4);
    float *d_a = up(&P, a, n), *d_b = up(&P, b, n), *d_g = up(&P, g, n), *d_da = up(&P, da, n);
    float *d_db = up(&P, db, n), *d_bias = up(&P, bias, C), *d_dbias = up(&P, dbias, C);
    float *d_o = up(&P, NULL, n);
    add_forward(out, a, b, n);
    CUDA_OK(add_forward_cuda(P.ctx, d_o, d_a, d_b, n));
    parity_f32(P.ctx, "add", d_o, out, n, TOL, TOL);
    mul_forward(out, a, b, n);
    CUDA_OK(mul_forward_cuda(P.ctx, d_o, d_a, d_b, n));
    parity_f32(P.ctx, "mul", d_o, out, n, TOL, TOL);
    scale_forward(out, a, 0.37f, n);
    CUDA_OK(scale_forward_cuda(P.ctx, d_o, d_a, 0.37f, n));
    parity_f32(P.ctx, "scale", d_o, out, n, TOL, TOL);
    add_channel_bias_forward(out, a, bias, B, C, HW);
    CUDA_OK(add_channel_bias_forward_cuda(P.ctx, d_o, d_a, d_bias, B, C, HW));
    parity_f32(P.ctx, "add_channel_bias", d_o, out, n, TOL, TOL);
    // Backwards, chained into the same accumulators.
    add_backward(da, db, g, n);
    mul_backward(da, db, g, a, b, n);
    scale_backward(da, g, -1.5f, n);
    add_inplace(db, g, n);
    add_channel_bias_backward(da, dbias, g, B, C, HW);
    CUDA_OK(add_backward_cuda(P.ctx, d_da, d_db, d_g, n));
    CUDA_OK(mul_backward_cuda(P.ctx, d_da, d_db, d_g, d_a, d_b, n));
    CUDA_OK(scale_backward_cuda(P.ctx, d_da, d_g, -1.5f, n));
    CUDA_OK(add_inplace_cuda(P.ctx, d_db, d_g, n));
    CUDA_OK(add_channel_bias_backward_cuda(P.ctx, d_da, d_dbias, d_g, B, C, HW));
    CUDA_OK(vcuda_sync(P.ctx));
    parity_f32(P.ctx, "elementwise da", d_da, da, n, TOL, TOL);
    parity_f32(P.ctx, "elementwise db", d_db, db, n, TOL, TOL);
    parity_f32(P.ctx, "add_channel_bias dbias", d_dbias, dbias, C, TOL, TOL);
    release(&P);
    free(a); free(b); free(g); free(da); free(db); free(bias); free(dbias); free(out);
    vcuda_ctx_destroy(&P.ctx);
}

Test(parity_shape, upsample_pad_concat_split) {
    pool P = {.ctx = cuda_test_ctx()};
    enum { B = 2, C = 3, H = 5, W = 7, n = B * C * H * W, Cb = 4, nb = B * Cb * H * W };
    float *x = rnd(n, 11), *x2 = rnd(nb, 12), *dx = rnd(n, 13), *dx2 = rnd(nb, 14);
    float *g_up = rnd(4 * n, 15), *g_pad = rnd(B * C * (H + 3) * (W + 1), 16), *g_cat = rnd(n + nb, 17);
    float *out = malloc((4 * n + n + nb) * 4);
    float *d_x = up(&P, x, n), *d_x2 = up(&P, x2, nb), *d_dx = up(&P, dx, n), *d_dx2 = up(&P, dx2, nb);
    float *d_gup = up(&P, g_up, 4 * n), *d_gpad = up(&P, g_pad, B * C * (H + 3) * (W + 1));
    float *d_gcat = up(&P, g_cat, n + nb), *d_o = up(&P, NULL, 4 * n + n + nb);
    upsample2x_forward(out, x, B, C, H, W);
    CUDA_OK(upsample2x_forward_cuda(P.ctx, d_o, d_x, B, C, H, W));
    parity_f32(P.ctx, "upsample2x forward", d_o, out, 4 * n, TOL, TOL);
    pad2d_forward(out, x, B, C, H, W, 1, 2, 0, 1);
    CUDA_OK(pad2d_forward_cuda(P.ctx, d_o, d_x, B, C, H, W, 1, 2, 0, 1));
    parity_f32(P.ctx, "pad2d forward", d_o, out, B * C * (H + 3) * (W + 1), TOL, TOL);
    concat_channels_forward(out, x, x2, B, C, Cb, H * W);
    CUDA_OK(concat_channels_forward_cuda(P.ctx, d_o, d_x, d_x2, B, C, Cb, H * W));
    parity_f32(P.ctx, "concat forward", d_o, out, n + nb, TOL, TOL);
    split_channels_forward(out, out + n, g_cat, B, C, Cb, H * W);
    CUDA_OK(split_channels_forward_cuda(P.ctx, d_o, d_o + n, d_gcat, B, C, Cb, H * W));
    parity_f32(P.ctx, "split forward", d_o, out, n + nb, TOL, TOL);
    upsample2x_backward(dx, g_up, B, C, H, W);
    pad2d_backward(dx, g_pad, B, C, H, W, 1, 2, 0, 1);
    concat_channels_backward(dx, dx2, g_cat, B, C, Cb, H * W);
    CUDA_OK(upsample2x_backward_cuda(P.ctx, d_dx, d_gup, B, C, H, W));
    CUDA_OK(pad2d_backward_cuda(P.ctx, d_dx, d_gpad, B, C, H, W, 1, 2, 0, 1));
    CUDA_OK(concat_channels_backward_cuda(P.ctx, d_dx, d_dx2, d_gcat, B, C, Cb, H * W));
    CUDA_OK(vcuda_sync(P.ctx));
    parity_f32(P.ctx, "upsample+pad+concat backward (a)", d_dx, dx, n, TOL, TOL);
    parity_f32(P.ctx, "concat backward (b)", d_dx2, dx2, nb, TOL, TOL);
    // split backward accumulates into an input-sized gradient
    float *gi = rnd(n + nb, 18);
    float *d_gi = up(&P, gi, n + nb);
    split_channels_backward(gi, x, x2, B, C, Cb, H * W);
    CUDA_OK(split_channels_backward_cuda(P.ctx, d_gi, d_x, d_x2, B, C, Cb, H * W));
    CUDA_OK(vcuda_sync(P.ctx));
    parity_f32(P.ctx, "split backward", d_gi, gi, n + nb, TOL, TOL);
    cr_assert_eq(pad2d_forward_cuda(P.ctx, d_o, d_x, B, C, H, W, -1, 0, 0, 0), VEL_EINVAL);
    release(&P);
    free(x); free(x2); free(dx); free(dx2); free(g_up); free(g_pad); free(g_cat); free(out); free(gi);
    vcuda_ctx_destroy(&P.ctx);
}

Test(parity_shape, patchify_both_orders) {
    pool P = {.ctx = cuda_test_ctx()};
    enum { B = 2, C = 3, H = 6, W = 4, n = B * C * H * W };
    float *x = rnd(n, 21), *tok = rnd(n, 22), *dx = rnd(n, 23), *dt = rnd(n, 24), *out = malloc(n * 4);
    for (int order = 0; order < 2; order++)
        for (int p = 1; p <= 2; p++) {
            float *d_x = up(&P, x, n), *d_tok = up(&P, tok, n), *d_dx = up(&P, dx, n);
            float *d_dt = up(&P, dt, n), *d_o = up(&P, NULL, n);
            float *cdx = malloc(n * 4), *cdt = malloc(n * 4);
            for (int i = 0; i < n; i++) { cdx[i] = dx[i]; cdt[i] = dt[i]; }
            char what[64];
            patchify_forward(out, x, B, C, H, W, p, (patch_order)order);
            CUDA_OK(patchify_forward_cuda(P.ctx, d_o, d_x, B, C, H, W, p, (patch_order)order));
            snprintf(what, sizeof what, "patchify p=%d order=%d", p, order);
            parity_f32(P.ctx, what, d_o, out, n, TOL, TOL);
            unpatchify_forward(out, tok, B, C, H, W, p, (patch_order)order);
            CUDA_OK(unpatchify_forward_cuda(P.ctx, d_o, d_tok, B, C, H, W, p, (patch_order)order));
            snprintf(what, sizeof what, "unpatchify p=%d order=%d", p, order);
            parity_f32(P.ctx, what, d_o, out, n, TOL, TOL);
            patchify_backward(cdx, tok, B, C, H, W, p, (patch_order)order);
            unpatchify_backward(cdt, x, B, C, H, W, p, (patch_order)order);
            CUDA_OK(patchify_backward_cuda(P.ctx, d_dx, d_tok, B, C, H, W, p, (patch_order)order));
            CUDA_OK(unpatchify_backward_cuda(P.ctx, d_dt, d_x, B, C, H, W, p, (patch_order)order));
            CUDA_OK(vcuda_sync(P.ctx));
            snprintf(what, sizeof what, "patchify backward p=%d order=%d", p, order);
            parity_f32(P.ctx, what, d_dx, cdx, n, TOL, TOL);
            snprintf(what, sizeof what, "unpatchify backward p=%d order=%d", p, order);
            parity_f32(P.ctx, what, d_dt, cdt, n, TOL, TOL);
            free(cdx); free(cdt);
            release(&P);
        }
    float *d_x = up(&P, x, n), *d_o = up(&P, NULL, n);
    cr_assert_eq(patchify_forward_cuda(P.ctx, d_o, d_x, B, C, H, W, 4, PATCH_CPQ), VEL_EINVAL);  // 6 % 4
    release(&P);
    free(x); free(tok); free(dx); free(dt); free(out);
    vcuda_ctx_destroy(&P.ctx);
}
#else
Test(parity_shape, skipped) { cr_skip_test("built without nvcc: CUDA parity tests skipped"); }
#endif
