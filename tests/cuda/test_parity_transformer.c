// test_parity_transformer.c: CUDA vs CPU for the DiT block pieces: SwiGLU,
// modulate, gated residual, 2-D RoPE (on a packed qkv, ld = 3D) and
// the exact attention kernels (forward out and lse, backward dqkv), fp32
// within 1e-4. The CPU
// ops are checked against numpy and finite differences in tests/nn.
// Gradients start non-zero to check accumulation. Skips without a GPU.
#include <stdio.h>
#include <stdlib.h>

#include <criterion/criterion.h>

#include "nn/attention.h"
#include "core/base.h"
#include "nn/modulate.h"
#include "nn/rope.h"
#include "nn/swiglu.h"
#include "tests/cuda/cuda_test.h"

#ifdef VEL_HAVE_CUDA
#include "nn/cuda/ops.h"

#define TOL 1e-4

static float *rnd(int64_t n, uint64_t seed, float std) {
    float *x = malloc((size_t)n * 4);
    fill_normal(x, n, seed, std);
    return x;
}

Test(parity_dit, swiglu) {
    vcuda_ctx *ctx = cuda_test_ctx();
    enum { N = 67, H = 130 };
    float *x12 = rnd(N * 2 * H, 1, 2.0f), *dh = rnd(N * H, 2, 1.0f), *dx = rnd(N * 2 * H, 3, 0.5f);
    float *h = malloc(N * H * 4);
    float *d_x = cuda_test_upload(ctx, x12, N * 2 * H * 4), *d_dh = cuda_test_upload(ctx, dh, N * H * 4);
    float *d_dx = cuda_test_upload(ctx, dx, N * 2 * H * 4), *d_h = cuda_test_upload(ctx, NULL, N * H * 4);
    swiglu_forward(h, x12, N, H);
    swiglu_backward(dx, dh, x12, N, H);
    CUDA_OK(swiglu_forward_cuda(ctx, d_h, d_x, N, H));
    CUDA_OK(swiglu_backward_cuda(ctx, d_dx, d_dh, d_x, N, H));
    CUDA_OK(vcuda_sync(ctx));
    parity_f32(ctx, "swiglu forward", d_h, h, N * H, TOL, TOL);
    parity_f32(ctx, "swiglu backward", d_dx, dx, N * 2 * H, TOL, TOL);
    void *p[] = {d_x, d_dh, d_dx, d_h};
    for (int i = 0; i < 4; i++) vcuda_free(&p[i]);
    free(x12); free(dh); free(dx); free(h);
    vcuda_ctx_destroy(&ctx);
}

Test(parity_dit, modulate_and_gate) {
    vcuda_ctx *ctx = cuda_test_ctx();
    enum { B = 3, T = 37, C = 48, LD = 6 * C, n = B * T * C };
    float *x = rnd(n, 11, 1.0f), *y = rnd(n, 12, 1.0f), *dout = rnd(n, 13, 1.0f);
    float *ada = rnd(B * LD, 14, 0.3f);   // chunks: shift, scale, gate at 0, C, 2C
    float *dada = rnd(B * LD, 15, 0.2f), *dx = rnd(n, 16, 0.5f), *dy = rnd(n, 17, 0.5f);
    float *out = malloc(n * 4);
    float *d_x = cuda_test_upload(ctx, x, n * 4), *d_y = cuda_test_upload(ctx, y, n * 4);
    float *d_g = cuda_test_upload(ctx, dout, n * 4), *d_a = cuda_test_upload(ctx, ada, B * LD * 4);
    float *d_da = cuda_test_upload(ctx, dada, B * LD * 4), *d_dx = cuda_test_upload(ctx, dx, n * 4);
    float *d_dy = cuda_test_upload(ctx, dy, n * 4), *d_o = cuda_test_upload(ctx, NULL, n * 4);
    modulate_forward(out, x, ada, ada + C, B, T, C, LD);
    modulate_backward(dx, dada, dada + C, dout, x, ada + C, B, T, C, LD);
    CUDA_OK(modulate_forward_cuda(ctx, d_o, d_x, d_a, d_a + C, B, T, C, LD));
    CUDA_OK(modulate_backward_cuda(ctx, d_dx, d_da, d_da + C, d_g, d_x, d_a + C, B, T, C, LD));
    CUDA_OK(vcuda_sync(ctx));
    parity_f32(ctx, "modulate forward", d_o, out, n, TOL, TOL);
    parity_f32(ctx, "modulate dx", d_dx, dx, n, TOL, TOL);
    gate_residual_forward(out, x, y, ada + 2 * C, B, T, C, LD);
    gate_residual_backward(dx, dy, dada + 2 * C, dout, y, ada + 2 * C, B, T, C, LD);
    CUDA_OK(gate_residual_forward_cuda(ctx, d_o, d_x, d_y, d_a + 2 * C, B, T, C, LD));
    CUDA_OK(gate_residual_backward_cuda(ctx, d_dx, d_dy, d_da + 2 * C, d_g, d_y, d_a + 2 * C, B, T, C, LD));
    CUDA_OK(vcuda_sync(ctx));
    parity_f32(ctx, "gate_residual forward", d_o, out, n, TOL, TOL);
    parity_f32(ctx, "gate_residual dx", d_dx, dx, n, TOL, TOL);
    parity_f32(ctx, "gate_residual dy", d_dy, dy, n, TOL, TOL);
    // dshift, dscale, dgate all live in the (B, 6C) gradient of the adaLN output.
    parity_f32(ctx, "adaLN gradients (dshift, dscale, dgate)", d_da, dada, B * LD, TOL, TOL);
    void *p[] = {d_x, d_y, d_g, d_a, d_da, d_dx, d_dy, d_o};
    for (int i = 0; i < 8; i++) vcuda_free(&p[i]);
    free(x); free(y); free(dout); free(ada); free(dada); free(dx); free(dy); free(out);
    vcuda_ctx_destroy(&ctx);
}

