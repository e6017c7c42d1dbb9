// activation.cu: element-wise activations and softmax on the GPU (API:
// ops.h; formulas and semantics: nn/activation.h). Backward accumulates.
// Softmax: one warp per row, max-subtracted, fp32 sums; rows longer than 32
// are strided over the warp's lanes. Not here: bf16 variants, fusion into
// GEMM epilogues.
#include "nn/cuda/check.cuh"
#include "nn/cuda/ops.h"

#define GRID_STRIDE(i, n)                                                        \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n);    \
         i += (int64_t)gridDim.x * blockDim.x)

__device__ __forceinline__ float sigmoidf_(float x) { return 1.0f / (1.0f + expf(-x)); }

// GELU, tanh form: k0 = sqrt(2/pi), k1 = 0.044715 (PyTorch approximate='tanh').
#define GELU_K0 0.7978845608028654f
#define GELU_K1 0.044715f

__global__ void k_relu_f(float *o, const float *x, int64_t n) { GRID_STRIDE(i, n) o[i] = x[i] > 0.0f ? x[i] : 0.0f; }
__global__ void k_relu_b(float *dx, const float *dy, const float *x, int64_t n) {
    GRID_STRIDE(i, n) dx[i] += x[i] > 0.0f ? dy[i] : 0.0f;
}
__global__ void k_silu_f(float *o, const float *x, int64_t n) { GRID_STRIDE(i, n) o[i] = x[i] * sigmoidf_(x[i]); }
__global__ void k_silu_b(float *dx, const float *dy, const float *x, int64_t n) {
    GRID_STRIDE(i, n) {
        float s = sigmoidf_(x[i]);
        dx[i] += dy[i] * s * (1.0f + x[i] * (1.0f - s));
    }
}
__global__ void k_gelu_f(float *o, const float *x, int64_t n) {
    GRID_STRIDE(i, n) {
        float v = x[i];
        o[i] = 0.5f * v * (1.0f + tanhf(GELU_K0 * (v + GELU_K1 * v * v * v)));
    }
}
__global__ void k_gelu_b(float *dx, const float *dy, const float *x, int64_t n) {
    GRID_STRIDE(i, n) {
        float v = x[i];
        float u = GELU_K0 * (v + GELU_K1 * v * v * v);
        float t = tanhf(u);
        float du = GELU_K0 * (1.0f + 3.0f * GELU_K1 * v * v);
        dx[i] += dy[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du);
    }
}
__global__ void k_leaky_f(float *o, const float *x, int64_t n, float a) {
    GRID_STRIDE(i, n) o[i] = x[i] > 0.0f ? x[i] : a * x[i];
}
__global__ void k_leaky_b(float *dx, const float *dy, const float *x, int64_t n, float a) {
    GRID_STRIDE(i, n) dx[i] += x[i] > 0.0f ? dy[i] : a * dy[i];
}

#define LAUNCH(kernel, n, ...)                                                            \
    do {                                                                                  \
        if ((n) <= 0) return 0;                                                           \
        kernel<<<vcuda_blocks((n), 256), 256, 0, (cudaStream_t)vcuda_stream(ctx)>>>(__VA_ARGS__); \
        VCUDA_LAUNCHED();                                                                 \
        return 0;                                                                         \
    } while (0)

extern "C" int relu_forward_cuda(vcuda_ctx *ctx, float *out, const float *inp, int64_t n) { LAUNCH(k_relu_f, n, out, inp, n); }
extern "C" int relu_backward_cuda(vcuda_ctx *ctx, float *dinp, const float *dout, const float *inp, int64_t n) { LAUNCH(k_relu_b, n, dinp, dout, inp, n); }
extern "C" int silu_forward_cuda(vcuda_ctx *ctx, float *out, const float *inp, int64_t n) { LAUNCH(k_silu_f, n, out, inp, n); }
extern "C" int silu_backward_cuda(vcuda_ctx *ctx, float *dinp, const float *dout, const float *inp, int64_t n) { LAUNCH(k_silu_b, n, dinp, dout, inp, n); }
extern "C" int gelu_forward_cuda(vcuda_ctx *ctx, float *out, const float *inp, int64_t n) { LAUNCH(k_gelu_f, n, out, inp, n); }
extern "C" int gelu_backward_cuda(vcuda_ctx *ctx, float *dinp, const float *dout, const float *inp, int64_t n) { LAUNCH(k_gelu_b, n, dinp, dout, inp, n); }
extern "C" int leaky_relu_forward_cuda(vcuda_ctx *ctx, float *out, const float *inp, int64_t n, float slope) { LAUNCH(k_leaky_f, n, out, inp, n, slope); }
extern "C" int leaky_relu_backward_cuda(vcuda_ctx *ctx, float *dinp, const float *dout, const float *inp, int64_t n, float slope) { LAUNCH(k_leaky_b, n, dinp, dout, inp, n, slope); }

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// One warp per row; 8 warps per block.
__global__ void k_softmax_f(float *out, const float *inp, int N, int C) {
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N) return;
    const float *x = inp + (int64_t)row * C;
    float *y = out + (int64_t)row * C;
    float m = -INFINITY;
    for (int j = lane; j < C; j += 32) m = fmaxf(m, x[j]);
    m = warp_max(m);
    float s = 0.0f;
    for (int j = lane; j < C; j += 32) s += expf(x[j] - m);
    s = warp_sum(s);
    float inv = 1.0f / s;
    for (int j = lane; j < C; j += 32) y[j] = expf(x[j] - m) * inv;
}

__global__ void k_softmax_b(float *dinp, const float *dout, const float *out, int N, int C) {
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N) return;
    const float *dy = dout + (int64_t)row * C, *y = out + (int64_t)row * C;
    float *dx = dinp + (int64_t)row * C;
    float s = 0.0f;
    for (int j = lane; j < C; j += 32) s += dy[j] * y[j];
    s = warp_sum(s);
    for (int j = lane; j < C; j += 32) dx[j] += y[j] * (dy[j] - s);
}

extern "C" int softmax_forward_cuda(vcuda_ctx *ctx, float *out, const float *inp, int N, int C) {
    if (N <= 0) return 0;
    k_softmax_f<<<(N + 7) / 8, 256, 0, (cudaStream_t)vcuda_stream(ctx)>>>(out, inp, N, C);
    VCUDA_LAUNCHED();
    return 0;
}

extern "C" int softmax_backward_cuda(vcuda_ctx *ctx, float *dinp, const float *dout, const float *out,
                                     int N, int C) {
    if (N <= 0) return 0;
    k_softmax_b<<<(N + 7) / 8, 256, 0, (cudaStream_t)vcuda_stream(ctx)>>>(dinp, dout, out, N, C);
    VCUDA_LAUNCHED();
    return 0;
}
