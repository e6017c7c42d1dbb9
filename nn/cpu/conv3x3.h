// conv3x3.h (private to nn/cpu): direct 3x3 stride-1 convolution kernels
// (AVX-512), used by nn/cpu/conv.c instead of im2col + GEMM where they apply.
#ifndef NN_CPU_CONV3X3_H
#define NN_CPU_CONV3X3_H
#include <stddef.h>

#include "nn/conv.h"

// 1 when conv3x3_* handle c: 3x3 kernel, stride 1, every pad <= 2, and the
// CPU has AVX-512F (checked once; otherwise conv.c keeps im2col + GEMM).
int conv3x3_applies(const conv2d_cfg *c);

// Scratch floats conv3x3_forward / conv3x3_backward need (shape only).
size_t conv3x3_scratch_floats(const conv2d_cfg *c);

// Same arguments and semantics as conv2d_forward_cpu / conv2d_backward_cpu
// (backward accumulates into dinp and dweight; dbias is conv.c's).
void conv3x3_forward(float *out, const float *inp, const float *weight, const float *bias,
                     float *scratch, const conv2d_cfg *c);
void conv3x3_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                      const float *weight, float *scratch, const conv2d_cfg *c);

#endif
