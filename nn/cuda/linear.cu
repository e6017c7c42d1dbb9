// linear.cu: linear layer on the GPU through cuBLAS (API: ops.h, semantics:
// nn/linear.h). Row-major PyTorch tensors are handed to column-major cuBLAS
// as their transposes: out (N,OC) row-major is out^T (OC,N) column-major.
//   forward   out^T   = W   (op T of the (C,OC) col-major view) * inp^T
//   dinp      dinp^T += W^T-view (C,OC) * dout^T (OC,N)
//   dweight   dW^T   += inp^T (C,N) * dout (N,OC)      (dout^T view, op T)
// fp32 uses cublasSgemm (TF32 only if the context enabled it); bf16 uses
// cublasGemmEx with fp32 compute and bf16 or fp32 C. The bias sums are a
// column kernel with a fixed order (one thread per output feature, looping
// over rows), so results are deterministic.
// Autocast (vcuda_set_autocast_bf16): the fp32 entry points convert their
// GEMM operands to bf16 in the context's scratch and run cublasGemmEx with
// fp32 compute into the fp32 outputs / gradients (accumulated with beta 1).
// Not here: fused epilogues (bias + GELU via cuBLASLt) - a later speed step.
#include <cuda_bf16.h>

#include "nn/cuda/check.cuh"
#include "nn/cuda/ops.h"

static cublasHandle_t blas(vcuda_ctx *c) { return (cublasHandle_t)vcuda_cublas(c); }
static cudaStream_t stream(vcuda_ctx *c) { return (cudaStream_t)vcuda_stream(c); }

__global__ void k_add_bias_f32(float *out, const float *bias, int64_t N, int OC) {
    int64_t n = (int64_t)N * OC;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        out[i] += bias[i % OC];
}

__global__ void k_add_bias_bf16(__nv_bfloat16 *out, const float *bias, int64_t N, int OC) {
    int64_t n = (int64_t)N * OC;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        out[i] = __float2bfloat16(__bfloat162float(out[i]) + bias[i % OC]);
}

// dbias[o] += sum_n dout[n, o]; threads of a warp read neighbouring o, so the
// loads are coalesced. Sum in fp32 in row order (as the CPU's loop).
template <typename T>
__global__ void k_bias_grad(float *dbias, const T *dout, int N, int OC) {
    int o = blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= OC) return;
    float s = 0.0f;
    for (int n = 0; n < N; n++) s += (float)dout[(int64_t)n * OC + o];
    dbias[o] += s;
}

// bf16 copies of up to three fp32 operands in one scratch buffer (autocast).
static int to_bf16(vcuda_ctx *ctx, uint16_t **dst, const float *const *src, const int64_t *n, int k) {
    size_t bytes = 0;
    for (int i = 0; i < k; i++) bytes += (size_t)((n[i] + 127) / 128 * 128) * 2;
    void *p;
    int r = vcuda_ctx_scratch(ctx, bytes, &p);
    if (r) return r;
    uint16_t *at = (uint16_t *)p;
    for (int i = 0; i < k; i++) {
        dst[i] = at;
        if (src[i] && (r = vcuda_f32_to_bf16(ctx, at, src[i], n[i]))) return r;
        at += (n[i] + 127) / 128 * 128;
    }
    return 0;
}

extern "C" int linear_forward_cuda(vcuda_ctx *ctx, float *out, const float *inp, const float *weight,
                                   const float *bias, int N, int C, int OC) {
    // out (N,OC), inp (N,C), weight (OC,C), bias (OC) or NULL
    const float one = 1.0f, zero = 0.0f;
    if (vcuda_autocast_bf16(ctx)) {
        uint16_t *b[2];
        const float *src[2] = {weight, inp};
        const int64_t n[2] = {(int64_t)OC * C, (int64_t)N * C};
        int r = to_bf16(ctx, b, src, n, 2);
        if (r) return r;
        CUBLAS_TRY(cublasGemmEx(blas(ctx), CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, &one, b[0], CUDA_R_16BF, C,
                                b[1], CUDA_R_16BF, C, &zero, out, CUDA_R_32F, OC, CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT));
    } else {
        CUBLAS_TRY(cublasSgemm(blas(ctx), CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, &one, weight, C, inp, C,
                               &zero, out, OC));
    }
    if (bias) {
        k_add_bias_f32<<<vcuda_blocks((int64_t)N * OC, 256), 256, 0, stream(ctx)>>>(out, bias, N, OC);
        VCUDA_LAUNCHED();
    }
    return 0;
}

