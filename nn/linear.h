// linear.h: fully connected layer over any number of leading dims, PyTorch
// layout (weight (OC, C)), CPU implementation in nn/cpu/linear.c on the
// project's GEMM (nn/cpu/gemm.h: own AVX-512 SGEMM or OpenBLAS, by shape and
// CPU). Not here: activations, attention, fused SwiGLU (nn-transformer).
//
// Backward ACCUMULATES (+=) into dinp, dweight and dbias; NULL = not needed.
// Callers zero gradient buffers once per step.
//
// Threads (CPU): one libgomp pool for BLAS and own loops; every product's
// bits depend on the shapes only (nn/cpu/gemm.h: the own SGEMM sums K in
// fixed blocks, OpenBLAS runs in shape-only blocks, one single-threaded call
// each), so results are bit-identical for any OMP_NUM_THREADS
// (tests/nn/test_linear.c).
#ifndef NN_LINEAR_H
#define NN_LINEAR_H

// out (N,OC) = inp (N,C) @ weight(OC,C)^T + bias(OC). bias may be NULL.
// N is the product of all leading dims (B*T for tokens). out must not alias inp.
void linear_forward(float *out, const float *inp, const float *weight,
                    const float *bias, int N, int C, int OC);

// dinp (N,C) += dout @ weight; dweight (OC,C) += dout^T @ inp;
// dbias (OC) += sum over N of dout. Any of dinp/dweight/dbias may be NULL.
void linear_backward(float *dinp, float *dweight, float *dbias,
                     const float *dout, const float *inp, const float *weight,
                     int N, int C, int OC);

// The same with dinp SET (=) instead of accumulated, for a caller whose
// dinp holds nothing yet (no zeroing pass first; bit-identical to zeroing
// then linear_backward). dweight and dbias still accumulate.
void linear_backward_set(float *dinp, float *dweight, float *dbias,
                         const float *dout, const float *inp, const float *weight,
                         int N, int C, int OC);

#endif
