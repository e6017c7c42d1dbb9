// test_parity_linear.c: linear forward and backward on CUDA vs the CPU op
// (nn/linear.h, itself checked against numpy and finite differences in
// tests/nn): fp32 with TF32 off within 1e-4; bf16 inputs with fp32
// accumulation within rtol 1e-2 and NMSE <= 1e-4 against the CPU on the same
// bf16-rounded inputs. Gradients start non-zero to check accumulation (+=).
// Skips with a message without a GPU.
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "nn/linear.h"
#include "tests/cuda/cuda_test.h"

#ifdef VEL_HAVE_CUDA
#include "nn/cuda/ops.h"

// Odd sizes on purpose: no dimension a multiple of the GEMM tiles.
enum { N = 77, C = 130, OC = 61 };

Test(parity_linear, fp32_forward_backward) {
    vcuda_ctx *ctx = cuda_test_ctx();
    float *x = malloc(N * C * 4), *w = malloc(OC * C * 4), *b = malloc(OC * 4);
    float *y = malloc(N * OC * 4), *dy = malloc(N * OC * 4);
    float *dx = malloc(N * C * 4), *dw = malloc(OC * C * 4), *db = malloc(OC * 4);
    fill_normal(x, N * C, 1, 1.0f);
    fill_normal(w, OC * C, 2, 0.1f);
    fill_normal(b, OC, 3, 0.1f);
    fill_normal(dy, N * OC, 4, 1.0f);
    fill_normal(dx, N * C, 5, 0.5f);
    fill_normal(dw, OC * C, 6, 0.5f);
    fill_normal(db, OC, 7, 0.5f);
    float *d_x = cuda_test_upload(ctx, x, N * C * 4), *d_w = cuda_test_upload(ctx, w, OC * C * 4);
    float *d_b = cuda_test_upload(ctx, b, OC * 4), *d_y = cuda_test_upload(ctx, NULL, N * OC * 4);
    float *d_dy = cuda_test_upload(ctx, dy, N * OC * 4), *d_dx = cuda_test_upload(ctx, dx, N * C * 4);
    float *d_dw = cuda_test_upload(ctx, dw, OC * C * 4), *d_db = cuda_test_upload(ctx, db, OC * 4);
    linear_forward(y, x, w, b, N, C, OC);
    linear_backward(dx, dw, db, dy, x, w, N, C, OC);
    CUDA_OK(linear_forward_cuda(ctx, d_y, d_x, d_w, d_b, N, C, OC));
    CUDA_OK(linear_backward_cuda(ctx, d_dx, d_dw, d_db, d_dy, d_x, d_w, N, C, OC));
    CUDA_OK(vcuda_sync(ctx));
    parity_f32(ctx, "linear out", d_y, y, N * OC, 1e-4, 1e-4);
    parity_f32(ctx, "linear dinp", d_dx, dx, N * C, 1e-4, 1e-4);
    parity_f32(ctx, "linear dweight", d_dw, dw, OC * C, 1e-4, 1e-4);
    parity_f32(ctx, "linear dbias", d_db, db, OC, 1e-4, 1e-4);
    // No bias, NULL gradients: must not touch anything else.
    linear_forward(y, x, w, NULL, N, C, OC);
    CUDA_OK(linear_forward_cuda(ctx, d_y, d_x, d_w, NULL, N, C, OC));
    CUDA_OK(linear_backward_cuda(ctx, NULL, NULL, d_db, d_dy, d_x, d_w, N, C, OC));
    linear_backward(NULL, NULL, db, dy, x, w, N, C, OC);
    parity_f32(ctx, "linear out (no bias)", d_y, y, N * OC, 1e-4, 1e-4);
    parity_f32(ctx, "linear dbias (second accumulation)", d_db, db, OC, 1e-4, 1e-4);
    void *ptrs[] = {d_x, d_w, d_b, d_y, d_dy, d_dx, d_dw, d_db};
    for (int i = 0; i < 8; i++) vcuda_free(&ptrs[i]);
    free(x); free(w); free(b); free(y); free(dy); free(dx); free(dw); free(db);
    vcuda_ctx_destroy(&ctx);
}

Test(parity_linear, bf16_forward_backward) {
    vcuda_ctx *ctx = cuda_test_ctx();
    float *x = malloc(N * C * 4), *w = malloc(OC * C * 4), *b = malloc(OC * 4);
    float *y = malloc(N * OC * 4), *dy = malloc(N * OC * 4);
    float *dx = calloc(N * C, 4), *dw = calloc(OC * C, 4), *db = calloc(OC, 4);
    fill_normal(x, N * C, 11, 1.0f);
    fill_normal(w, OC * C, 12, 0.1f);
    fill_normal(b, OC, 13, 0.1f);
    fill_normal(dy, N * OC, 14, 1.0f);
    uint16_t *xb = to_bf16_round(x, N * C), *wb = to_bf16_round(w, OC * C);
    uint16_t *dyb = to_bf16_round(dy, N * OC);
    linear_forward(y, x, w, b, N, C, OC);
    linear_backward(dx, dw, db, dy, x, w, N, C, OC);
    uint16_t *d_x = cuda_test_upload(ctx, xb, N * C * 2), *d_w = cuda_test_upload(ctx, wb, OC * C * 2);
    uint16_t *d_dy = cuda_test_upload(ctx, dyb, N * OC * 2), *d_y = cuda_test_upload(ctx, NULL, N * OC * 2);
    uint16_t *d_dx = cuda_test_upload(ctx, NULL, N * C * 2);
    float *d_b = cuda_test_upload(ctx, b, OC * 4), *d_dw = cuda_test_upload(ctx, NULL, OC * C * 4);
    float *d_db = cuda_test_upload(ctx, NULL, OC * 4);
    CUDA_OK(linear_forward_cuda_bf16(ctx, d_y, d_x, d_w, d_b, N, C, OC));
    CUDA_OK(linear_backward_cuda_bf16(ctx, d_dx, d_dw, d_db, d_dy, d_x, d_w, N, C, OC));
    CUDA_OK(vcuda_sync(ctx));
    // atol: outputs are O(1); 1e-2 absolute covers the bf16 rounding of values
    // near zero where rtol alone is meaningless.
    parity_bf16(ctx, "linear out", d_y, y, N * OC, 1e-2);
    parity_bf16(ctx, "linear dinp", d_dx, dx, N * C, 1e-2);
    // bf16 x bf16 products are exact in fp32, so only the summation order
    // differs from the CPU: the fp32 tolerance applies.
    parity_f32(ctx, "linear dweight (bf16 inputs, fp32 accumulate)", d_dw, dw, OC * C, 1e-4, 1e-4);
    parity_f32(ctx, "linear dbias (bf16 inputs)", d_db, db, OC, 1e-4, 1e-4);
    void *ptrs[] = {d_x, d_w, d_dy, d_y, d_dx, d_b, d_dw, d_db};
    for (int i = 0; i < 8; i++) vcuda_free(&ptrs[i]);
    free(x); free(w); free(b); free(y); free(dy); free(dx); free(dw); free(db);
    free(xb); free(wb); free(dyb);
    vcuda_ctx_destroy(&ctx);
}
#else
Test(parity_linear, skipped) { cr_skip_test("built without nvcc: CUDA parity tests skipped"); }
#endif
