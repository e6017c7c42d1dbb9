// matmul.h: plain batched matrix products for code whose products are not a
// linear layer or multi-head attention (the VAE's single-head spatial
// attention core, models/vae_blocks.c: head dim = channels up to 512, T x T
// probabilities kept for backward; Muon's Newton-Schulz iterations, the
// Inception classifier's logits, precision/recall's feature distances), so
// that no caller outside nn/cpu runs OpenBLAS directly. Row-major, as cblas:
//   C_i (M,N) = alpha op(A_i) op(B_i) + beta C_i,   i < batch,
// op(X) = X (trans 0) or X^T (trans 1); matrix i of A starts at A + i*strideA
// (likewise B, C). C_i must not overlap A_j or B_j.
// CPU implementation in nn/cpu/matmul.c; no CUDA implementation yet (device
// pointers record NN_ENOCUDAOP, nn/backend.h).
//
// Threads (CPU): one libgomp pool (nn/cpu/gemm.h). A batch of 2 or more runs
// one matrix per task, each one single-threaded product; a single matrix is
// one product over the threads (the own AVX-512 SGEMM) or cut into
// shape-only blocks (OpenBLAS). Either way the bits depend on the shapes
// alone, so results are bit-identical for any OMP_NUM_THREADS (and a batch
// gives the same bits as its matrices one by one).
#ifndef NN_MATMUL_H
#define NN_MATMUL_H

#include <stdint.h>

void matmul_batched(int batch, int transA, int transB, int M, int N, int K, float alpha,
                    const float *A, int lda, int64_t strideA, const float *B, int ldb,
                    int64_t strideB, float beta, float *C, int ldc, int64_t strideC);

#endif
