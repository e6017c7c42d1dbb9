// conv.h: 2D convolution, NCHW, weight (OC, C, KH, KW), any kernel size,
// stride >= 1, independent top/bottom/left/right zero padding (so the VAE's
// "pad right/bottom by 1, conv3x3 stride 2, no padding" downsample is
// conv2d with pad_bottom = pad_right = 1). CPU implementation in
// nn/cpu/conv.c: 3x3 convs on own AVX-512 kernels (direct, and Winograd
// F(2x2, 3x3) for stride 1 with enough channels), everything else (and other
// CPUs) im2col into a caller-provided scratch buffer + the project's GEMM
// (nn/cpu/gemm.h).
// Not here: dilation, groups, transposed convolution.
//
// Backward ACCUMULATES (+=) into dinp, dweight and dbias; NULL = not needed.
// No allocation inside: size the scratch buffer with conv2d_scratch_floats()
// (the same buffer serves forward and backward; contents are clobbered).
// Threads and reproducibility as nn/linear.h (nn/cpu/conv.c says how the
// work is split).
#ifndef NN_CONV_H
#define NN_CONV_H

#include <stddef.h>

typedef struct {
    int B, C, H, W;          // input (B, C, H, W)
    int OC, KH, KW;          // weight (OC, C, KH, KW)
    int stride;              // same in both directions, >= 1
    int pad_top, pad_bottom, pad_left, pad_right;
} conv2d_cfg;

// Square kernel k, symmetric padding pad on all four sides.
conv2d_cfg conv2d_make(int B, int C, int H, int W, int OC, int k, int stride, int pad);
// Output spatial size: (H + pad_top + pad_bottom - KH) / stride + 1.
int conv2d_out_h(const conv2d_cfg *c);
int conv2d_out_w(const conv2d_cfg *c);
// 0 if the configuration is usable (positive sizes, output >= 1x1,
// non-negative padding), else VEL_EINVAL. Forward/backward CHECK this.
int conv2d_validate(const conv2d_cfg *c);
// Floats of scratch forward and backward need for this configuration.
size_t conv2d_scratch_floats(const conv2d_cfg *c);

// out (B, OC, OH, OW); inp (B, C, H, W); weight (OC, C, KH, KW); bias (OC) or NULL.
void conv2d_forward(float *out, const float *inp, const float *weight,
                    const float *bias, float *scratch, const conv2d_cfg *c);

// dinp (B,C,H,W) += backward data; dweight (OC,C,KH,KW) += backward filter;
// dbias (OC) += sum of dout over B, OH, OW. Each may be NULL.
void conv2d_backward(float *dinp, float *dweight, float *dbias,
                     const float *dout, const float *inp, const float *weight,
                     float *scratch, const conv2d_cfg *c);

// The same with dinp SET (=) instead of accumulated, for a caller whose
// dinp holds nothing yet (no zeroing pass first; the values of zeroing then
// conv2d_backward, except that an exact zero may come out as -0 instead of
// +0). dweight and dbias still accumulate.
void conv2d_backward_set(float *dinp, float *dweight, float *dbias,
                         const float *dout, const float *inp, const float *weight,
                         float *scratch, const conv2d_cfg *c);

#endif
