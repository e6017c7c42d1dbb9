// linear.h: fully connected layer over any number of leading dims, PyTorch
// layout (weight (OC, C)), CPU implementation in nn/cpu/linear.c via OpenBLAS
// cblas_sgemm. Not here: activations, attention, fused SwiGLU (nn-transformer).
//
// Backward ACCUMULATES (+=) into dinp, dweight and dbias; NULL = not needed.
// Callers zero gradient buffers once per step.
//
// Threads: the GEMMs run on OpenBLAS's own pthread pool (not OpenMP); with the
// Debian pthread build the blocking does not split the K (reduction) dim, so
// results are bit-identical for 1 and 2 threads (tests/nn/test_linear.c checks
// this). The bias reduction runs over OpenMP threads in a fixed order.
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
