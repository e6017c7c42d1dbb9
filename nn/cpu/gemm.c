// gemm.c: the entry points of nn/cpu's GEMMs (see gemm.h): the own AVX-512
// SGEMM where it is faster, else shape-only blocks of OpenBLAS calls over
// OpenMP threads.
#include "nn/cpu/gemm.h"

#include <cblas.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cpu/scratch.h"
#include "nn/cpu/sgemm_avx512.h"

// The own AVX-512 SGEMM (nn/cpu/sgemm_avx512.c) replaces OpenBLAS where it
// measured faster on this project's machine (2-core AVX-512 Xeon under KVM,
// OpenBLAS 0.3.21 through this file; bench/bench_gemm, same run, medians,
// own time / OpenBLAS time): sgemm 1024^3 0.86 at 1 thread, 0.88 at 2;
// the forward, input- and weight-gradient products of the DiT-B, DiT-S and
// toy linear layers 0.84-1.00 at 1 thread, 0.87-1.0 at 2 (the B panels are
// packed once for both threads and the tiles split); conv-shaped products
// (32-64 rows or a depth of 32-64) 0.64-1.01. Where it loses, OpenBLAS
// stays: fewer than 32 rows or columns (adaLN's 8-16 rows x 2304-4608
// columns: own 1.13-1.26x slower at 1 thread; the kernel's tile is
// 14 x 32 and packs all of B for a few rows), and products of at most 64^3
// multiply-adds (the VAE's attention at 8x8 latents): there OpenBLAS's
// small-matrix path wins, NN and TN 64^3 own 1.2-1.3x slower (NT own
// 0.85x; one rule for all; 128^3 own 0.82-0.92x).
// On CPUs without AVX-512F, or with VEL_GEMM_BLAS=1 in the environment (or
// gemm_force_blas), every product is OpenBLAS's.
#define OWN_MIN_ROWS 32
#define OWN_MIN_COLS 32
#define OWN_MIN_MACS (64.0 * 64 * 64 + 1)
static int force_blas = -1;   // -1: not read from the environment yet

void gemm_force_blas(int on) { __atomic_store_n(&force_blas, on ? 1 : 0, __ATOMIC_RELAXED); }

static int use_own(int M, int N, int K) {
    int f = __atomic_load_n(&force_blas, __ATOMIC_RELAXED);
    if (f < 0) {   // a benign race: every thread reads the same environment
        const char *e = getenv("VEL_GEMM_BLAS");
        f = e && *e && strcmp(e, "0") != 0;
        __atomic_store_n(&force_blas, f, __ATOMIC_RELAXED);
    }
    return !f && M >= OWN_MIN_ROWS && N >= OWN_MIN_COLS &&
           (double)M * N * K >= OWN_MIN_MACS && sgemm_avx512_usable();
}

// Most blocks one GEMM is cut into: the processors available to the process
// (omp_get_num_procs; at least 2, at most GEMM_BLOCKS_CAP), read once. Never
// the thread count, so the cut -- and the bits -- do not depend on
// OMP_NUM_THREADS (they may differ between machines with different core
// counts, as they do between vector widths). Each extra block costs even a single thread (measured with
// bench/torch_cpu: DiT-B qkv 2048x768x2304 fwd+bwd at 1 thread 415 ms with
// up to 8 blocks, 351 ms with 2), which the re-packing budget below bounds;
// on this project's 2-core machine the cap is 2, as it was when it was fixed.
#define GEMM_BLOCKS_CAP 64
static int blocks_override;   // gemm_set_max_blocks (tests); 0: none

void gemm_set_max_blocks(int n) {
    n = n <= 0 ? 0 : n < 2 ? 2 : n > GEMM_BLOCKS_CAP ? GEMM_BLOCKS_CAP : n;
    __atomic_store_n(&blocks_override, n, __ATOMIC_RELAXED);
}

