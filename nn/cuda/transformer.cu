// transformer.cu: the DiT block's small ops on the GPU (API: ops.h;
// semantics: nn/swiglu.h, nn/modulate.h, nn/rope.h, nn/attention.h):
// SwiGLU gating, adaLN modulate and gated residual, 2-D RoPE (tables from
// rope2d_tables on the host, uploaded by the caller), and attention.
//
// Attention here is the plain, exact algorithm (attention_*_exact_cuda), kept
// as the fallback of the tiled kernels in flash_attn.cu for shapes they do
// not cover: forward = one block per (b, h, query) holding the T scores in
// shared memory (T <= ATTN_CUDA_T_MAX), lse saved as on the CPU (natural log
// of the sum of exp of the scaled scores); backward = D_i = dout_i . out_i,
// then a dq kernel per query row and a dk/dv kernel per key row that
// recompute the probabilities from lse. No atomics: deterministic.
// Per-batch reductions over tokens (dshift, dscale, dgate) run one thread per
// (b, c) in token order, as on the CPU. Not here: fusions (norm + modulate).
#include "nn/cuda/block_reduce.h"
#include "nn/cuda/check.cuh"
#include "nn/cuda/ops.h"

#define GS(i, n)                                                                 \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n);    \
         i += (int64_t)gridDim.x * blockDim.x)

static cudaStream_t stream(vcuda_ctx *c) { return (cudaStream_t)vcuda_stream(c); }

// ---- SwiGLU ------------------------------------------------------------------

__global__ void k_swiglu_f(float *h, const float *x12, int64_t N, int H) {
    GS(i, N * H) {
        int64_t n = i / H, j = i % H;
        float a = x12[n * 2 * H + j], b = x12[n * 2 * H + H + j];
        h[i] = a / (1.0f + expf(-a)) * b;
    }
}

__global__ void k_swiglu_b(float *dx12, const float *dh, const float *x12, int64_t N, int H) {
    GS(i, N * H) {
        int64_t n = i / H, j = i % H;
        float a = x12[n * 2 * H + j], b = x12[n * 2 * H + H + j];
        float s = 1.0f / (1.0f + expf(-a)), silu = a * s;
        dx12[n * 2 * H + j] += dh[i] * b * s * (1.0f + a * (1.0f - s));
        dx12[n * 2 * H + H + j] += dh[i] * silu;
    }
}

extern "C" int swiglu_forward_cuda(vcuda_ctx *ctx, float *h, const float *x12, int N, int H) {
    if ((int64_t)N * H <= 0) return 0;
    k_swiglu_f<<<vcuda_blocks((int64_t)N * H, 256), 256, 0, stream(ctx)>>>(h, x12, N, H);
    VCUDA_LAUNCHED();
    return 0;
}

extern "C" int swiglu_backward_cuda(vcuda_ctx *ctx, float *dx12, const float *dh, const float *x12,
                                    int N, int H) {
    if ((int64_t)N * H <= 0) return 0;
    k_swiglu_b<<<vcuda_blocks((int64_t)N * H, 256), 256, 0, stream(ctx)>>>(dx12, dh, x12, N, H);
    VCUDA_LAUNCHED();
    return 0;
}

// ---- modulate / gated residual --------------------------------------------------

__global__ void k_mod_f(float *out, const float *x, const float *shift, const float *scale, int T,
                        int C, int ld, int64_t n) {
    GS(i, n) {
        int64_t b = i / ((int64_t)T * C);
        int c = (int)(i % C);
        out[i] = x[i] * (1.0f + scale[b * ld + c]) + shift[b * ld + c];
    }
}

__global__ void k_mod_dx(float *dx, const float *dout, const float *scale, int T, int C, int ld,
                         int64_t n) {
    GS(i, n) {
        int64_t b = i / ((int64_t)T * C);
        dx[i] += dout[i] * (1.0f + scale[b * ld + (i % C)]);
    }
}

// One thread per (b, c): sums over t in order. a = dout, m = multiplier
// (x for dscale / y for dgate, NULL for dshift).
__global__ void k_tok_sum(float *dst, const float *a, const float *m, int B, int T, int C, int ld) {
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i >= (int64_t)B * C) return;
    int64_t b = i / C, c = i % C;
    float s = 0.0f;
    for (int t = 0; t < T; t++) {
        int64_t k = (b * T + t) * C + c;
        s += m ? a[k] * m[k] : a[k];
    }
    dst[b * ld + c] += s;
}

__global__ void k_gate_f(float *out, const float *x, const float *y, const float *gate, int T, int C,
                         int ld, int64_t n) {
    GS(i, n) {
        int64_t b = i / ((int64_t)T * C);
        out[i] = x[i] + gate[b * ld + (i % C)] * y[i];
    }
}

