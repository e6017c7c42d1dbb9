// test_parity_loss.c: loss gradients on CUDA vs the CPU (nn/loss.h, checked
// against numpy and finite differences in tests/nn): MSE, L1 and cosine
// (NCHW view and token view, plus an all-zero position where the eps clamp
// is active), accumulating into both gradients. MSE and L1 repeat the CPU's
// float operations exactly, the cosine terms are computed in double on both
// sides, so the check is 1e-6. Skips without a GPU.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "core/base.h"
#include "nn/loss.h"
#include "tests/cuda/cuda_test.h"

#ifdef VEL_HAVE_CUDA
#include "nn/cuda/ops.h"

enum { N = 4099 };

static void run(int which, int outer, int C, int inner) {
    vcuda_ctx *ctx = cuda_test_ctx();
    int64_t n = which == 2 ? (int64_t)outer * C * inner : N;
    float *p = malloc(n * 4), *t = malloc(n * 4), *dp = malloc(n * 4), *dt = malloc(n * 4);
    fill_normal(p, n, 81, 1.0f);
    fill_normal(t, n, 82, 1.0f);
    fill_normal(dp, n, 83, 0.1f);
    fill_normal(dt, n, 84, 0.1f);
    if (which == 1) p[5] = t[5];   // L1: the zero-gradient case
    if (which == 2)                // cosine: one all-zero prediction vector (eps clamp)
        for (int c = 0; c < C; c++) p[(int64_t)c * inner] = 0.0f;
    float *d_p = cuda_test_upload(ctx, p, n * 4), *d_t = cuda_test_upload(ctx, t, n * 4);
    float *d_dp = cuda_test_upload(ctx, dp, n * 4), *d_dt = cuda_test_upload(ctx, dt, n * 4);
    const char *name = which == 0 ? "mse" : which == 1 ? "l1" : "cosine";
    if (which == 0) {
        mse_loss_backward(dp, dt, p, t, n, 0.7f);
        CUDA_OK(mse_loss_backward_cuda(ctx, d_dp, d_dt, d_p, d_t, n, 0.7f));
    } else if (which == 1) {
        l1_loss_backward(dp, dt, p, t, n, 0.7f);
        CUDA_OK(l1_loss_backward_cuda(ctx, d_dp, d_dt, d_p, d_t, n, 0.7f));
    } else {
        cosine_loss_backward(dp, dt, p, t, outer, C, inner, 0.7f);
        CUDA_OK(cosine_loss_backward_cuda(ctx, d_dp, d_dt, d_p, d_t, outer, C, inner, 0.7f));
    }
    CUDA_OK(vcuda_sync(ctx));
    char what[64];
    snprintf(what, sizeof what, "%s dpred", name);
    parity_f32(ctx, what, d_dp, dp, n, 1e-6, 1e-6);
    snprintf(what, sizeof what, "%s dtarget", name);
    parity_f32(ctx, what, d_dt, dt, n, 1e-6, 1e-6);
    cr_assert_eq(mse_loss_backward_cuda(ctx, d_dp, NULL, d_p, d_t, 0, 1.0f), VEL_EINVAL);
    void *ptrs[] = {d_p, d_t, d_dp, d_dt};
    for (int i = 0; i < 4; i++) vcuda_free(&ptrs[i]);
    free(p); free(t); free(dp); free(dt);
    vcuda_ctx_destroy(&ctx);
}

Test(parity_loss, mse) { run(0, 0, 0, 0); }
Test(parity_loss, l1) { run(1, 0, 0, 0); }
Test(parity_loss, cosine_nchw) { run(2, 3, 32, 49); }
Test(parity_loss, cosine_tokens) { run(2, 130, 32, 1); }
#else
Test(parity_loss, skipped) { cr_skip_test("built without nvcc: CUDA parity tests skipped"); }
#endif
