// loss.cu: loss gradients on the GPU (API: ops.h, semantics: nn/loss.h):
// MSE, L1 and the cosine loss (LightningDiT's second term), each with the
// CPU's arithmetic (the cosine parts in double, as nn/cpu/loss.c). The
// values of MSE and cosine are reduced on the device by flow_loss.cu (the
// DiT's fused loss op); the generic value ops of nn/loss.h stay host-only.
// Not here: KL and the VE terms.
#include "nn/cuda/check.cuh"
#include "nn/cuda/cos_parts.cuh"
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

__global__ void k_l1_b(float *dp, float *dt, const float *p, const float *t, int64_t n, float k) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float d = p[i] - t[i];
        float g = d > 0.0f ? k : (d < 0.0f ? -k : 0.0f);
        if (dp) dp[i] += g;
        if (dt) dt[i] -= g;
    }
}

extern "C" int l1_loss_backward_cuda(vcuda_ctx *ctx, float *dpred, float *dtarget, const float *pred,
                                     const float *target, int64_t n, float dloss) {
    if (n <= 0) return VEL_EINVAL;
    k_l1_b<<<vcuda_blocks(n, 256), 256, 0, (cudaStream_t)vcuda_stream(ctx)>>>(
        dpred, dtarget, pred, target, n, (float)(dloss / (double)n));
    VCUDA_LAUNCHED();
    return 0;
}

// One thread per (outer, inner) position; the C channels are strided by inner.
__global__ void k_cos_b(float *dp, float *dt, const float *pred, const float *target, int64_t P,
                        int C, int inner, double k) {
    for (int64_t q = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; q < P;
         q += (int64_t)gridDim.x * blockDim.x) {
        int64_t o = q / inner, j = q % inner;
        int64_t base = o * C * inner + j;
        const float *x = pred + base, *y = target + base;
        double d, nx, ny;
        cos_parts_dev(x, y, C, inner, &d, &nx, &ny);
        double cx = fmax(nx, COS_EPS), cy = fmax(ny, COS_EPS), cs = d / (cx * cy);
        double ax = nx > COS_EPS ? cs / (cx * cx) : 0.0;
        double ay = ny > COS_EPS ? cs / (cy * cy) : 0.0;
        for (int c = 0; c < C; c++) {
            int64_t i = (int64_t)c * inner;
            if (dp) dp[base + i] += (float)(-k * (y[i] / (cx * cy) - ax * x[i]));
            if (dt) dt[base + i] += (float)(-k * (x[i] / (cx * cy) - ay * y[i]));
        }
    }
}

extern "C" int cosine_loss_backward_cuda(vcuda_ctx *ctx, float *dpred, float *dtarget,
                                         const float *pred, const float *target, int outer, int C,
                                         int inner, float dloss) {
    if (outer <= 0 || C <= 0 || inner <= 0) return VEL_EINVAL;
    int64_t P = (int64_t)outer * inner;
    k_cos_b<<<vcuda_blocks(P, 128), 128, 0, (cudaStream_t)vcuda_stream(ctx)>>>(
        dpred, dtarget, pred, target, P, C, inner, (double)dloss / (double)P);
    VCUDA_LAUNCHED();
    return 0;
}
