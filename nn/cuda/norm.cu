// norm.cu: group norm, layer norm and RMS norm on the GPU (API: ops.h,
// semantics: nn/norm.h). One block per normalised row / group; statistics in
// fp32 with a two-pass mean/variance (the CPU uses double; the difference is
// far below the 1e-4 parity tolerance for rows of realistic length).
// Parameter gradients use a per-channel kernel that walks the rows in a fixed
// order (no atomics): deterministic, and it accumulates (+=) like the CPU.
// Not here: fused norm + modulate (a later speed step), bf16 variants.
#include "nn/cuda/check.cuh"
#include "nn/cuda/ops.h"

#define NT 256

static cudaStream_t stream(vcuda_ctx *c) { return (cudaStream_t)vcuda_stream(c); }

// Sum over the block; every thread gets the result. `sh` holds 32 floats.
__device__ float block_sum(float v, float *sh) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int w = threadIdx.x / 32, l = threadIdx.x % 32;
    __syncthreads();   // sh may still be read by a previous call
    if (l == 0) sh[w] = v;
    __syncthreads();
    int nw = blockDim.x / 32;
    v = l < nw ? sh[l] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// ---- layer norm / RMS norm: one block per row ------------------------------

__global__ void k_ln_f(float *out, float *mean, float *rstd, const float *inp, const float *w,
                       const float *b, int C, float eps) {
    __shared__ float sh[32];
    int64_t row = blockIdx.x;
    const float *x = inp + row * C;
    float *y = out + row * C;
    float s = 0.0f;
    for (int j = threadIdx.x; j < C; j += blockDim.x) s += x[j];
    float m = block_sum(s, sh) / C;
    float q = 0.0f;
    for (int j = threadIdx.x; j < C; j += blockDim.x) q += (x[j] - m) * (x[j] - m);
    float rs = rsqrtf(block_sum(q, sh) / C + eps);
    for (int j = threadIdx.x; j < C; j += blockDim.x)
        y[j] = (x[j] - m) * rs * (w ? w[j] : 1.0f) + (b ? b[j] : 0.0f);
    if (threadIdx.x == 0) {
        mean[row] = m;
        rstd[row] = rs;
    }
}

__global__ void k_ln_b(float *dinp, const float *dout, const float *inp, const float *w,
                       const float *mean, const float *rstd, int C) {
    __shared__ float sh[32];
    int64_t row = blockIdx.x;
    const float *x = inp + row * C, *dy = dout + row * C;
    float m = mean[row], rs = rstd[row];
    float a = 0.0f, bb = 0.0f;
    for (int j = threadIdx.x; j < C; j += blockDim.x) {
        float dn = dy[j] * (w ? w[j] : 1.0f);
        a += dn;
        bb += dn * (x[j] - m) * rs;
    }
    a = block_sum(a, sh) / C;
    bb = block_sum(bb, sh) / C;
    float *dx = dinp + row * C;
    for (int j = threadIdx.x; j < C; j += blockDim.x) {
        float dn = dy[j] * (w ? w[j] : 1.0f), xh = (x[j] - m) * rs;
        dx[j] += rs * (dn - a - xh * bb);
    }
}

// dweight[c] += sum_n dy*xhat, dbias[c] += sum_n dy; mean NULL = RMS norm.
__global__ void k_rowwise_param_grad(float *dw, float *db, const float *dout, const float *inp,
                                     const float *mean, const float *rstd, int N, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float sw = 0.0f, sb = 0.0f;
    for (int n = 0; n < N; n++) {
        float dy = dout[(int64_t)n * C + c];
        float xh = (inp[(int64_t)n * C + c] - (mean ? mean[n] : 0.0f)) * rstd[n];
        sw += dy * xh;
        sb += dy;
    }
    if (dw) dw[c] += sw;
    if (db) db[c] += sb;
}

