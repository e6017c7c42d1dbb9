// muon.cu: Muon on the GPU (API: ops.h; semantics: nn/muon.h for the
// Newton-Schulz iteration, nn/optim.c's muon_update for the step), with the
// CPU's arithmetic where it is element-wise (explicit _rn intrinsics, as
// adam.cu, so nvcc contracts nothing the CPU does not) and cuBLAS sgemm
// (fp32, TF32 only if the context enables it) for the three products of each
// iteration. The Frobenius norm is a double reduction over a fixed grid and
// fixed trees (deterministic), and its reciprocal stays on the device: no
// host round trip inside the optimizer step.
//
// Row-major matrices with column-major cuBLAS: a row-major M (m x n) is the
// column-major M^T, so row-major C = A B is the column-major C^T = B^T A^T,
// i.e. sgemm(N, N, n, m, k, B, ldb = n, A, lda = k, C, ldc = n). X X^T
// (r x r, symmetric) is sgemm(T, N, r, r, c, X, c, X, c, A, r) on the
// column-major view X^T of X. A and B = b A + c A A are symmetric, so their
// layout does not matter.
#include "nn/cuda/check.cuh"
#include "nn/cuda/dsum.cuh"
#include "nn/cuda/ops.h"
extern "C" {
#include "nn/muon.h"
}

#define MU_BLOCKS 256
#define MU_THREADS 256

static cudaStream_t stream(vcuda_ctx *c) { return (cudaStream_t)vcuda_stream(c); }

__device__ __forceinline__ float mu_lerp(float a, float b, float w) {   // torch's lerp, as adam.cu
    return w < 0.5f ? __fadd_rn(a, __fmul_rn(w, __fsub_rn(b, a)))
                    : __fsub_rn(b, __fmul_rn(__fsub_rn(b, a), __fsub_rn(1.0f, w)));
}

__global__ void __launch_bounds__(MU_THREADS) k_mu_sumsq(double *part, const float *g, int64_t n) {
    __shared__ double sh[MU_THREADS];
    double s = 0.0;
    for (int64_t i = blockIdx.x * (int64_t)MU_THREADS + threadIdx.x; i < n;
         i += (int64_t)MU_BLOCKS * MU_THREADS)
        s += (double)g[i] * g[i];
    s = block_sum_f64<MU_THREADS>(s, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

// inv = (float)(1 / (sqrt(sum of partials) + 1e-7)), as nn/muon.c.
__global__ void __launch_bounds__(MU_THREADS) k_mu_inv(float *inv, const double *part) {
    __shared__ double sh[MU_THREADS];
    double s = 0.0;
    for (int i = threadIdx.x; i < MU_BLOCKS; i += MU_THREADS) s += part[i];
    s = block_sum_f64<MU_THREADS>(s, sh);
    if (threadIdx.x == 0) *inv = (float)(1.0 / (sqrt(s) + 1e-7));
}

// X = g * inv, transposed (X (cols, rows) = g^T) when tr.
__global__ void k_mu_scale(float *X, const float *g, const float *inv, int64_t rows, int64_t cols,
                           int tr) {
    const float s = *inv;
    const int64_t n = rows * cols;
    for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < n;
         k += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = k / cols, j = k % cols;   // g[i][j]
        X[tr ? j * rows + i : k] = __fmul_rn(g[k], s);
    }
}

// out (rows, cols) = X, or X^T when X is (cols, rows).
__global__ void k_mu_out(float *out, const float *X, int64_t rows, int64_t cols, int tr) {
    const int64_t n = rows * cols;
    for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < n;
         k += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = k / cols, j = k % cols;
        out[k] = X[tr ? j * rows + i : k];
    }
}

