// test_parity_conv.c: conv2d forward and backward (data, filter, bias) on
// CUDA (cuDNN, TF32 off) vs the CPU op (nn/conv.h, itself checked against
// numpy and finite differences in tests/nn), fp32 within 1e-4. Covers a 3x3
// same-padding conv, a stride-2 conv with the VAE's asymmetric
// (bottom/right) padding, and a 1x1 conv. Gradients start non-zero to check
// accumulation. Skips with a message without a GPU.
#include <stdio.h>
#include <stdlib.h>

#include <criterion/criterion.h>

#include "core/base.h"
#include "nn/conv.h"
#include "tests/cuda/cuda_test.h"

#ifdef VEL_HAVE_CUDA
#include "nn/cuda/ops.h"

static void check(vcuda_ctx *ctx, const char *tag, conv2d_cfg c) {
    cr_assert_eq(conv2d_validate(&c), 0);
    int OH = conv2d_out_h(&c), OW = conv2d_out_w(&c);
    int64_t nx = (int64_t)c.B * c.C * c.H * c.W, nw = (int64_t)c.OC * c.C * c.KH * c.KW;
    int64_t ny = (int64_t)c.B * c.OC * OH * OW;
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc(c.OC * 4), *y = malloc(ny * 4);
    float *dy = malloc(ny * 4), *dx = malloc(nx * 4), *dw = malloc(nw * 4), *db = malloc(c.OC * 4);
    float *scratch = malloc(conv2d_scratch_floats(&c) * 4 + 4);
    fill_normal(x, nx, 101, 1.0f);
    fill_normal(w, nw, 102, 0.2f);
    fill_normal(b, c.OC, 103, 0.2f);
    fill_normal(dy, ny, 104, 1.0f);
    fill_normal(dx, nx, 105, 0.5f);
    fill_normal(dw, nw, 106, 0.5f);
    fill_normal(db, c.OC, 107, 0.5f);
    float *d_x = cuda_test_upload(ctx, x, nx * 4), *d_w = cuda_test_upload(ctx, w, nw * 4);
    float *d_b = cuda_test_upload(ctx, b, c.OC * 4), *d_y = cuda_test_upload(ctx, NULL, ny * 4);
    float *d_dy = cuda_test_upload(ctx, dy, ny * 4), *d_dx = cuda_test_upload(ctx, dx, nx * 4);
    float *d_dw = cuda_test_upload(ctx, dw, nw * 4), *d_db = cuda_test_upload(ctx, db, c.OC * 4);
    size_t ns = conv2d_scratch_floats_cuda(&c);
    float *d_s = ns ? cuda_test_upload(ctx, NULL, ns * 4) : NULL;
    conv2d_forward(y, x, w, b, scratch, &c);
    conv2d_backward(dx, dw, db, dy, x, w, scratch, &c);
    CUDA_OK(conv2d_forward_cuda(ctx, d_y, d_x, d_w, d_b, d_s, &c));
    CUDA_OK(conv2d_backward_cuda(ctx, d_dx, d_dw, d_db, d_dy, d_x, d_w, d_s, &c));
    CUDA_OK(vcuda_sync(ctx));
    char what[96];
    snprintf(what, sizeof what, "conv %s out", tag);
    parity_f32(ctx, what, d_y, y, ny, 1e-4, 1e-4);
    snprintf(what, sizeof what, "conv %s dinp", tag);
    parity_f32(ctx, what, d_dx, dx, nx, 1e-4, 1e-4);
    snprintf(what, sizeof what, "conv %s dweight", tag);
    parity_f32(ctx, what, d_dw, dw, nw, 1e-4, 1e-4);
    snprintf(what, sizeof what, "conv %s dbias", tag);
    parity_f32(ctx, what, d_db, db, c.OC, 1e-4, 1e-4);
    void *p[] = {d_x, d_w, d_b, d_y, d_dy, d_dx, d_dw, d_db, d_s};
    for (int i = 0; i < 9; i++) vcuda_free(&p[i]);
    free(x); free(w); free(b); free(y); free(dy); free(dx); free(dw); free(db); free(scratch);
}

Test(parity_conv, three_shapes) {
    vcuda_ctx *ctx = cuda_test_ctx();
    check(ctx, "3x3 pad 1", conv2d_make(2, 16, 19, 17, 24, 3, 1, 1));
    conv2d_cfg down = conv2d_make(2, 8, 16, 16, 8, 3, 2, 0);
    down.pad_bottom = down.pad_right = 1;   // the VAE downsample
    check(ctx, "3x3 stride 2 pad br", down);
    check(ctx, "1x1", conv2d_make(3, 32, 8, 8, 16, 1, 1, 0));
    conv2d_cfg bad = conv2d_make(1, 1, 2, 2, 1, 5, 1, 0);   // output would be < 1x1
    cr_assert_eq(conv2d_forward_cuda(ctx, NULL, NULL, NULL, NULL, NULL, &bad), VEL_EINVAL);
    vcuda_ctx_destroy(&ctx);
}
#else
Test(parity_conv, skipped) { cr_skip_test("built without nvcc: CUDA parity tests skipped"); }
#endif