static int max_blocks(void) {
    const int o = __atomic_load_n(&blocks_override, __ATOMIC_RELAXED);
    if (o) return o;
    static int cached;   // 0 until computed; a benign race (same value)
    int m = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (!m) {
        m = omp_get_num_procs();
        m = m < 2 ? 2 : m > GEMM_BLOCKS_CAP ? GEMM_BLOCKS_CAP : m;
        __atomic_store_n(&cached, m, __ATOMIC_RELAXED);
    }
    return m;
}
// Smallest block side along the cut dimension (keeps OpenBLAS on its fast
// kernels; a multiple of its micro-tile sides).
#define GEMM_MIN_SIDE 64
// Below this many multiply-adds a GEMM runs as one call: the fork/join and
// re-packing would cost more than the second thread gains.
#define GEMM_MIN_MACS (1 << 20)
// Re-packing budget: the extra copies of the shared operand (about one
// cycle per float) may cost at most 1/GEMM_PACK_RATIO of the multiply-adds
// (about 1/32 cycle each with AVX-512 FMA).
#define GEMM_PACK_RATIO 16

static int block_count(int M, int N, int K) {
    double macs = (double)M * N * K;
    if (macs < GEMM_MIN_MACS) return 1;
    int cut = M >= N ? M : N;
    double shared = M >= N ? (double)K * N : (double)M * K;   // floats re-packed per block
    int nb = cut / GEMM_MIN_SIDE;
    if (nb > max_blocks()) nb = max_blocks();
    while (nb > 1 && (nb - 1) * shared * 32.0 * GEMM_PACK_RATIO > macs) nb--;
    return nb < 1 ? 1 : nb;
}

// BLAS itself stays single-threaded (gemm.h). The two Debian builds of
// OpenBLAS take their thread count from different places: the pthread build
// from openblas_set_num_threads, the OpenMP build from the calling thread's
// omp_get_max_threads() (serial when that is 1 or inside an active parallel
// region). And in the OpenMP build openblas_set_num_threads(1) also calls
// omp_set_num_threads(1): left at that, every later parallel loop of ours ran
// on one thread (every nn/cpu op was as slow at 2 threads as at 1). So,
// outside parallel regions: OpenBLAS set to one thread (pthread build), the
// OpenMP count set to 1 for the call (OpenMP build), and the caller's count
// put back by blas_serial_end. Returns the caller's count, 0 inside a
// parallel region (nothing to do there).
static int blas_serial_begin(void) {
    if (omp_in_parallel()) return 0;
    const int n = omp_get_max_threads();
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
    omp_set_num_threads(1);
    return n;
}

static void blas_serial_end(int n) {
    if (n > 0) omp_set_num_threads(n);
}

void gemm_serial(int transA, int transB, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta,
                 float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (use_own(M, N, K)) {
        sgemm_avx512(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL, 0);
        return;
    }
    const int nthr = blas_serial_begin();
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                transB ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    blas_serial_end(nthr);
}

