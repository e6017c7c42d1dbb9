// ema.cu: the parameter EMA on the GPU (semantics: nn/ema.h): the same fp32
// expression as nn/ema.c, rounded step by step (no fused multiply-add), so
// the shadow matches the CPU's bit for bit.
#include "nn/cuda/check.cuh"
#include "nn/cuda/ops.h"

static __global__ void k_ema(float *s, const float *p, int64_t n, float d, float w) {
    for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < n;
         k += (int64_t)gridDim.x * blockDim.x)
        s[k] = __fadd_rn(__fmul_rn(s[k], d), __fmul_rn(p[k], w));
}

static __global__ void k_swap(float *a, float *b, int64_t n) {
    for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < n;
         k += (int64_t)gridDim.x * blockDim.x) {
        float t = a[k];
        a[k] = b[k];
        b[k] = t;
    }
}

extern "C" int ema_update_cuda(vcuda_ctx *ctx, float *shadow, const float *values, int64_t n,
                               double decay) {
    if (n <= 0) return 0;
    k_ema<<<vcuda_blocks(n, 256), 256, 0, (cudaStream_t)vcuda_stream(ctx)>>>(
        shadow, values, n, (float)decay, (float)(1.0 - decay));
    VCUDA_LAUNCHED();
    return 0;
}

extern "C" int ema_swap_cuda(vcuda_ctx *ctx, float *shadow, float *values, int64_t n) {
    if (n <= 0) return 0;
    k_swap<<<vcuda_blocks(n, 256), 256, 0, (cudaStream_t)vcuda_stream(ctx)>>>(shadow, values, n);
    VCUDA_LAUNCHED();
    return 0;
}
