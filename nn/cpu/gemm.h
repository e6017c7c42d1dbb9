// gemm.h (private to nn/cpu): the one way nn/cpu runs a large GEMM on several
// threads. C (M,N) = alpha op(A) op(B) + beta C, row-major, cut into blocks
// of C's rows (when M >= N) or columns, each computed by one single-threaded
// cblas_sgemm inside an OpenMP loop: OpenBLAS's OpenMP build runs on the
// calling thread inside a parallel region, so there is one thread pool
// (libgomp's) for BLAS and our own loops.
//
// OpenBLAS runs single-threaded in every call made from here: the pthread
// build set to one thread (openblas_set_num_threads(1), process-wide, on the
// first call), the OpenMP build by calling it inside our parallel regions or
// with the OpenMP count set to 1 for the call and put back after (gemm.c:
// that build's openblas_set_num_threads also changes the OpenMP count).
// Direct cblas callers elsewhere in the process keep OpenBLAS's own threads
// with the OpenMP build and run single-threaded with the pthread build.
//
// Why blocks of our own instead of OpenBLAS's threading: the blocks depend on
// the shape only, never on the thread count, and each element of C is the
// result of one single-threaded call, so the result is bit-identical for any
// OMP_NUM_THREADS (OpenBLAS's own split is not: it moves the micro-tile edges
// with the thread count). Each extra block re-packs the operand shared by all
// blocks (B when rows are split, A when columns are), so blocks are only cut
// while that stays a few percent of the work (gemm.c).
//
// On AVX-512 CPUs most products run on the own SGEMM instead
// (nn/cpu/sgemm_avx512.h, chosen per shape in gemm.c): one product over the
// threads with its tiles split, bit-identical for any thread count and any
// cut of M or N as well.
#ifndef NN_CPU_GEMM_H
#define NN_CPU_GEMM_H

// Tests and benches: 1 makes every product below OpenBLAS's (as on a CPU
// without AVX-512, or with VEL_GEMM_BLAS=1 in the environment), 0 back to
// the per-shape choice. Not thread-safe: set it between products.
void gemm_force_blas(int on);

// Tests: the most blocks a product is cut into (n >= 2), as on a machine
// with n processors (the cap is otherwise the processor count, so a 2-core
// machine never cuts more than 2); 0 back to the processor count. Not
// thread-safe: set it between products.
void gemm_set_max_blocks(int n);

// transA/transB: 0 = as stored, 1 = transposed (row-major, like cblas).
void gemm_blocks(int transA, int transB, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta,
                 float *C, int ldc);

// The same with C first set to bias in every row (bias: N floats; beta is
// then 1): each block seeds its own part of C just before its product, on
// its own thread and while that part is in cache (a linear layer's bias).
void gemm_blocks_bias(int transA, int transB, int M, int N, int K, float alpha,
                      const float *A, int lda, const float *B, int ldb, float beta,
                      float *C, int ldc, const float *bias);

// The same product as one single-threaded call, for code that is already
// inside its own parallel loop (one call per task).
void gemm_serial(int transA, int transB, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta,
                 float *C, int ldc);

// The block count gemm_blocks uses for this shape (1: one call).
int gemm_block_count(int M, int N, int K);

// Block i of `parts` of the product (bias as gemm_blocks_bias, or NULL), as
// gemm_blocks cuts it: C's rows when M >= N, else its columns, sides rounded
// up to whole 16-wide micro-tiles; one single-threaded call (gemm_serial),
// nothing when the block is empty. For callers that run the blocks of
// several products as tasks of their own parallel region.
void gemm_part(int transA, int transB, int M, int N, int K, float alpha, const float *A,
               int lda, const float *B, int ldb, float beta, float *C, int ldc,
               const float *bias, int parts, int i);

// C (M,N) += op(A) op(B) (alpha 1, beta 1) with K cut in two at a
// shape-only point: the first half added onto C by one call, the second
// computed into a per-thread scratch by another call at the same time, then
// added. For products that are too small to cut along M or N
// (gemm_block_count 1) but have a long K (a weight gradient summed over many
// rows). Bits depend on the shape only, not on the thread count. Where the
// own SGEMM takes the shape, it is one product over the threads instead
// (no K cut, no scratch).
void gemm_ksplit2(int transA, int transB, int M, int N, int K, const float *A, int lda,
                  const float *B, int ldb, float *C, int ldc);

#endif