__global__ void k_gate_b(float *dx, float *dy, const float *dout, const float *gate, int T, int C,
                         int ld, int64_t n) {
    GS(i, n) {
        int64_t b = i / ((int64_t)T * C);
        if (dx) dx[i] += dout[i];
        if (dy) dy[i] += gate[b * ld + (i % C)] * dout[i];
    }
}

extern "C" int modulate_forward_cuda(vcuda_ctx *ctx, float *out, const float *x, const float *shift,
                                     const float *scale, int B, int T, int C, int ld) {
    int64_t n = (int64_t)B * T * C;
    if (n <= 0) return 0;
    k_mod_f<<<vcuda_blocks(n, 256), 256, 0, stream(ctx)>>>(out, x, shift, scale, T, C, ld, n);
    VCUDA_LAUNCHED();
    return 0;
}

extern "C" int modulate_backward_cuda(vcuda_ctx *ctx, float *dx, float *dshift, float *dscale,
                                      const float *dout, const float *x, const float *scale, int B,
                                      int T, int C, int ld) {
    int64_t n = (int64_t)B * T * C;
    if (n <= 0) return 0;
    unsigned g = (unsigned)(((int64_t)B * C + 127) / 128);
    if (dx) k_mod_dx<<<vcuda_blocks(n, 256), 256, 0, stream(ctx)>>>(dx, dout, scale, T, C, ld, n);
    if (dshift) k_tok_sum<<<g, 128, 0, stream(ctx)>>>(dshift, dout, NULL, B, T, C, ld);
    if (dscale) k_tok_sum<<<g, 128, 0, stream(ctx)>>>(dscale, dout, x, B, T, C, ld);
    VCUDA_LAUNCHED();
    return 0;
}

extern "C" int gate_residual_forward_cuda(vcuda_ctx *ctx, float *out, const float *x, const float *y,
                                          const float *gate, int B, int T, int C, int ld) {
    int64_t n = (int64_t)B * T * C;
    if (n <= 0) return 0;
    k_gate_f<<<vcuda_blocks(n, 256), 256, 0, stream(ctx)>>>(out, x, y, gate, T, C, ld, n);
    VCUDA_LAUNCHED();
    return 0;
}

extern "C" int gate_residual_backward_cuda(vcuda_ctx *ctx, float *dx, float *dy, float *dgate,
                                           const float *dout, const float *y, const float *gate,
                                           int B, int T, int C, int ld) {
    int64_t n = (int64_t)B * T * C;
    if (n <= 0) return 0;
    if (dx || dy) k_gate_b<<<vcuda_blocks(n, 256), 256, 0, stream(ctx)>>>(dx, dy, dout, gate, T, C, ld, n);
    if (dgate)
        k_tok_sum<<<(unsigned)(((int64_t)B * C + 127) / 128), 128, 0, stream(ctx)>>>(dgate, dout, y, B,
                                                                                    T, C, ld);
    VCUDA_LAUNCHED();
    return 0;
}

// ---- RoPE ------------------------------------------------------------------------

// One thread per pair (bt, h, p). dir = +1 forward, -1 backward (+= into out).
__global__ void k_rope(float *out, const float *inp, const float *cs, const float *sn, int64_t BT, int T,
                       int NH, int HD, int ld_out, int ld_inp, int backward) {
    int64_t npairs = BT * NH * (HD / 2);
    GS(i, npairs) {
        int64_t bt = i / (NH * (HD / 2));
        int r = (int)(i % (NH * (HD / 2)));
        int h = r / (HD / 2), d = 2 * (r % (HD / 2));
        const float *c = cs + (bt % T) * HD, *s = sn + (bt % T) * HD;
        const float *x = inp + bt * ld_inp + h * HD;
        float *o = out + bt * ld_out + h * HD;
        float x0 = x[d], x1 = x[d + 1];
        if (!backward) {
            o[d] = x0 * c[d] - x1 * s[d];
            o[d + 1] = x1 * c[d + 1] + x0 * s[d + 1];
        } else {
            o[d] += x0 * c[d] + x1 * s[d + 1];
            o[d + 1] += x1 * c[d + 1] - x0 * s[d];
        }
    }
}

extern "C" int rope_forward_cuda(vcuda_ctx *ctx, float *out, const float *inp, const float *cos_t,
                                 const float *sin_t, int B, int T, int NH, int HD, int ld_out,
                                 int ld_inp) {
    if (HD % 2 || ld_out < NH * HD || ld_inp < NH * HD || (out == inp && ld_out != ld_inp)) return VEL_EINVAL;
    int64_t n = (int64_t)B * T * NH * (HD / 2);
    if (n <= 0) return 0;
    k_rope<<<vcuda_blocks(n, 256), 256, 0, stream(ctx)>>>(out, inp, cos_t, sin_t, (int64_t)B * T, T, NH,
                                                          HD, ld_out, ld_inp, 0);
    VCUDA_LAUNCHED();
    return 0;
}

