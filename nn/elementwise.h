// elementwise.h: the small element-wise ops models need between layers
// (residual add, product, scale, per-channel broadcast add). CPU
// implementation in nn/cpu/elementwise.c, OpenMP-parallel, no reductions
// except the per-channel bias gradient (fixed order).
// Not here: adaLN modulate/gate (nn-transformer), activations (activation.h).
//
// Backward ACCUMULATES (+=); NULL = not needed. Forwards may run in place
// (out == a or out == b) unless stated.
#ifndef NN_ELEMENTWISE_H
#define NN_ELEMENTWISE_H

#include <stdint.h>

// out = a + b. Backward: da += dout, db += dout.
void add_forward(float *out, const float *a, const float *b, int64_t n);
void add_backward(float *da, float *db, const float *dout, int64_t n);
// x += y (residual add in place; its backward is dy += dx, i.e. add_backward).
void add_inplace(float *x, const float *y, int64_t n);
// out = a * b. Backward: da += dout*b, db += dout*a (needs both inputs).
void mul_forward(float *out, const float *a, const float *b, int64_t n);
void mul_backward(float *da, float *db, const float *dout, const float *a,
                  const float *b, int64_t n);
// out = s * a. Backward: da += s * dout.
void scale_forward(float *out, const float *a, float s, int64_t n);
void scale_backward(float *da, const float *dout, float s, int64_t n);
// out (B, C, HW) = inp + bias[c] (e.g. a time embedding added per channel).
// Backward: dinp += dout, dbias (C) += sum over B, HW of dout.
void add_channel_bias_forward(float *out, const float *inp, const float *bias,
                              int B, int C, int HW);
void add_channel_bias_backward(float *dinp, float *dbias, const float *dout,
                               int B, int C, int HW);

#endif
