// matmul.c: CPU batched matrix products (see nn/matmul.h), on nn/cpu/gemm.h.
#include "nn/cpu/ops.h"

#include "core/base.h"
#include "nn/cpu/gemm.h"

// Below this many multiply-adds in the whole batch the matrices run one after
// another on the calling thread (a fork/join costs more than a few small
// products; 8 of the VAE's 64 x 64 x 64 attention products are 2^21).
#define MATMUL_PAR_MACS (1 << 20)

void matmul_batched_cpu(int batch, int transA, int transB, int M, int N, int K, float alpha,
                        const float *A, int lda, int64_t strideA, const float *B, int ldb,
                        int64_t strideB, float beta, float *C, int ldc, int64_t strideC) {
    CHECK(batch >= 0 && M >= 0 && N >= 0 && K >= 0);
    if (batch == 0 || M == 0 || N == 0) return;
    if (batch == 1) {
        gemm_blocks(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    // One matrix per task, each one single-threaded call (gemm_serial), so
    // the bits do not depend on which thread runs it.
    const double macs = (double)batch * M * N * K;
    #pragma omp parallel for schedule(static) if (macs >= MATMUL_PAR_MACS)
    for (int i = 0; i < batch; i++)
        gemm_serial(transA, transB, M, N, K, alpha, A + (size_t)i * strideA, lda,
                    B + (size_t)i * strideB, ldb, beta, C + (size_t)i * strideC, ldc);
}
