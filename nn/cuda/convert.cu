// convert.cu: bf16 <-> f32 conversion kernels (API in vcuda.h). The rounding
// is written out bit by bit rather than using __float2bfloat16 so that it is
// the same function as f32_to_bf16 in nn/tensor.c: round to nearest even,
// NaN kept a (quiet) NaN. Not here: f16 (no op uses it yet).
#include "nn/cuda/check.cuh"

__device__ __forceinline__ uint16_t f32_to_bf16_dev(float f) {
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);  // NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

__global__ void k_f32_to_bf16(uint16_t *dst, const float *src, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = f32_to_bf16_dev(src[i]);
}

__global__ void k_bf16_to_f32(float *dst, const uint16_t *src, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = __uint_as_float((uint32_t)src[i] << 16);
}

extern "C" int vcuda_f32_to_bf16(vcuda_ctx *ctx, uint16_t *dst, const float *src, int64_t n) {
    if (n <= 0) return 0;
    k_f32_to_bf16<<<vcuda_blocks(n, 256), 256, 0, (cudaStream_t)vcuda_stream(ctx)>>>(dst, src, n);
    VCUDA_LAUNCHED();
    return 0;
}

extern "C" int vcuda_bf16_to_f32(vcuda_ctx *ctx, float *dst, const uint16_t *src, int64_t n) {
    if (n <= 0) return 0;
    k_bf16_to_f32<<<vcuda_blocks(n, 256), 256, 0, (cudaStream_t)vcuda_stream(ctx)>>>(dst, src, n);
    VCUDA_LAUNCHED();
    return 0;
}
