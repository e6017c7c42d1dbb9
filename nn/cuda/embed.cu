// embed.cu: the timestep embedding on the GPU (semantics: nn/embed.h), one
// thread per output pair, in double and rounded once, as on the CPU.
// Not here: label embeddings (the labels' range check must fail before
// anything is written, which needs them on the host), the 2-D position table
// (fixed: computed once on the host and copied).
#include "nn/cuda/check.cuh"
#include "nn/cuda/ops.h"

static __global__ void k_timestep(float *out, const float *t, int B, int half, double log_period) {
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i >= (int64_t)B * half) return;
    int64_t b = i / half;
    int k = (int)(i % half);
    // The CPU's expression and grouping: t * exp(-log(max_period) * k / half).
    const double a = (double)t[b] * exp(-log_period * k / half);
    out[b * 2 * half + k] = (float)cos(a);
    out[b * 2 * half + half + k] = (float)sin(a);
}

extern "C" int timestep_embedding_cuda(vcuda_ctx *ctx, float *out, const float *t, int B, int dim,
                                       double max_period) {
    if (dim <= 0 || dim % 2 || !(max_period > 1.0) || B < 0) return VEL_EINVAL;
    int64_t n = (int64_t)B * (dim / 2);
    if (n == 0) return 0;
    k_timestep<<<(unsigned)((n + 255) / 256), 256, 0, (cudaStream_t)vcuda_stream(ctx)>>>(
        out, t, B, dim / 2, log(max_period));
    VCUDA_LAUNCHED();
    return 0;
}