extern "C" int linear_backward_cuda(vcuda_ctx *ctx, float *dinp, float *dweight, float *dbias,
                                    const float *dout, const float *inp, const float *weight,
                                    int N, int C, int OC) {
    // dinp (N,C), dweight (OC,C), dbias (OC), dout (N,OC), inp (N,C), weight (OC,C)
    const float one = 1.0f;
    if (vcuda_autocast_bf16(ctx) && (dinp || dweight)) {
        uint16_t *b[3];   // weight, dout, inp (only the ones needed)
        const float *src[3] = {dinp ? weight : NULL, dout, dweight ? inp : NULL};
        const int64_t n[3] = {dinp ? (int64_t)OC * C : 0, (int64_t)N * OC, dweight ? (int64_t)N * C : 0};
        int r = to_bf16(ctx, b, src, n, 3);
        if (r) return r;
        if (dinp)
            CUBLAS_TRY(cublasGemmEx(blas(ctx), CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, &one, b[0], CUDA_R_16BF, C,
                                    b[1], CUDA_R_16BF, OC, &one, dinp, CUDA_R_32F, C, CUBLAS_COMPUTE_32F,
                                    CUBLAS_GEMM_DEFAULT));
        if (dweight)
            CUBLAS_TRY(cublasGemmEx(blas(ctx), CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N, &one, b[2], CUDA_R_16BF, C,
                                    b[1], CUDA_R_16BF, OC, &one, dweight, CUDA_R_32F, C, CUBLAS_COMPUTE_32F,
                                    CUBLAS_GEMM_DEFAULT));
        dinp = NULL, dweight = NULL;   // done; the bias gradient below stays fp32
    }
    if (dinp)
        CUBLAS_TRY(cublasSgemm(blas(ctx), CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, &one, weight, C, dout,
                               OC, &one, dinp, C));
    if (dweight)
        CUBLAS_TRY(cublasSgemm(blas(ctx), CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N, &one, inp, C, dout, OC,
                               &one, dweight, C));
    if (dbias) {
        k_bias_grad<float><<<(OC + 127) / 128, 128, 0, stream(ctx)>>>(dbias, dout, N, OC);
        VCUDA_LAUNCHED();
    }
    return 0;
}

extern "C" int linear_forward_cuda_bf16(vcuda_ctx *ctx, uint16_t *out, const uint16_t *inp,
                                        const uint16_t *weight, const float *bias, int N, int C,
                                        int OC) {
    // out (N,OC) bf16, inp (N,C) bf16, weight (OC,C) bf16, bias (OC) f32 or NULL
    const float one = 1.0f, zero = 0.0f;
    CUBLAS_TRY(cublasGemmEx(blas(ctx), CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, &one, weight,
                            CUDA_R_16BF, C, inp, CUDA_R_16BF, C, &zero, out, CUDA_R_16BF, OC,
                            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    if (bias) {
        k_add_bias_bf16<<<vcuda_blocks((int64_t)N * OC, 256), 256, 0, stream(ctx)>>>(
            (__nv_bfloat16 *)out, bias, N, OC);
        VCUDA_LAUNCHED();
    }
    return 0;
}

extern "C" int linear_backward_cuda_bf16(vcuda_ctx *ctx, uint16_t *dinp, float *dweight,
                                         float *dbias, const uint16_t *dout, const uint16_t *inp,
                                         const uint16_t *weight, int N, int C, int OC) {
    const float one = 1.0f;
    if (dinp)
        CUBLAS_TRY(cublasGemmEx(blas(ctx), CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, &one, weight,
                                CUDA_R_16BF, C, dout, CUDA_R_16BF, OC, &one, dinp, CUDA_R_16BF, C,
                                CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    if (dweight)   // bf16 inputs, fp32 accumulator in C: master-weight gradients
        CUBLAS_TRY(cublasGemmEx(blas(ctx), CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N, &one, inp,
                                CUDA_R_16BF, C, dout, CUDA_R_16BF, OC, &one, dweight, CUDA_R_32F, C,
                                CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    if (dbias) {
        k_bias_grad<__nv_bfloat16><<<(OC + 127) / 128, 128, 0, stream(ctx)>>>(
            dbias, (const __nv_bfloat16 *)dout, N, OC);
        VCUDA_LAUNCHED();
    }
    return 0;
}
