// loss_vae.cu: the latent-side losses of nn/loss.h on the GPU (API: ops.h):
// the values of MSE, KL, VE and the magnitude regularisers, their gradients,
// and the reparameterised sample. The per-element arithmetic is
// loss_vae_terms.h's (shared with the host emulation test); this file holds
// the launches and the reductions.
//
// Values: LV_BLOCKS blocks of LV_THREADS threads sum the terms in double over
// a grid-stride loop, a fixed tree per block (dsum.cuh) writes one partial
// per block into the context's scratch, one block sums the partials with the
// same tree, and the host reads that one double back (the call waits for the
// stream, as clip_grad_norm_cuda does). Fixed grid, fixed trees: identical
// bits from run to run; against the CPU (FIXED_ORDER_SUM) the values differ
// by the order of double additions, the device's exp and FMA contraction
// (loss_vae_terms.h).
// Magnitude (b) reduces mu^2 per channel first (one block per channel), then
// the C terms (forward) or the scaled gradient (backward) from those sums.
#include "nn/cuda/check.cuh"
#include "nn/cuda/dsum.cuh"
#include "nn/cuda/ops.h"

#include "nn/cuda/loss_vae_terms.h"

#define LV_BLOCKS 256
#define LV_THREADS 256   // a power of two (the trees halve it)

enum { LV_SQ = 0, LV_KL = 1, LV_VE = 2, LV_MAG = 3 };

template <int KIND>
__device__ double lv_term(const float *a, const float *b, int64_t i, int ve, double p) {
    if (KIND == LV_SQ) return lvt_sq_diff(a[i], b[i]);
    if (KIND == LV_KL) return lvt_kl_term(a[i], b[i]);
    if (KIND == LV_VE) return lvt_ve_term(a[i], ve, p);
    return lvt_mag_term(a[i], p);
}

