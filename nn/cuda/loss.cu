// loss.cu: loss gradients on the GPU (API: ops.h, semantics: nn/loss.h).
// Only MSE so far; the loss VALUE stays a host-side reduction for now (the
// training loops read it every few steps, not every step).
// Not here: L1, cosine, KL and the VE terms (nn/loss.h lists them).
#include "nn/cuda/check.cuh"
#include "nn/cuda/ops.h"

__global__ void k_mse_b(float *dp, float *dt, const float *p, const float *t, int64_t n, float k) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float g = k * (p[i] - t[i]);
        if (dp) dp[i] += g;
        if (dt) dt[i] -= g;
    }
}

extern "C" int mse_loss_backward_cuda(vcuda_ctx *ctx, float *dpred, float *dtarget, const float *pred,
                                      const float *target, int64_t n, float dloss) {
    if (n <= 0) return VEL_EINVAL;
    const float k = (float)(2.0 * dloss / (double)n);   // the CPU's rounding of the scale
    k_mse_b<<<vcuda_blocks(n, 256), 256, 0, (cudaStream_t)vcuda_stream(ctx)>>>(dpred, dtarget, pred,
                                                                               target, n, k);
    VCUDA_LAUNCHED();
    return 0;
}
