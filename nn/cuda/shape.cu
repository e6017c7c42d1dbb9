// shape.cu: element-wise and data-movement ops on the GPU (API: ops.h;
// semantics: nn/elementwise.h and nn/shape_ops.h): add, add_inplace, mul,
// scale, per-channel bias, nearest x2 upsample, zero padding, channel
// concat/split and patchify/unpatchify in both token orders. Backward
// accumulates (+=). Every output element is written by exactly one thread
// (gathers, not scatters), so there are no atomics and results are
// deterministic; the only reduction (the channel-bias gradient) is one block
// per channel in a fixed order.
// Not here: fused variants (bias + activation), bf16.
#include "nn/cuda/check.cuh"
#include "nn/cuda/ops.h"

#define GS(i, n)                                                                 \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n);    \
         i += (int64_t)gridDim.x * blockDim.x)
#define GO(kernel, n, ...)                                                                  \
    do {                                                                                    \
        if ((n) <= 0) return 0;                                                             \
        kernel<<<vcuda_blocks((n), 256), 256, 0, (cudaStream_t)vcuda_stream(ctx)>>>(__VA_ARGS__); \
        VCUDA_LAUNCHED();                                                                   \
        return 0;                                                                           \
    } while (0)

// ---- element-wise -------------------------------------------------------------
__global__ void k_add(float *o, const float *a, const float *b, int64_t n) { GS(i, n) o[i] = a[i] + b[i]; }
__global__ void k_acc2(float *da, float *db, const float *g, int64_t n) {
    GS(i, n) {
        if (da) da[i] += g[i];
        if (db) db[i] += g[i];
    }
}
__global__ void k_mul(float *o, const float *a, const float *b, int64_t n) { GS(i, n) o[i] = a[i] * b[i]; }
__global__ void k_mul_b(float *da, float *db, const float *g, const float *a, const float *b, int64_t n) {
    GS(i, n) {
        float gi = g[i];
        if (da) da[i] += gi * b[i];
        if (db) db[i] += gi * a[i];
    }
}
__global__ void k_scale(float *o, const float *a, float s, int64_t n) { GS(i, n) o[i] = s * a[i]; }
__global__ void k_scale_b(float *da, const float *g, float s, int64_t n) { GS(i, n) da[i] += s * g[i]; }
__global__ void k_chbias(float *o, const float *x, const float *bias, int C, int64_t HW, int64_t n) {
    GS(i, n) o[i] = x[i] + bias[(i / HW) % C];
}
__global__ void k_chbias_b(float *dbias, const float *g, int B, int C, int64_t HW) {
    __shared__ float sh[256];
    int c = blockIdx.x;
    float s = 0.0f;
    for (int64_t i = threadIdx.x; i < (int64_t)B * HW; i += blockDim.x)
        s += g[((i / HW) * C + c) * HW + i % HW];
    sh[threadIdx.x] = s;
    __syncthreads();
    for (int k = blockDim.x / 2; k > 0; k >>= 1) {
        if ((int)threadIdx.x < k) sh[threadIdx.x] += sh[threadIdx.x + k];
        __syncthreads();
    }
    if (threadIdx.x == 0) dbias[c] += sh[0];
}

extern "C" int add_forward_cuda(vcuda_ctx *ctx, float *out, const float *a, const float *b, int64_t n) { GO(k_add, n, out, a, b, n); }
extern "C" int add_backward_cuda(vcuda_ctx *ctx, float *da, float *db, const float *dout, int64_t n) { GO(k_acc2, n, da, db, dout, n); }
extern "C" int add_inplace_cuda(vcuda_ctx *ctx, float *x, const float *y, int64_t n) { GO(k_acc2, n, x, NULL, y, n); }
extern "C" int mul_forward_cuda(vcuda_ctx *ctx, float *out, const float *a, const float *b, int64_t n) { GO(k_mul, n, out, a, b, n); }
extern "C" int mul_backward_cuda(vcuda_ctx *ctx, float *da, float *db, const float *dout, const float *a,
                                 const float *b, int64_t n) { GO(k_mul_b, n, da, db, dout, a, b, n); }
extern "C" int scale_forward_cuda(vcuda_ctx *ctx, float *out, const float *a, float s, int64_t n) { GO(k_scale, n, out, a, s, n); }
extern "C" int scale_backward_cuda(vcuda_ctx *ctx, float *da, const float *dout, float s, int64_t n) { GO(k_scale_b, n, da, dout, s, n); }
extern "C" int add_channel_bias_forward_cuda(vcuda_ctx *ctx, float *out, const float *inp,
                                             const float *bias, int B, int C, int HW) {
    int64_t n = (int64_t)B * C * HW;
    GO(k_chbias, n, out, inp, bias, C, (int64_t)HW, n);
}
extern "C" int add_channel_bias_backward_cuda(vcuda_ctx *ctx, float *dinp, float *dbias,
                                              const float *dout, int B, int C, int HW) {
    int64_t n = (int64_t)B * C * HW;
    if (n <= 0) return 0;
    if (dinp) {
        k_acc2<<<vcuda_blocks(n, 256), 256, 0, (cudaStream_t)vcuda_stream(ctx)>>>(dinp, NULL, dout, n);
        VCUDA_LAUNCHED();
    }
    if (dbias) {
        k_chbias_b<<<C, 256, 0, (cudaStream_t)vcuda_stream(ctx)>>>(dbias, dout, B, C, (int64_t)HW);
        VCUDA_LAUNCHED();
    }
    return 0;
}

