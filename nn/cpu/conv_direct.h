// conv_direct.h (private to nn/cpu): direct convolution kernels (AVX-512),
// used by nn/cpu/conv.c instead of im2col + GEMM where they apply.
#ifndef NN_CPU_CONV_DIRECT_H
#define NN_CPU_CONV_DIRECT_H
#include <stddef.h>

#include "nn/conv.h"

// 1 when conv_direct_forward handles c: a KH x KW kernel with 1 < KH*KW and
// KH, KW <= 7, stride 1 or 2, any padding, and the CPU has AVX-512F
// (checked once; otherwise conv.c keeps im2col + GEMM).
int conv_direct_fwd_applies(const conv2d_cfg *c);

// 1 when conv3x3_backward handles c: 3x3 kernel, stride 1, every pad <= 2,
// AVX-512F (such a conv's forward is direct too).
int conv3x3_applies(const conv2d_cfg *c);

// 1 when conv_direct_filter_grad handles c: 3x3 stride 2, AVX-512F (the
// data gradient of such a conv stays im2col + GEMM).
int conv_direct_dw_applies(const conv2d_cfg *c);

// Scratch floats conv_direct_forward (and, where they apply,
// conv3x3_backward and conv_direct_filter_grad) need (shape only).
size_t conv_direct_scratch_floats(const conv2d_cfg *c);

// Same arguments and semantics as conv2d_forward_cpu / conv2d_backward_cpu
// (backward accumulates into dweight, and into dinp unless set, which
// writes it; dbias is conv.c's).
void conv_direct_forward(float *out, const float *inp, const float *weight, const float *bias,
                         float *scratch, const conv2d_cfg *c);
void conv3x3_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                      const float *weight, float *scratch, const conv2d_cfg *c, int set);
// dweight += the filter gradient alone (as conv3x3_backward's).
void conv_direct_filter_grad(float *dweight, const float *dout, const float *inp, float *scratch,
                             const conv2d_cfg *c);

// The forward register tiles (AVX-512; also the product stage of
// nn/cpu/conv_winograd.c): y[o*ys + 16v + j] = sum over c < cin and t < nt
// of w[(c*nt + t)*NB + o] * p[c*ps + off[t] + 16v + j] for o < NB and v < NV,
// NV = 3, 2 or 1 (conv_fwd_tile3, 2, 1), NB = 8, 4, 2 or 1 (the
// table index). Each output sums over c, then t, in order, whatever NV.
typedef void (*fwd_tile_fn)(float *y, size_t ys, const float *p, size_t ps, const float *w,
                            int cin, const int *off, int nt);
extern const fwd_tile_fn conv_fwd_tile3[9], conv_fwd_tile2[9], conv_fwd_tile1[9];

#endif