extern "C" int rope_backward_cuda(vcuda_ctx *ctx, float *dinp, const float *dout, const float *cos_t,
                                  const float *sin_t, int B, int T, int NH, int HD, int ld_dinp,
                                  int ld_dout) {
    if (HD % 2 || ld_dinp < NH * HD || ld_dout < NH * HD || dinp == dout) return VEL_EINVAL;
    int64_t n = (int64_t)B * T * NH * (HD / 2);
    if (n <= 0) return 0;
    k_rope<<<vcuda_blocks(n, 256), 256, 0, stream(ctx)>>>(dinp, dout, cos_t, sin_t, (int64_t)B * T, T,
                                                          NH, HD, ld_dinp, ld_dout, 1);
    VCUDA_LAUNCHED();
    return 0;
}

// ---- attention (exact, untiled) ---------------------------------------------------

#define AT 128   // threads per block

// Block (b*NH + h, i): scores of query i in shared memory (dynamic, T floats).
__global__ void k_attn_f(float *out, float *lse, const float *qkv, int T, int NH, int HD, float scale) {
    extern __shared__ float S[];
    __shared__ float sh[32];
    int bh = blockIdx.x, i = blockIdx.y, b = bh / NH, h = bh % NH, D = NH * HD;
    const float *q = qkv + ((int64_t)(b * T + i) * 3) * D + h * HD;
    for (int j = threadIdx.x; j < T; j += AT) {
        const float *k = qkv + ((int64_t)(b * T + j) * 3 + 1) * D + h * HD;
        float s = 0.0f;
        for (int d = 0; d < HD; d++) s += q[d] * k[d];
        S[j] = s * scale;
    }
    __syncthreads();
    float m = -INFINITY;
    for (int j = threadIdx.x; j < T; j += AT) m = fmaxf(m, S[j]);
    m = blk_max(m, sh, AT);
    float l = 0.0f;
    for (int j = threadIdx.x; j < T; j += AT) {
        float p = expf(S[j] - m);
        S[j] = p;
        l += p;
    }
    l = blk_sum(l, sh, AT);   // also orders the S[] writes before the reads below
    float inv = 1.0f / l;
    float *o = out + (int64_t)(b * T + i) * D + h * HD;
    for (int d = threadIdx.x; d < HD; d += AT) {
        float acc = 0.0f;
        for (int j = 0; j < T; j++) acc += S[j] * qkv[((int64_t)(b * T + j) * 3 + 2) * D + h * HD + d];
        o[d] = acc * inv;
    }
    if (threadIdx.x == 0) lse[(int64_t)bh * T + i] = m + logf(l);
}

// Drow[(b*NH+h)*T + i] = dout_i . out_i (one warp per row).
__global__ void k_attn_D(float *Drow, const float *dout, const float *out, int B, int T, int NH, int HD) {
    int64_t row = blockIdx.x * (int64_t)(blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= (int64_t)B * NH * T) return;
    int64_t bh = row / T, i = row % T, b = bh / NH, h = bh % NH;
    const float *g = dout + (b * T + i) * NH * HD + h * HD, *o = out + (b * T + i) * NH * HD + h * HD;
    float s = 0.0f;
    for (int d = lane; d < HD; d += 32) s += g[d] * o[d];
    for (int k = 16; k > 0; k >>= 1) s += __shfl_xor_sync(0xffffffffu, s, k);
    if (lane == 0) Drow[row] = s;
}

// dS_ij = P_ij (dout_i . v_j - D_i), P_ij = exp(scale q_i.k_j - lse_i).
// dq kernel: block (bh, i), dS row in shared memory; dq_i += scale sum_j dS_ij k_j.
__global__ void k_attn_dq(float *dqkv, const float *dout, const float *qkv, const float *lse,
                          const float *Drow, int T, int NH, int HD, float scale) {
    extern __shared__ float S[];
    int bh = blockIdx.x, i = blockIdx.y, b = bh / NH, h = bh % NH, D = NH * HD;
    const float *q = qkv + ((int64_t)(b * T + i) * 3) * D + h * HD;
    const float *g = dout + (int64_t)(b * T + i) * D + h * HD;
    float L = lse[(int64_t)bh * T + i], Di = Drow[(int64_t)bh * T + i];
    for (int j = threadIdx.x; j < T; j += AT) {
        const float *k = qkv + ((int64_t)(b * T + j) * 3 + 1) * D + h * HD;
        const float *v = k + D;
        float s = 0.0f, dp = 0.0f;
        for (int d = 0; d < HD; d++) {
            s += q[d] * k[d];
            dp += g[d] * v[d];
        }
        S[j] = expf(s * scale - L) * (dp - Di);
    }
    __syncthreads();
    float *dq = dqkv + ((int64_t)(b * T + i) * 3) * D + h * HD;
    for (int d = threadIdx.x; d < HD; d += AT) {
        float acc = 0.0f;
        for (int j = 0; j < T; j++) acc += S[j] * qkv[((int64_t)(b * T + j) * 3 + 1) * D + h * HD + d];
        dq[d] += scale * acc;
    }
}