extern "C" int muon_newton_schulz_cuda(vcuda_ctx *ctx, float *out, const float *g, int64_t rows,
                                       int64_t cols, int steps, float *scratch) {
    if (rows <= 0 || cols <= 0 || steps < 0 || !scratch || rows > 0x7fffffff || cols > 0x7fffffff)
        return VEL_EINVAL;
    const int tr = rows > cols;
    const int64_t r = tr ? cols : rows, c = tr ? rows : cols, n = rows * cols;
    float *X = scratch, *Xn = X + r * c, *A = Xn + r * c, *B = A + r * r;
    void *tmp;   // the norm's partials (doubles) and its reciprocal
    int e = vcuda_ctx_scratch(ctx, MU_BLOCKS * sizeof(double) + sizeof(double), &tmp);
    if (e) return e;
    double *part = (double *)tmp;
    float *inv = (float *)(part + MU_BLOCKS);
    cudaStream_t s = stream(ctx);
    k_mu_sumsq<<<MU_BLOCKS, MU_THREADS, 0, s>>>(part, g, n);
    VCUDA_LAUNCHED();
    k_mu_inv<<<1, MU_THREADS, 0, s>>>(inv, part);
    VCUDA_LAUNCHED();
    k_mu_scale<<<vcuda_blocks(n, 256), 256, 0, s>>>(X, g, inv, rows, cols, tr);
    VCUDA_LAUNCHED();
    cublasHandle_t h = (cublasHandle_t)vcuda_cublas(ctx);
    const int R = (int)r, C = (int)c;
    const float one = 1.0f, zero = 0.0f, na = MUON_NS_A, nb = MUON_NS_B, nc = MUON_NS_C;
    for (int it = 0; it < steps; it++) {
        // A = X X^T (X row-major r x c = column-major X^T, ld c)
        CUBLAS_TRY(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, R, R, C, &one, X, C, X, C, &zero, A, R));
        // B = b A + c A A  (B <- A, then beta = b)
        VCUDA_TRY(cudaMemcpyAsync(B, A, (size_t)(r * r) * sizeof(float), cudaMemcpyDeviceToDevice, s));
        CUBLAS_TRY(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, R, R, R, &nc, A, R, A, R, &nb, B, R));
        // Xn = a X + B X  (row-major (r x r)(r x c): sgemm(N, N, c, r, r, X, c, B, r, Xn, c))
        VCUDA_TRY(cudaMemcpyAsync(Xn, X, (size_t)(r * c) * sizeof(float), cudaMemcpyDeviceToDevice, s));
        CUBLAS_TRY(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, C, R, R, &one, X, C, B, R, &na, Xn, C));
        float *t = X;
        X = Xn;
        Xn = t;
    }
    k_mu_out<<<vcuda_blocks(n, 256), 256, 0, s>>>(out, X, rows, cols, tr);
    VCUDA_LAUNCHED();
    return 0;
}

// buf = lerp(buf, g, 1 - mu); u = nesterov ? lerp(g, buf, mu) : buf.
__global__ void k_mu_momentum(float *u, float *buf, const float *g, int64_t n, float mu, float w,
                              int nesterov) {
    for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < n;
         k += (int64_t)gridDim.x * blockDim.x) {
        float b = mu_lerp(buf[k], g[k], w);
        buf[k] = b;
        u[k] = nesterov ? mu_lerp(g[k], b, mu) : b;
    }
}

// p = (wd ? p * decay : p) + (-lr) * (u * scale).
__global__ void k_mu_apply(float *p, const float *u, int64_t n, float lr, float scale, float decay,
                           int wd) {
    for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < n;
         k += (int64_t)gridDim.x * blockDim.x) {
        float pk = wd ? __fmul_rn(p[k], decay) : p[k];
        p[k] = __fadd_rn(pk, __fmul_rn(-lr, __fmul_rn(u[k], scale)));
    }
}

extern "C" int muon_update_cuda(vcuda_ctx *ctx, float *p, const float *g, float *buf, int64_t rows,
                                int64_t cols, double lr, const optim_config *c, float *scratch) {
    if (rows <= 0 || cols <= 0 || !scratch) return VEL_EINVAL;
    const int64_t n = rows * cols;
    float *u = scratch, *ns = scratch + n;   // nn/optim.c's scratch layout
    cudaStream_t s = stream(ctx);
    k_mu_momentum<<<vcuda_blocks(n, 256), 256, 0, s>>>(u, buf, g, n, (float)c->muon_momentum,
                                                        (float)(1.0 - c->muon_momentum),
                                                        c->muon_nesterov);
    VCUDA_LAUNCHED();
    int e = muon_newton_schulz_cuda(ctx, u, u, rows, cols, c->muon_ns_steps, ns);
    if (e) return e;
    const float scale = (float)sqrt(rows > cols ? (double)rows / (double)cols : 1.0);
    k_mu_apply<<<vcuda_blocks(n, 256), 256, 0, s>>>(p, u, n, (float)lr, scale,
                                                     (float)(1.0 - lr * c->muon_weight_decay),
                                                     c->muon_weight_decay != 0.0);
    VCUDA_LAUNCHED();
    return 0;
}
