// embed.cu: the timestep embedding on the GPU (semantics: nn/embed.h), one
// thread per output pair, in double and rounded once, as on the CPU; label
// embeddings forward and backward (the labels' range check happens on the
// host before: see ops.h).
// Not here: the 2-D position table (fixed: computed once on the host and
// copied).
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

static __device__ int label_row(const int32_t *y, const uint8_t *drop, int b, int num_classes) {
    return (drop && drop[b]) ? num_classes : y[b];
}

static __global__ void k_label_fwd(float *out, const float *table, const int32_t *y,
                                   const uint8_t *drop, int B, int D, int num_classes) {
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i >= (int64_t)B * D) return;
    int b = (int)(i / D), d = (int)(i % D);
    int r = label_row(y, drop, b, num_classes);
    out[i] = (r >= 0 && r <= num_classes) ? table[(int64_t)r * D + d] : 0.0f;
}

// One thread per column d: rows added in batch order, like the CPU loop.
static __global__ void k_label_bwd(float *dtable, const float *dout, const int32_t *y,
                                   const uint8_t *drop, int B, int D, int num_classes) {
    int d = blockIdx.x * blockDim.x + threadIdx.x;
    if (d >= D) return;
    for (int b = 0; b < B; b++) {
        int r = label_row(y, drop, b, num_classes);
        if (r >= 0 && r <= num_classes) dtable[(int64_t)r * D + d] += dout[(int64_t)b * D + d];
    }
}

extern "C" int label_embed_forward_cuda(vcuda_ctx *ctx, float *out, const float *table,
                                        const int32_t *y, const uint8_t *drop, int B, int D,
                                        int num_classes) {
    if (B < 0 || D <= 0 || num_classes <= 0) return VEL_EINVAL;
    int64_t n = (int64_t)B * D;
    if (n == 0) return 0;
    k_label_fwd<<<(unsigned)((n + 255) / 256), 256, 0, (cudaStream_t)vcuda_stream(ctx)>>>(
        out, table, y, drop, B, D, num_classes);
    VCUDA_LAUNCHED();
    return 0;
}

extern "C" int label_embed_backward_cuda(vcuda_ctx *ctx, float *dtable, const float *dout,
                                         const int32_t *y, const uint8_t *drop, int B, int D,
                                         int num_classes) {
    if (B < 0 || D <= 0 || num_classes <= 0) return VEL_EINVAL;
    if (B == 0) return 0;
    k_label_bwd<<<(unsigned)((D + 127) / 128), 128, 0, (cudaStream_t)vcuda_stream(ctx)>>>(
        dtable, dout, y, drop, B, D, num_classes);
    VCUDA_LAUNCHED();
    return 0;
}
