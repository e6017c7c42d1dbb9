// linear.h: fully connected layer over any number of leading dims, PyTorch
// layout (weight (OC, C)), CPU implementation in nn/cpu/linear.c via OpenBLAS
// cblas_sgemm. Not here: activations, attention, fused SwiGLU (nn-transformer).
//
// Backward ACCUMULATES (+=) into dinp, dweight and dbias; NULL = not needed.
// Callers zero gradient buffers once per step.
//
// Threads: the GEMMs run on OpenBLAS's own pthread pool (Debian's pthread
// build; OPENBLAS_NUM_THREADS, else OMP_NUM_THREADS, sets its size), the
// rest is serial. Observed: sgemm results are NOT bit-identical between 1
// and 2 OpenBLAS threads (rounding-level differences, measured max abs 1.7e-6
// on outputs of size ~1); with the OpenBLAS thread count fixed they are
// reproducible and independent of the OpenMP thread count
// (tests/nn/test_linear.c). Run with OMP_WAIT_POLICY=passive when OpenMP ops
// and GEMMs alternate: spinning OpenMP workers slow OpenBLAS (see
// bench/bench_nn_dense.c).
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

#endif
