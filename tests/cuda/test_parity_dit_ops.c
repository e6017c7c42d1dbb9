// test_parity_dit_ops.c: CUDA vs CPU for the ops LightningDiT gained for the
// GPU: strided row copies (nn/rows.h) forward and backward, and the label
// embedding forward and backward (nn/embed.h) with dropout to the null class.
// All are exact copies or sums in the CPU's order, so they must agree bit for
// bit (tolerance 0). Gradients start non-zero to check accumulation. Also
// the bf16 autocast of the linear op (vcuda_set_autocast_bf16) against the CPU
// linear on the same operands rounded to bf16: the products are exact in
// fp32 on both sides, only the summation order differs, so HACKING's fp32
// tolerance 1e-4 applies. Skips without a GPU.
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "nn/embed.h"
#include "nn/linear.h"
#include "nn/rows.h"
#include "tests/cuda/cuda_test.h"

#ifdef VEL_HAVE_CUDA
#include "nn/cuda/ops.h"

static float *rnd(int64_t n, uint64_t seed) {
    float *x = malloc((size_t)n * 4);
    fill_normal(x, n, seed, 1.0f);
    return x;
}

Test(parity_dit_ops, rows_copy) {
    vcuda_ctx *ctx = cuda_test_ctx();
    enum { N = 300, W = 48, OS = 144, IS = 48 };
    float *inp = rnd(N * IS, 1), *out = rnd(N * OS, 2), *dinp = rnd(N * IS, 3);
    float *d_inp = cuda_test_upload(ctx, inp, N * IS * 4), *d_out = cuda_test_upload(ctx, out, N * OS * 4);
    float *d_dinp = cuda_test_upload(ctx, dinp, N * IS * 4);
    rows_copy_forward(out + W, inp, N, W, OS, IS);
    CUDA_OK(rows_copy_forward_cuda(ctx, d_out + W, d_inp, N, W, OS, IS));
    parity_f32(ctx, "rows_copy_forward", d_out, out, N * OS, 0, 0);
    rows_copy_backward(dinp, out + 2 * W, N, W, OS, IS);
    CUDA_OK(rows_copy_backward_cuda(ctx, d_dinp, d_out + 2 * W, N, W, OS, IS));
    parity_f32(ctx, "rows_copy_backward", d_dinp, dinp, N * IS, 0, 0);
    vcuda_free((void **)&d_inp); vcuda_free((void **)&d_out); vcuda_free((void **)&d_dinp);
    vcuda_ctx_destroy(&ctx);
    free(inp); free(out); free(dinp);
}