void gemm_blocks(int transA, int transB, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta,
                 float *C, int ldc) {
    gemm_blocks_bias(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}

// Rows lo..hi (all columns) or columns lo..hi (all rows) of C set to bias.
static void seed_bias(float *C, int ldc, const float *bias, int M, int N, int rows, int lo,
                      int hi) {
    if (rows) {
        for (int i = lo; i < hi; i++) memcpy(C + (size_t)i * ldc, bias, sizeof(float) * N);
    } else {
        for (int i = 0; i < M; i++)
            memcpy(C + (size_t)i * ldc + lo, bias + lo, sizeof(float) * (hi - lo));
    }
}

void gemm_blocks_bias(int transA, int transB, int M, int N, int K, float alpha,
                      const float *A, int lda, const float *B, int ldb, float beta,
                      float *C, int ldc, const float *bias) {
    if (M <= 0 || N <= 0) return;
    if (use_own(M, N, K)) {   // its own threads; bits independent of them
        sgemm_avx512(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias, 1);
        return;
    }
    // The same blocks are computed whether or not this runs inside a
    // parallel region (then one thread does them all), so the bits never
    // change. The team size is the caller's count (the current one is 1
    // here); its threads inherit 1, so OpenBLAS stays serial inside. A
    // block is never the own SGEMM's: it is smaller than this product.
    const int nb = block_count(M, N, K);
    const int nthr = blas_serial_begin();
    #pragma omp parallel for schedule(static) num_threads(nthr > 1 ? nthr : 1) if (nb > 1 && nthr > 1)
    for (int b = 0; b < nb; b++)
        gemm_part(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias, nb, b);
    blas_serial_end(nthr);
}

void gemm_part(int transA, int transB, int M, int N, int K, float alpha, const float *A,
               int lda, const float *B, int ldb, float beta, float *C, int ldc,
               const float *bias, int parts, int i) {
    const int rows = M >= N, cut = rows ? M : N;
    int side = (cut + parts - 1) / parts;
    side = (side + 15) / 16 * 16;   // whole micro-tiles
    const int lo = i * side, hi = lo + side < cut ? lo + side : cut;
    if (lo >= hi) return;
    if (bias) {
        seed_bias(C, ldc, bias, M, N, rows, lo, hi);
        beta = 1.0f;
    }
    if (rows)   // rows lo..hi of op(A): A + lo*lda (as stored) or A + lo (transposed)
        gemm_serial(transA, transB, hi - lo, N, K, alpha, transA ? A + lo : A + (size_t)lo * lda,
                    lda, B, ldb, beta, C + (size_t)lo * ldc, ldc);
    else        // columns lo..hi of op(B): B + lo (as stored) or B + lo*ldb (transposed)
        gemm_serial(transA, transB, M, hi - lo, K, alpha, A, lda,
                    transB ? B + (size_t)lo * ldb : B + lo, ldb, beta, C + lo, ldc);
}

int gemm_block_count(int M, int N, int K) { return block_count(M, N, K); }

// The second half's product, per thread (nn/cpu/scratch.h).
static _Thread_local scratch_buf ks_buf;

void gemm_ksplit2(int transA, int transB, int M, int N, int K, const float *A, int lda,
                  const float *B, int ldb, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (use_own(M, N, K)) {   // splits the tiles over the threads, no K cut
        sgemm_avx512(transA, transB, M, N, K, 1.0f, A, lda, B, ldb, 1.0f, C, ldc, NULL, 1);
        return;
    }
    const int h = (K / 2 + 15) / 16 * 16;   // first half: whole micro-tiles of K
    // the calling thread's buffer, used by task 1 below
    float *P = h > 0 && h < K ? scratch_grow(&ks_buf, (size_t)M * N, 0) : NULL;
    if (!P) {   // nothing to split or no scratch: one call
        gemm_serial(transA, transB, M, N, K, 1.0f, A, lda, B, ldb, 1.0f, C, ldc);
        return;
    }
    const int nthr = blas_serial_begin();
    const enum CBLAS_TRANSPOSE ta = transA ? CblasTrans : CblasNoTrans;
    const enum CBLAS_TRANSPOSE tb = transB ? CblasTrans : CblasNoTrans;
    #pragma omp parallel for schedule(static) num_threads(nthr > 1 ? nthr : 1) if (nthr > 1)
    for (int t = 0; t < 2; t++) {
        const int k0 = t ? h : 0, kk = t ? K - h : h;
        const float *a = transA ? A + (size_t)k0 * lda : A + k0;
        const float *b = transB ? B + k0 : B + (size_t)k0 * ldb;
        if (t == 0)
            cblas_sgemm(CblasRowMajor, ta, tb, M, N, kk, 1.0f, a, lda, b, ldb, 1.0f, C, ldc);
        else
            cblas_sgemm(CblasRowMajor, ta, tb, M, N, kk, 1.0f, a, lda, b, ldb, 0.0f, P, N);
    }
    blas_serial_end(nthr);
    #pragma omp parallel for schedule(static) if (nthr > 1 && (int64_t)M * N >= 32768)
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] += P[(size_t)i * N + j];
}
