// sgemm_avx512.h (private to nn/cpu): own single-precision GEMM for x86-64
// CPUs with AVX-512F, used by nn/cpu/gemm.c where it measured faster than
// OpenBLAS (see gemm.c for the shape rule and the numbers).
//
// C (M,N) = alpha op(A) op(B) + beta C, row-major, transA/transB like
// cblas (0 as stored, 1 transposed); bias (N floats, or NULL): C = alpha
// op(A) op(B) + bias instead (beta ignored, C not read). beta 0 never reads
// C (NaN already in C does not propagate).
//
// Bits: every element is its K products summed in k order in blocks of a
// fixed depth (a compile-time constant), the blocks added in order, so the
// result depends on the shape and the inputs only: not on the thread count,
// not on which thread computes which tile, not on a cut of M or N made by
// the caller. It may differ from OpenBLAS's in the last bits.
#ifndef NN_CPU_SGEMM_AVX512_H
#define NN_CPU_SGEMM_AVX512_H

// 1 when this CPU runs the kernel (AVX-512F) and the build has it (x86-64
// GCC/Clang).
int sgemm_avx512_usable(void);

// par: 1 to run on the caller's OpenMP thread count when the product is big
// enough (outside a parallel region; inside one it always runs on the
// calling thread alone), 0 to run on the calling thread.
void sgemm_avx512(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                  int lda, const float *B, int ldb, float beta, float *C, int ldc,
                  const float *bias, int par);

#endif