// part[blockIdx.x] = this block's sum of terms 0..n-1.
template <int KIND>
__global__ void __launch_bounds__(LV_THREADS) k_lv_partials(double *part, const float *a, const float *b,
                                                            int64_t n, int ve, double p) {
    __shared__ double sh[LV_THREADS];
    double s = 0.0;
    for (int64_t i = blockIdx.x * (int64_t)LV_THREADS + threadIdx.x; i < n; i += (int64_t)LV_BLOCKS * LV_THREADS)
        s += lv_term<KIND>(a, b, i, ve, p);
    s = block_sum_f64<LV_THREADS>(s, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

// One block: *out = (sum of part[0..np)) / div.
__global__ void __launch_bounds__(LV_THREADS) k_lv_final(double *out, const double *part, int np, double div) {
    __shared__ double sh[LV_THREADS];
    double s = 0.0;
    for (int i = threadIdx.x; i < np; i += LV_THREADS) s += part[i];
    s = block_sum_f64<LV_THREADS>(s, sh);
    if (threadIdx.x == 0) *out = s / div;
}

// ssq[c] = sum over (B, inner) of mu^2 for channel c of mu (B, C, inner); one block per c.
__global__ void __launch_bounds__(LV_THREADS) k_lv_channel_ssq(double *ssq, const float *mu, int B, int C,
                                                               int inner) {
    __shared__ double sh[LV_THREADS];
    const int c = blockIdx.x;
    const int64_t P = (int64_t)B * inner;
    double s = 0.0;
    for (int64_t q = threadIdx.x; q < P; q += LV_THREADS) {
        int64_t b = q / inner, j = q % inner;
        double x = mu[(b * C + c) * (int64_t)inner + j];
        s += x * x;
    }
    s = block_sum_f64<LV_THREADS>(s, sh);
    if (threadIdx.x == 0) ssq[c] = s;
}

// One block: *out = mean over c of the magnitude term of channel c's RMS.
__global__ void __launch_bounds__(LV_THREADS) k_lv_global_final(double *out, const double *ssq, int C, double M,
                                                                double tau) {
    __shared__ double sh[LV_THREADS];
    double s = 0.0;
    for (int c = threadIdx.x; c < C; c += LV_THREADS) {
        double e = sqrt(ssq[c] / M) - tau;
        s += e > 0.0 ? expm1(e) : 0.0;
    }
    s = block_sum_f64<LV_THREADS>(s, sh);
    if (threadIdx.x == 0) *out = s / C;
}

// Sum of n terms / div into *out (host), waiting for the stream.
template <int KIND>
static int lv_value(vcuda_ctx *ctx, double *out, const float *a, const float *b, int64_t n, int ve, double p,
                    double div) {
    void *scr;
    int r = vcuda_ctx_scratch(ctx, (LV_BLOCKS + 1) * sizeof(double), &scr);
    if (r) return r;
    double *part = (double *)scr, *val = part + LV_BLOCKS;
    cudaStream_t st = (cudaStream_t)vcuda_stream(ctx);
    k_lv_partials<KIND><<<LV_BLOCKS, LV_THREADS, 0, st>>>(part, a, b, n, ve, p);
    VCUDA_LAUNCHED();
    k_lv_final<<<1, LV_THREADS, 0, st>>>(val, part, LV_BLOCKS, div);
    VCUDA_LAUNCHED();
    return vcuda_d2h_sync(ctx, out, val, sizeof(double));
}

#define LV_GRID(n) vcuda_blocks((n), 256), 256, 0, (cudaStream_t)vcuda_stream(ctx)
#define LV_FOR(n) for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); \
                       i += (int64_t)gridDim.x * blockDim.x)

__global__ void k_kl_b(float *dmu, float *dlv, const float *mu, const float *lv, int64_t n, double k) {
    LV_FOR(n) lvt_kl_bwd(dmu, dlv, mu, lv, i, k);
}
__global__ void k_ve_b(float *dlv, const float *lv, int64_t n, int kind, double delta, double k) {
    LV_FOR(n) lvt_ve_bwd(dlv, lv, i, kind, delta, k);
}
__global__ void k_mag_elem_b(float *dmu, const float *mu, int64_t n, double tau, double k) {
    LV_FOR(n) lvt_mag_elem_bwd(dmu, mu, i, tau, k);
}
__global__ void k_mag_global_b(float *dmu, const float *mu, int64_t n, const double *ssq, int C, int inner,
                               double M, double tau, double dloss) {
    LV_FOR(n) lvt_mag_global_bwd(dmu, mu, i, ssq, C, inner, M, tau, dloss);
}
__global__ void k_reparam_f(float *z, const float *mu, const float *lv, const float *eps, int64_t n) {
    LV_FOR(n) lvt_reparam_fwd(z, mu, lv, eps, i);
}
__global__ void k_reparam_b(float *dmu, float *dlv, const float *dz, const float *lv, const float *eps,
                            int64_t n) {
    LV_FOR(n) lvt_reparam_bwd(dmu, dlv, dz, lv, eps, i);
}

static int ve_ok(int kind) { return kind == VE_INV_VAR || kind == VE_NEG_VAR || kind == VE_NEG_LOGSTD; }

extern "C" int mse_loss_forward_cuda(vcuda_ctx *ctx, double *out, const float *pred, const float *target,
                                     int64_t n) {
    if (n <= 0) return VEL_EINVAL;
    return lv_value<LV_SQ>(ctx, out, pred, target, n, 0, 0.0, (double)n);
}

extern "C" int kl_loss_forward_cuda(vcuda_ctx *ctx, double *out, const float *mu, const float *logvar, int B,
                                    int64_t per_image) {
    if (B <= 0 || per_image <= 0) return VEL_EINVAL;
    // 0.5 * sum / B, as the CPU: the final division by 2B equals 0.5 * (s / B) in binary
    return lv_value<LV_KL>(ctx, out, mu, logvar, (int64_t)B * per_image, 0, 0.0, 2.0 * B);
}

extern "C" int kl_loss_backward_cuda(vcuda_ctx *ctx, float *dmu, float *dlogvar, const float *mu,
                                     const float *logvar, int B, int64_t per_image, float dloss) {
    if (B <= 0 || per_image <= 0) return VEL_EINVAL;
    const int64_t n = (int64_t)B * per_image;
    k_kl_b<<<LV_GRID(n)>>>(dmu, dlogvar, mu, logvar, n, (double)dloss / B);
    VCUDA_LAUNCHED();
    return 0;
}

extern "C" int ve_loss_forward_cuda(vcuda_ctx *ctx, double *out, const float *logvar, int64_t n, ve_kind kind,
                                    float delta) {
    if (n <= 0 || !ve_ok(kind)) return VEL_EINVAL;
    return lv_value<LV_VE>(ctx, out, logvar, NULL, n, kind, delta, (double)n);
}

extern "C" int ve_loss_backward_cuda(vcuda_ctx *ctx, float *dlogvar, const float *logvar, int64_t n,
                                     ve_kind kind, float delta, float dloss) {
    if (n <= 0 || !ve_ok(kind)) return VEL_EINVAL;
    k_ve_b<<<LV_GRID(n)>>>(dlogvar, logvar, n, kind, delta, (double)dloss / (double)n);
    VCUDA_LAUNCHED();
    return 0;
}

extern "C" int mag_reg_elem_forward_cuda(vcuda_ctx *ctx, double *out, const float *mu, int64_t n, float tau) {
    if (n <= 0) return VEL_EINVAL;
    return lv_value<LV_MAG>(ctx, out, mu, NULL, n, 0, tau, (double)n);
}

extern "C" int mag_reg_elem_backward_cuda(vcuda_ctx *ctx, float *dmu, const float *mu, int64_t n, float tau,
                                          float dloss) {
    if (n <= 0) return VEL_EINVAL;
    k_mag_elem_b<<<LV_GRID(n)>>>(dmu, mu, n, tau, (double)dloss / (double)n);
    VCUDA_LAUNCHED();
    return 0;
}

// The per-channel sums of squares of mu into the context's scratch, one
// block per channel along grid x (up to 2^31 - 1 blocks: any int C).
static int channel_ssq(vcuda_ctx *ctx, double **ssq, size_t extra, const float *mu, int B, int C, int inner) {
    if (B <= 0 || C <= 0 || inner <= 0) return VEL_EINVAL;
    void *scr;
    int r = vcuda_ctx_scratch(ctx, ((size_t)C + extra) * sizeof(double), &scr);
    if (r) return r;
    *ssq = (double *)scr;
    k_lv_channel_ssq<<<C, LV_THREADS, 0, (cudaStream_t)vcuda_stream(ctx)>>>(*ssq, mu, B, C, inner);
    VCUDA_LAUNCHED();
    return 0;
}

extern "C" int mag_reg_global_forward_cuda(vcuda_ctx *ctx, double *out, const float *mu, int B, int C,
                                           int inner, float tau) {
    double *ssq;
    int r = channel_ssq(ctx, &ssq, 1, mu, B, C, inner);
    if (r) return r;
    k_lv_global_final<<<1, LV_THREADS, 0, (cudaStream_t)vcuda_stream(ctx)>>>(ssq + C, ssq, C,
                                                                            (double)B * inner, tau);
    VCUDA_LAUNCHED();
    return vcuda_d2h_sync(ctx, out, ssq + C, sizeof(double));
}

extern "C" int mag_reg_global_backward_cuda(vcuda_ctx *ctx, float *dmu, const float *mu, int B, int C,
                                            int inner, float tau, float dloss) {
    double *ssq;
    int r = channel_ssq(ctx, &ssq, 0, mu, B, C, inner);
    if (r) return r;
    const int64_t n = (int64_t)B * C * inner;
    k_mag_global_b<<<LV_GRID(n)>>>(dmu, mu, n, ssq, C, inner, (double)B * inner, tau, dloss);
    VCUDA_LAUNCHED();
    return 0;
}

extern "C" int reparam_forward_cuda(vcuda_ctx *ctx, float *z, const float *mu, const float *logvar,
                                    const float *eps, int64_t n) {
    if (n < 0) return VEL_EINVAL;
    if (n == 0) return 0;
    k_reparam_f<<<LV_GRID(n)>>>(z, mu, logvar, eps, n);
    VCUDA_LAUNCHED();
    return 0;
}

extern "C" int reparam_backward_cuda(vcuda_ctx *ctx, float *dmu, float *dlogvar, const float *dz,
                                     const float *logvar, const float *eps, int64_t n) {
    if (n < 0) return VEL_EINVAL;
    if (n == 0) return 0;
    k_reparam_b<<<LV_GRID(n)>>>(dmu, dlogvar, dz, logvar, eps, n);
    VCUDA_LAUNCHED();
    return 0;
}
