// matmul.c: the batched product of nn/matmul.h, dispatched by where its
// pointers live (nn/backend.h): host -> nn/cpu/matmul.c, device -> no CUDA
// implementation yet (sticky error).
#include "nn/matmul.h"

#include "nn/backend.h"
#include "nn/cpu/ops.h"

void matmul_batched(int batch, int transA, int transB, int M, int N, int K, float alpha,
                    const float *A, int lda, int64_t strideA, const float *B, int ldb,
                    int64_t strideB, float beta, float *C, int ldc, int64_t strideC) {
    int w = NN_WHERE(A, B, C);
    if (w == NN_HOST)
        matmul_batched_cpu(batch, transA, transB, M, N, K, alpha, A, lda, strideA, B, ldb,
                           strideB, beta, C, ldc, strideC);
    else if (w == NN_DEVICE)
        NN_NO_CUDA();
}