Test(parity_dit, rope_on_packed_qkv) {
    vcuda_ctx *ctx = cuda_test_ctx();
    enum { B = 2, Hg = 5, Wg = 7, T = Hg * Wg, NH = 3, HD = 16, D = NH * HD, LD = 3 * D };
    float *cs = malloc(T * HD * 4), *sn = malloc(T * HD * 4);
    rope2d_tables(cs, sn, Hg, Wg, HD, 10000.0);
    float *qkv = rnd(B * T * LD, 21, 1.0f), *g = rnd(B * T * LD, 22, 1.0f), *dq = rnd(B * T * LD, 23, 0.5f);
    float *out = malloc(B * T * LD * 4);
    for (int i = 0; i < B * T * LD; i++) out[i] = qkv[i];   // untouched columns stay equal
    float *d_c = cuda_test_upload(ctx, cs, T * HD * 4), *d_s = cuda_test_upload(ctx, sn, T * HD * 4);
    float *d_in = cuda_test_upload(ctx, qkv, B * T * LD * 4), *d_out = cuda_test_upload(ctx, qkv, B * T * LD * 4);
    float *d_g = cuda_test_upload(ctx, g, B * T * LD * 4), *d_dq = cuda_test_upload(ctx, dq, B * T * LD * 4);
    rope_forward(out, qkv, cs, sn, B, T, NH, HD, LD, LD);               // q part
    rope_forward(out + D, qkv + D, cs, sn, B, T, NH, HD, LD, LD);       // k part
    rope_backward(dq, g, cs, sn, B, T, NH, HD, LD, LD);
    CUDA_OK(rope_forward_cuda(ctx, d_out, d_in, d_c, d_s, B, T, NH, HD, LD, LD));
    CUDA_OK(rope_forward_cuda(ctx, d_out + D, d_in + D, d_c, d_s, B, T, NH, HD, LD, LD));
    CUDA_OK(rope_backward_cuda(ctx, d_dq, d_g, d_c, d_s, B, T, NH, HD, LD, LD));
    CUDA_OK(vcuda_sync(ctx));
    parity_f32(ctx, "rope forward (q and k of packed qkv)", d_out, out, B * T * LD, TOL, TOL);
    parity_f32(ctx, "rope backward", d_dq, dq, B * T * LD, TOL, TOL);
    cr_assert_eq(rope_backward_cuda(ctx, d_g, d_g, d_c, d_s, B, T, NH, HD, LD, LD), VEL_EINVAL);
    void *p[] = {d_c, d_s, d_in, d_out, d_g, d_dq};
    for (int i = 0; i < 6; i++) vcuda_free(&p[i]);
    free(cs); free(sn); free(qkv); free(g); free(dq); free(out);
    vcuda_ctx_destroy(&ctx);
}

// The exact (untiled) kernels, the fallback of the tiled ones
// (test_parity_attention checks those).
Test(parity_dit, attention_exact) {
    vcuda_ctx *ctx = cuda_test_ctx();
    // T = 150 spans several of the CPU's 64-key tiles and is not a multiple of 32.
    enum { B = 2, T = 150, NH = 3, HD = 32, D = NH * HD, NQKV = B * T * 3 * D, NO = B * T * D };
    float *qkv = rnd(NQKV, 31, 1.0f), *g = rnd(NO, 32, 1.0f), *dqkv = rnd(NQKV, 33, 0.5f);
    float *out = malloc(NO * 4), *lse = malloc(B * NH * T * 4);
    float *d_qkv = cuda_test_upload(ctx, qkv, NQKV * 4), *d_g = cuda_test_upload(ctx, g, NO * 4);
    float *d_dqkv = cuda_test_upload(ctx, dqkv, NQKV * 4), *d_out = cuda_test_upload(ctx, NULL, NO * 4);
    float *d_lse = cuda_test_upload(ctx, NULL, B * NH * T * 4);
    float *d_scr = cuda_test_upload(ctx, NULL, (size_t)B * NH * T * 4);
    attention_forward(out, lse, qkv, B, T, NH, HD);
    attention_backward(dqkv, g, qkv, out, lse, B, T, NH, HD);
    CUDA_OK(attention_forward_exact_cuda(ctx, d_out, d_lse, d_qkv, B, T, NH, HD));
    CUDA_OK(attention_backward_exact_cuda(ctx, d_dqkv, d_g, d_qkv, d_out, d_lse, d_scr, B, T, NH, HD));
    CUDA_OK(vcuda_sync(ctx));
    parity_f32(ctx, "attention out", d_out, out, NO, TOL, TOL);
    parity_f32(ctx, "attention lse", d_lse, lse, B * NH * T, TOL, TOL);
    parity_f32(ctx, "attention dqkv", d_dqkv, dqkv, NQKV, TOL, TOL);
    cr_assert_eq(attention_forward_exact_cuda(ctx, d_out, d_lse, d_qkv, B, ATTN_CUDA_T_MAX + 1, NH, HD),
                 VEL_EINVAL);
    void *p[] = {d_qkv, d_g, d_dqkv, d_out, d_lse, d_scr};
    for (int i = 0; i < 6; i++) vcuda_free(&p[i]);
    free(qkv); free(g); free(dqkv); free(out); free(lse);
    vcuda_ctx_destroy(&ctx);
}
#else
Test(parity_dit, skipped) { cr_skip_test("built without nvcc: CUDA parity tests skipped"); }
#endif