__global__ void k_rms_f(float *out, float *rstd, const float *inp, const float *w, int C, float eps) {
    __shared__ float sh[32];
    int64_t row = blockIdx.x;
    const float *x = inp + row * C;
    float q = 0.0f;
    for (int j = threadIdx.x; j < C; j += blockDim.x) q += x[j] * x[j];
    float rs = rsqrtf(block_sum(q, sh) / C + eps);
    float *y = out + row * C;
    for (int j = threadIdx.x; j < C; j += blockDim.x) y[j] = x[j] * rs * (w ? w[j] : 1.0f);
    if (threadIdx.x == 0) rstd[row] = rs;
}

__global__ void k_rms_b(float *dinp, const float *dout, const float *inp, const float *w,
                        const float *rstd, int C) {
    __shared__ float sh[32];
    int64_t row = blockIdx.x;
    const float *x = inp + row * C, *dy = dout + row * C;
    float rs = rstd[row];
    float d = 0.0f;
    for (int j = threadIdx.x; j < C; j += blockDim.x) d += dy[j] * (w ? w[j] : 1.0f) * x[j];
    d = block_sum(d, sh) / C;
    float *dx = dinp + row * C;
    // y = x rs w  =>  dx = rs (dy w) - x rs^3 mean(dy w x)
    for (int j = threadIdx.x; j < C; j += blockDim.x)
        dx[j] += rs * dy[j] * (w ? w[j] : 1.0f) - x[j] * rs * rs * rs * d;
}

extern "C" int layernorm_forward_cuda(vcuda_ctx *ctx, float *out, float *mean, float *rstd,
                                      const float *inp, const float *weight, const float *bias,
                                      int N, int C, float eps) {
    if (N <= 0) return 0;
    k_ln_f<<<N, NT, 0, stream(ctx)>>>(out, mean, rstd, inp, weight, bias, C, eps);
    VCUDA_LAUNCHED();
    return 0;
}

extern "C" int layernorm_backward_cuda(vcuda_ctx *ctx, float *dinp, float *dweight, float *dbias,
                                       const float *dout, const float *inp, const float *weight,
                                       const float *mean, const float *rstd, int N, int C) {
    if (N <= 0) return 0;
    if (dinp) k_ln_b<<<N, NT, 0, stream(ctx)>>>(dinp, dout, inp, weight, mean, rstd, C);
    VCUDA_LAUNCHED();
    if (dweight || dbias)
        k_rowwise_param_grad<<<(C + 127) / 128, 128, 0, stream(ctx)>>>(dweight, dbias, dout, inp,
                                                                       mean, rstd, N, C);
    VCUDA_LAUNCHED();
    return 0;
}

extern "C" int rmsnorm_forward_cuda(vcuda_ctx *ctx, float *out, float *rstd, const float *inp,
                                    const float *weight, int N, int C, float eps) {
    if (N <= 0) return 0;
    k_rms_f<<<N, NT, 0, stream(ctx)>>>(out, rstd, inp, weight, C, eps);
    VCUDA_LAUNCHED();
    return 0;
}

extern "C" int rmsnorm_backward_cuda(vcuda_ctx *ctx, float *dinp, float *dweight, const float *dout,
                                     const float *inp, const float *weight, const float *rstd,
                                     int N, int C) {
    if (N <= 0) return 0;
    if (dinp) k_rms_b<<<N, NT, 0, stream(ctx)>>>(dinp, dout, inp, weight, rstd, C);
    VCUDA_LAUNCHED();
    if (dweight)
        k_rowwise_param_grad<<<(C + 127) / 128, 128, 0, stream(ctx)>>>(dweight, NULL, dout, inp,
                                                                       NULL, rstd, N, C);
    VCUDA_LAUNCHED();
    return 0;
}

// ---- group norm: one block per (b, g); a group is contiguous in NCHW --------