// ---- upsample x2 (nearest) ----------------------------------------------------------
__global__ void k_up_f(float *o, const float *x, int H, int W, int64_t n) {
    GS(i, n) {   // over outputs (BC, 2H, 2W)
        int ow = (int)(i % (2 * W)), oh = (int)((i / (2 * W)) % (2 * H));
        int64_t bc = i / (4LL * H * W);
        o[i] = x[(bc * H + oh / 2) * W + ow / 2];
    }
}
__global__ void k_up_b(float *dx, const float *g, int H, int W, int64_t n) {
    GS(i, n) {   // over inputs (BC, H, W): the four cells each input fed, in row order
        int w = (int)(i % W), h = (int)((i / W) % H);
        int64_t bc = i / ((int64_t)H * W);
        const float *r0 = g + (bc * 2 * H + 2 * h) * 2 * W + 2 * w, *r1 = r0 + 2 * W;
        dx[i] += r0[0] + r0[1] + r1[0] + r1[1];
    }
}
extern "C" int upsample2x_forward_cuda(vcuda_ctx *ctx, float *out, const float *inp, int B, int C, int H, int W) {
    int64_t n = 4LL * B * C * H * W;
    GO(k_up_f, n, out, inp, H, W, n);
}
extern "C" int upsample2x_backward_cuda(vcuda_ctx *ctx, float *dinp, const float *dout, int B, int C, int H, int W) {
    int64_t n = (int64_t)B * C * H * W;
    GO(k_up_b, n, dinp, dout, H, W, n);
}

// ---- zero padding -------------------------------------------------------------------
__global__ void k_pad_f(float *o, const float *x, int H, int W, int pt, int pl, int Ho, int Wo, int64_t n) {
    GS(i, n) {   // over outputs
        int ow = (int)(i % Wo), oh = (int)((i / Wo) % Ho);
        int64_t bc = i / ((int64_t)Ho * Wo);
        int h = oh - pt, w = ow - pl;
        o[i] = (h >= 0 && h < H && w >= 0 && w < W) ? x[(bc * H + h) * W + w] : 0.0f;
    }
}
__global__ void k_pad_b(float *dx, const float *g, int H, int W, int pt, int pl, int Ho, int Wo, int64_t n) {
    GS(i, n) {   // over inputs
        int w = (int)(i % W), h = (int)((i / W) % H);
        int64_t bc = i / ((int64_t)H * W);
        dx[i] += g[(bc * Ho + h + pt) * Wo + w + pl];
    }
}
extern "C" int pad2d_forward_cuda(vcuda_ctx *ctx, float *out, const float *inp, int B, int C, int H, int W,
                                  int pt, int pb, int pl, int pr) {
    if (pt < 0 || pb < 0 || pl < 0 || pr < 0) return VEL_EINVAL;
    int Ho = H + pt + pb, Wo = W + pl + pr;
    int64_t n = (int64_t)B * C * Ho * Wo;
    GO(k_pad_f, n, out, inp, H, W, pt, pl, Ho, Wo, n);
}
extern "C" int pad2d_backward_cuda(vcuda_ctx *ctx, float *dinp, const float *dout, int B, int C, int H, int W,
                                   int pt, int pb, int pl, int pr) {
    if (pt < 0 || pb < 0 || pl < 0 || pr < 0) return VEL_EINVAL;
    int Ho = H + pt + pb, Wo = W + pl + pr;
    int64_t n = (int64_t)B * C * H * W;
    GO(k_pad_b, n, dinp, dout, H, W, pt, pl, Ho, Wo, n);
}