Test(parity_dit_ops, label_embed) {
    vcuda_ctx *ctx = cuda_test_ctx();
    enum { B = 67, D = 96, NC = 10 };
    float *table = rnd((NC + 1) * D, 4), *dtable = rnd((NC + 1) * D, 5), *dout = rnd(B * D, 6);
    float *out = malloc(B * D * 4);
    int32_t y[B];
    uint8_t drop[B];
    for (int b = 0; b < B; b++) { y[b] = (b * 7) % (NC + 1); drop[b] = b % 5 == 0; }
    float *d_table = cuda_test_upload(ctx, table, sizeof(float) * (NC + 1) * D);
    float *d_dtable = cuda_test_upload(ctx, dtable, sizeof(float) * (NC + 1) * D);
    float *d_dout = cuda_test_upload(ctx, dout, sizeof(float) * B * D);
    float *d_out = cuda_test_upload(ctx, NULL, sizeof(float) * B * D);
    int32_t *d_y = cuda_test_upload(ctx, y, sizeof y);
    uint8_t *d_drop = cuda_test_upload(ctx, drop, sizeof drop);
    cr_assert_eq(label_embed_forward(out, table, y, drop, B, D, NC), 0);
    CUDA_OK(label_embed_forward_cuda(ctx, d_out, d_table, d_y, d_drop, B, D, NC));
    parity_f32(ctx, "label_embed_forward", d_out, out, B * D, 0, 0);
    label_embed_backward(dtable, dout, y, drop, B, D, NC);
    CUDA_OK(label_embed_backward_cuda(ctx, d_dtable, d_dout, d_y, d_drop, B, D, NC));
    parity_f32(ctx, "label_embed_backward", d_dtable, dtable, (NC + 1) * D, 0, 0);
    void *bufs[] = {d_table, d_dtable, d_dout, d_out, d_y, d_drop};
    for (int i = 0; i < 6; i++) vcuda_free(&bufs[i]);
    vcuda_ctx_destroy(&ctx);
    free(table); free(dtable); free(dout); free(out);
}
Test(parity_dit_ops, linear_autocast_bf16) {
    vcuda_ctx *ctx = cuda_test_ctx();
    enum { N = 200, C = 96, OC = 72 };
    float *inp = rnd(N * C, 7), *w = rnd(OC * C, 8), *bias = rnd(OC, 9), *dout = rnd(N * OC, 10);
    float *dinp = rnd(N * C, 11), *dw = rnd(OC * C, 12), *db = rnd(OC, 13), *out = malloc(N * OC * 4);
    float *d_inp = cuda_test_upload(ctx, inp, N * C * 4), *d_w = cuda_test_upload(ctx, w, OC * C * 4);
    float *d_b = cuda_test_upload(ctx, bias, OC * 4), *d_dout = cuda_test_upload(ctx, dout, N * OC * 4);
    float *d_dinp = cuda_test_upload(ctx, dinp, N * C * 4), *d_dw = cuda_test_upload(ctx, dw, OC * C * 4);
    float *d_db = cuda_test_upload(ctx, db, OC * 4), *d_out = cuda_test_upload(ctx, NULL, N * OC * 4);
    // the CPU side sees the operands the GPU multiplies: rounded to bf16
    free(to_bf16_round(inp, N * C));
    free(to_bf16_round(w, OC * C));
    free(to_bf16_round(dout, N * OC));
    vcuda_set_autocast_bf16(ctx, 1);
    linear_forward(out, inp, w, bias, N, C, OC);
    CUDA_OK(linear_forward_cuda(ctx, d_out, d_inp, d_w, d_b, N, C, OC));
    parity_f32(ctx, "linear autocast forward", d_out, out, N * OC, 1e-4, 1e-4);
    // the bias gradient sums the fp32 dout on the GPU; the CPU gets the rounded one
    float *db_cpu = rnd(OC, 13);
    float *dout32 = rnd(N * OC, 10);
    linear_backward(dinp, dw, NULL, dout, inp, w, N, C, OC);
    linear_backward(NULL, NULL, db_cpu, dout32, inp, w, N, C, OC);
    CUDA_OK(linear_backward_cuda(ctx, d_dinp, d_dw, d_db, d_dout, d_inp, d_w, N, C, OC));
    parity_f32(ctx, "linear autocast dinp", d_dinp, dinp, N * C, 1e-4, 1e-4);
    parity_f32(ctx, "linear autocast dweight", d_dw, dw, OC * C, 1e-4, 1e-4);
    parity_f32(ctx, "linear autocast dbias (fp32)", d_db, db_cpu, OC, 1e-4, 1e-4);
    vcuda_set_autocast_bf16(ctx, 0);
    void *bufs[] = {d_inp, d_w, d_b, d_dout, d_dinp, d_dw, d_db, d_out};
    for (int i = 0; i < 8; i++) vcuda_free(&bufs[i]);
    vcuda_ctx_destroy(&ctx);
    free(inp); free(w); free(bias); free(dout); free(dinp); free(dw); free(db); free(out); free(db_cpu);
    free(dout32);
}
#else
Test(parity_dit_ops, skipped) { cr_skip_test("built without nvcc: CUDA tests skipped"); }
#endif