__global__ void k_gn_f(float *out, float *mean, float *rstd, const float *inp, const float *w,
                       const float *b, int C, int HW, int G, float eps) {
    __shared__ float sh[32];
    int bg = blockIdx.x, g = bg % G, Cg = C / G;
    int64_t len = (int64_t)Cg * HW, base = (int64_t)bg * len;   // (b*G+g)*Cg*HW = (b*C+g*Cg)*HW
    const float *x = inp + base;
    float s = 0.0f;
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x) s += x[i];
    float m = block_sum(s, sh) / (float)len;
    float q = 0.0f;
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x) q += (x[i] - m) * (x[i] - m);
    float rs = rsqrtf(block_sum(q, sh) / (float)len + eps);
    float *y = out + base;
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
        int c = g * Cg + (int)(i / HW);
        y[i] = (x[i] - m) * rs * (w ? w[c] : 1.0f) + (b ? b[c] : 0.0f);
    }
    if (threadIdx.x == 0) {
        mean[bg] = m;
        rstd[bg] = rs;
    }
}

__global__ void k_gn_b(float *dinp, const float *dout, const float *inp, const float *w,
                       const float *mean, const float *rstd, int C, int HW, int G) {
    __shared__ float sh[32];
    int bg = blockIdx.x, g = bg % G, Cg = C / G;
    int64_t len = (int64_t)Cg * HW, base = (int64_t)bg * len;
    const float *x = inp + base, *dy = dout + base;
    float m = mean[bg], rs = rstd[bg];
    float a = 0.0f, bb = 0.0f;
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
        int c = g * Cg + (int)(i / HW);
        float dn = dy[i] * (w ? w[c] : 1.0f);
        a += dn;
        bb += dn * (x[i] - m) * rs;
    }
    a = block_sum(a, sh) / (float)len;
    bb = block_sum(bb, sh) / (float)len;
    float *dx = dinp + base;
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
        int c = g * Cg + (int)(i / HW);
        float dn = dy[i] * (w ? w[c] : 1.0f);
        dx[i] += rs * (dn - a - (x[i] - m) * rs * bb);
    }
}

// One block per channel: sums over (b, hw) in a fixed order.
__global__ void k_gn_param_grad(float *dw, float *db, const float *dout, const float *inp,
                                const float *mean, const float *rstd, int B, int C, int HW, int G) {
    __shared__ float sh[32];
    int c = blockIdx.x, g = c / (C / G);
    float sw = 0.0f, sb = 0.0f;
    for (int64_t i = threadIdx.x; i < (int64_t)B * HW; i += blockDim.x) {
        int b = (int)(i / HW);
        int64_t k = ((int64_t)b * C + c) * HW + i % HW;
        float dy = dout[k];
        sw += dy * (inp[k] - mean[b * G + g]) * rstd[b * G + g];
        sb += dy;
    }
    sw = block_sum(sw, sh);
    sb = block_sum(sb, sh);
    if (threadIdx.x == 0) {
        if (dw) dw[c] += sw;
        if (db) db[c] += sb;
    }
}

extern "C" int groupnorm_forward_cuda(vcuda_ctx *ctx, float *out, float *mean, float *rstd,
                                      const float *inp, const float *weight, const float *bias,
                                      int B, int C, int HW, int G, float eps) {
    if (G <= 0 || C % G) return VEL_EINVAL;
    if (B <= 0) return 0;
    k_gn_f<<<B * G, NT, 0, stream(ctx)>>>(out, mean, rstd, inp, weight, bias, C, HW, G, eps);
    VCUDA_LAUNCHED();
    return 0;
}

extern "C" int groupnorm_backward_cuda(vcuda_ctx *ctx, float *dinp, float *dweight, float *dbias,
                                       const float *dout, const float *inp, const float *weight,
                                       const float *mean, const float *rstd, int B, int C, int HW,
                                       int G) {
    if (G <= 0 || C % G) return VEL_EINVAL;
    if (B <= 0) return 0;
    if (dinp) k_gn_b<<<B * G, NT, 0, stream(ctx)>>>(dinp, dout, inp, weight, mean, rstd, C, HW, G);
    VCUDA_LAUNCHED();
    if (dweight || dbias)
        k_gn_param_grad<<<C, NT, 0, stream(ctx)>>>(dweight, dbias, dout, inp, mean, rstd, B, C, HW, G);
    VCUDA_LAUNCHED();
    return 0;
}