// ---- channel concat / split ---------------------------------------------------------
// dir 0: out (B, Ca+Cb, HW) = [a, b] (forward concat; "=" ), dir 1: += (split backward).
__global__ void k_cat(float *o, const float *a, const float *b, int Ca, int Cb, int64_t HW, int64_t n, int acc) {
    GS(i, n) {
        int64_t hw = i % HW, c = (i / HW) % (Ca + Cb), bb = i / (HW * (Ca + Cb));
        float v = c < Ca ? (a ? a[(bb * Ca + c) * HW + hw] : 0.0f) : (b ? b[(bb * Cb + c - Ca) * HW + hw] : 0.0f);
        if (acc) o[i] += v;
        else o[i] = v;
    }
}
// a, b from x (B, Ca+Cb, HW): dir over a's and b's elements; acc selects += (concat backward).
__global__ void k_split(float *a, float *b, const float *x, int Ca, int Cb, int64_t HW, int B, int acc) {
    int64_t na = (int64_t)B * Ca * HW, n = (int64_t)B * (Ca + Cb) * HW;
    GS(i, n) {
        float *dst;
        int64_t src;
        if (i < na) {
            if (!a) continue;
            int64_t hw = i % HW, c = (i / HW) % Ca, bb = i / (HW * Ca);
            dst = a + i;
            src = (bb * (Ca + Cb) + c) * HW + hw;
        } else {
            if (!b) continue;
            int64_t j = i - na, hw = j % HW, c = (j / HW) % Cb, bb = j / (HW * Cb);
            dst = b + j;
            src = (bb * (Ca + Cb) + Ca + c) * HW + hw;
        }
        if (acc) *dst += x[src];
        else *dst = x[src];
    }
}
extern "C" int concat_channels_forward_cuda(vcuda_ctx *ctx, float *out, const float *a, const float *b,
                                            int B, int Ca, int Cb, int HW) {
    int64_t n = (int64_t)B * (Ca + Cb) * HW;
    GO(k_cat, n, out, a, b, Ca, Cb, (int64_t)HW, n, 0);
}
extern "C" int concat_channels_backward_cuda(vcuda_ctx *ctx, float *da, float *db, const float *dout,
                                             int B, int Ca, int Cb, int HW) {
    int64_t n = (int64_t)B * (Ca + Cb) * HW;
    GO(k_split, n, da, db, dout, Ca, Cb, (int64_t)HW, B, 1);
}
extern "C" int split_channels_forward_cuda(vcuda_ctx *ctx, float *a, float *b, const float *inp,
                                           int B, int Ca, int Cb, int HW) {
    int64_t n = (int64_t)B * (Ca + Cb) * HW;
    GO(k_split, n, a, b, inp, Ca, Cb, (int64_t)HW, B, 0);
}
extern "C" int split_channels_backward_cuda(vcuda_ctx *ctx, float *dinp, const float *da, const float *db,
                                            int B, int Ca, int Cb, int HW) {
    int64_t n = (int64_t)B * (Ca + Cb) * HW;
    GO(k_cat, n, dinp, da, db, Ca, Cb, (int64_t)HW, n, 1);
}

// ---- patchify / unpatchify ------------------------------------------------------------
// Token index of latent element (b, c, h, w): t = (h/p)*(W/p) + w/p,
// feature f = c*p*p + i*p + j (CPQ) or (i*p + j)*C + c (PQC), i = h%p, j = w%p.
__device__ __forceinline__ int64_t tok_index(int64_t lat, int C, int H, int W, int p, int order) {
    int w = (int)(lat % W), h = (int)((lat / W) % H);
    int c = (int)((lat / ((int64_t)W * H)) % C);
    int64_t b = lat / ((int64_t)W * H * C);
    int i = h % p, j = w % p, Wp = W / p;
    int64_t t = (int64_t)(h / p) * Wp + w / p, T = (int64_t)(H / p) * Wp, D = (int64_t)C * p * p;
    int64_t f = order == 0 ? (int64_t)c * p * p + i * p + j : (int64_t)(i * p + j) * C + c;
    return (b * T + t) * D + f;
}
// mode 0: tok[t(lat)] = lat (patchify fwd), 1: lat += tok (patchify bwd),
//      2: lat = tok (unpatchify fwd),       3: tok[t(lat)] += lat (unpatchify bwd).
// Each latent element maps to exactly one token element and back: one writer each.
__global__ void k_patch(float *dst, const float *src, int C, int H, int W, int p, int order, int mode, int64_t n) {
    GS(lat, n) {
        int64_t tk = tok_index(lat, C, H, W, p, order);
        switch (mode) {
        case 0: dst[tk] = src[lat]; break;
        case 1: dst[lat] += src[tk]; break;
        case 2: dst[lat] = src[tk]; break;
        default: dst[tk] += src[lat];
        }
    }
}
static int patch_go(vcuda_ctx *ctx, float *dst, const float *src, int B, int C, int H, int W, int p,
                    patch_order order, int mode) {
    if (p < 1 || H % p || W % p) return VEL_EINVAL;
    int64_t n = (int64_t)B * C * H * W;
    GO(k_patch, n, dst, src, C, H, W, p, (int)order, mode, n);
}
extern "C" int patchify_forward_cuda(vcuda_ctx *ctx, float *out, const float *inp, int B, int C, int H,
                                     int W, int p, patch_order order) {
    return patch_go(ctx, out, inp, B, C, H, W, p, order, 0);
}
extern "C" int patchify_backward_cuda(vcuda_ctx *ctx, float *dinp, const float *dout, int B, int C, int H,
                                      int W, int p, patch_order order) {
    return patch_go(ctx, dinp, dout, B, C, H, W, p, order, 1);
}
extern "C" int unpatchify_forward_cuda(vcuda_ctx *ctx, float *out, const float *inp, int B, int C, int H,
                                       int W, int p, patch_order order) {
    return patch_go(ctx, out, inp, B, C, H, W, p, order, 2);
}
extern "C" int unpatchify_backward_cuda(vcuda_ctx *ctx, float *dinp, const float *dout, int B, int C,
                                        int H, int W, int p, patch_order order) {
    return patch_go(ctx, dinp, dout, B, C, H, W, p, order, 3);
}