// dk/dv kernel: block (bh, j), P and dS columns in shared memory (2T floats);
// dk_j += scale sum_i dS_ij q_i; dv_j += sum_i P_ij dout_i.
__global__ void k_attn_dkv(float *dqkv, const float *dout, const float *qkv, const float *lse,
                           const float *Drow, int T, int NH, int HD, float scale) {
    extern __shared__ float S[];
    float *P = S, *dS = S + T;
    int bh = blockIdx.x, j = blockIdx.y, b = bh / NH, h = bh % NH, D = NH * HD;
    const float *k = qkv + ((int64_t)(b * T + j) * 3 + 1) * D + h * HD, *v = k + D;
    for (int i = threadIdx.x; i < T; i += AT) {
        const float *q = qkv + ((int64_t)(b * T + i) * 3) * D + h * HD;
        const float *g = dout + (int64_t)(b * T + i) * D + h * HD;
        float s = 0.0f, dp = 0.0f;
        for (int d = 0; d < HD; d++) {
            s += q[d] * k[d];
            dp += g[d] * v[d];
        }
        float p = expf(s * scale - lse[(int64_t)bh * T + i]);
        P[i] = p;
        dS[i] = p * (dp - Drow[(int64_t)bh * T + i]);
    }
    __syncthreads();
    float *dk = dqkv + ((int64_t)(b * T + j) * 3 + 1) * D + h * HD, *dv = dk + D;
    for (int d = threadIdx.x; d < HD; d += AT) {
        float ak = 0.0f, av = 0.0f;
        for (int i = 0; i < T; i++) {
            ak += dS[i] * qkv[((int64_t)(b * T + i) * 3) * D + h * HD + d];
            av += P[i] * dout[(int64_t)(b * T + i) * D + h * HD + d];
        }
        dk[d] += scale * ak;
        dv[d] += av;
    }
}

extern "C" int attention_forward_exact_cuda(vcuda_ctx *ctx, float *out, float *lse, const float *qkv,
                                            int B, int T, int NH, int HD) {
    if (B <= 0 || T <= 0 || NH <= 0 || HD <= 0 || T > ATTN_CUDA_T_MAX || NH * B > 65535 * 32) return VEL_EINVAL;
    dim3 grid((unsigned)(B * NH), (unsigned)T);
    k_attn_f<<<grid, AT, (size_t)T * sizeof(float), stream(ctx)>>>(out, lse, qkv, T, NH, HD,
                                                                  1.0f / sqrtf((float)HD));
    VCUDA_LAUNCHED();
    return 0;
}

extern "C" int attention_backward_exact_cuda(vcuda_ctx *ctx, float *dqkv, const float *dout,
                                             const float *qkv, const float *out, const float *lse,
                                             float *scratch, int B, int T, int NH, int HD) {
    if (B <= 0 || T <= 0 || NH <= 0 || HD <= 0 || T > ATTN_CUDA_T_MAX || !scratch) return VEL_EINVAL;
    const float scale = 1.0f / sqrtf((float)HD);
    int64_t rows = (int64_t)B * NH * T;
    k_attn_D<<<(unsigned)((rows + 7) / 8), 256, 0, stream(ctx)>>>(scratch, dout, out, B, T, NH, HD);
    VCUDA_LAUNCHED();
    dim3 grid((unsigned)(B * NH), (unsigned)T);
    k_attn_dq<<<grid, AT, (size_t)T * sizeof(float), stream(ctx)>>>(dqkv, dout, qkv, lse, scratch, T, NH,
                                                                   HD, scale);
    VCUDA_LAUNCHED();
    k_attn_dkv<<<grid, AT, 2 * (size_t)T * sizeof(float), stream(ctx)>>>(dqkv, dout, qkv, lse, scratch,
                                                                        T, NH, HD, scale);
    VCUDA_LAUNCHED();
    return 0;
}
