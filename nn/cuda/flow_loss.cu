// flow_loss.cu: LightningDiT's velocity loss on the GPU (API: ops.h,
// semantics: nn/flow_loss.h): the MSE and cosine VALUES reduced on the device
// into two doubles, and the gradient through loss.cu's kernels. Nothing goes
// to the host: the caller copies the 16 bytes of vals when it wants them.
//
// Reduction: FL_BLOCKS blocks of FL_THREADS threads, a grid-stride loop per
// thread (double sums), a shared-memory tree per block into partials (context
// scratch), then one block sums the partials with the same tree. Grid and
// block sizes are fixed, so the order of every addition is fixed: identical
// bits from run to run. The per-element terms are the CPU's (nn/cpu/loss.c):
// (double(v) - u)^2, and 1 - dot / (max(|v|, eps) max(|u|, eps)) along C in
// double.
#include "nn/cuda/check.cuh"
#include "nn/cuda/cos_parts.cuh"
#include "nn/cuda/dsum.cuh"
#include "nn/cuda/ops.h"

#define FL_BLOCKS 256
#define FL_THREADS 256       // a power of two (the trees halve it)

// 1 - cos along C at position q of the (outer, C, inner) view.
__device__ double fl_cos_term(const float *v, const float *u, int C, int inner, int64_t q) {
    int64_t o = q / inner, j = q % inner;
    const int64_t base = o * C * (int64_t)inner + j;
    double d, nx, ny;
    cos_parts_dev(v + base, u + base, C, inner, &d, &nx, &ny);
    return 1.0 - d / (fmax(nx, COS_EPS) * fmax(ny, COS_EPS));
}

// part[blockIdx.x] = this block's sum of squared differences,
// part[FL_BLOCKS + blockIdx.x] = its sum of cosine terms (0 without cos).
__global__ void __launch_bounds__(FL_THREADS) k_fl_partials(double *part, const float *v,
                                                            const float *u, int64_t n, int C,
                                                            int inner, int64_t P, int want_cos) {
    __shared__ double sh[FL_THREADS];
    const int64_t i0 = blockIdx.x * (int64_t)FL_THREADS + threadIdx.x;
    const int64_t stride = (int64_t)FL_BLOCKS * FL_THREADS;
    double s = 0.0;
    for (int64_t i = i0; i < n; i += stride) {
        double d = (double)v[i] - u[i];
        s += d * d;
    }
    s = block_sum_f64<FL_THREADS>(s, sh);
    double c = 0.0;
    if (want_cos)
        for (int64_t q = i0; q < P; q += stride) c += fl_cos_term(v, u, C, inner, q);
    c = block_sum_f64<FL_THREADS>(c, sh);
    if (threadIdx.x == 0) {
        part[blockIdx.x] = s;
        part[FL_BLOCKS + blockIdx.x] = c;
    }
}

// One block: vals = {sum of squares / n, sum of cosine terms / P}.
__global__ void __launch_bounds__(FL_THREADS) k_fl_final(double *vals, const double *part, int64_t n,
                                                         int64_t P, int want_cos) {
    __shared__ double sh[FL_THREADS];
    double s = 0.0, c = 0.0;
    for (int i = threadIdx.x; i < FL_BLOCKS; i += FL_THREADS) {
        s += part[i];
        c += part[FL_BLOCKS + i];
    }
    s = block_sum_f64<FL_THREADS>(s, sh);
    c = block_sum_f64<FL_THREADS>(c, sh);
    if (threadIdx.x == 0) {
        vals[0] = s / (double)n;
        vals[1] = want_cos ? c / (double)P : 0.0;
    }
}

extern "C" int flow_loss_cuda(vcuda_ctx *ctx, double *vals, float *dv, const float *v, const float *u,
                              int outer, int C, int inner, float cos_weight) {
    if (outer <= 0 || C <= 0 || inner <= 0 || !(cos_weight >= 0.0f)) return VEL_EINVAL;
    const int64_t n = (int64_t)outer * C * inner, P = (int64_t)outer * inner;
    const int want_cos = cos_weight > 0.0f;
    void *part;
    int r = vcuda_ctx_scratch(ctx, 2 * FL_BLOCKS * sizeof(double), &part);
    if (r) return r;
    cudaStream_t s = (cudaStream_t)vcuda_stream(ctx);
    k_fl_partials<<<FL_BLOCKS, FL_THREADS, 0, s>>>((double *)part, v, u, n, C, inner, P, want_cos);
    VCUDA_LAUNCHED();
    k_fl_final<<<1, FL_THREADS, 0, s>>>(vals, (const double *)part, n, P, want_cos);
    VCUDA_LAUNCHED();
    if (!dv) return 0;
    if ((r = mse_loss_backward_cuda(ctx, dv, NULL, v, u, n, 1.0f))) return r;
    return want_cos ? cosine_loss_backward_cuda(ctx, dv, NULL, v, u, outer, C, inner, cos_weight) : 0;
}
