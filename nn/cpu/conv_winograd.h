// conv_winograd.h (private to nn/cpu): 3x3 stride-1 convolutions by
// Winograd F(2x2, 3x3) on AVX-512 (nn/cpu/conv_winograd.c says how), used by
// nn/cpu/conv.c for the forward and the data gradient where they apply; the
// filter gradient stays on the direct kernels (nn/cpu/conv_direct.c).
#ifndef NN_CPU_CONV_WINOGRAD_H
#define NN_CPU_CONV_WINOGRAD_H
#include <stddef.h>

#include "nn/conv.h"

// 1 when the shape suits the Winograd kernels: 3x3, stride 1, every pad
// <= 2, at least 16 input and output channels (48 when the output is
// narrower than 16 columns), and the CPU has AVX-512F. The scratch is sized from this
// (shape only), whether or not the path is forced off.
int conv_wino_shape_ok(const conv2d_cfg *c);
// conv_wino_shape_ok and the path not forced off (conv_wino_force_off).
int conv_wino_applies(const conv2d_cfg *c);

// Tests only: nonzero makes conv_wino_applies return 0, so conv.c takes the
// direct kernels (both paths can be tested on one machine). Not
// thread-safe; set it between calls.
void conv_wino_force_off(int off);

// Scratch floats conv_wino_forward / conv_wino_backward_data need.
size_t conv_wino_scratch_floats(const conv2d_cfg *c);

// out = conv(inp) + bias (bias may be NULL); same layout as
// conv2d_forward_cpu.
void conv_wino_forward(float *out, const float *inp, const float *weight, const float *bias,
                       float *scratch, const conv2d_cfg *c);
// dinp += the data gradient of dout, or with set nonzero dinp = it.
void conv_wino_backward_data(float *dinp, const float *dout, const float *weight,
                             float *scratch, const conv2d_cfg *c, int set);

#endif
