// pool.h: 2-D max and average pooling, NCHW, forward only (inference: the
// Inception-v3 feature network of models/inception.h). PyTorch semantics:
// output size floor((H + 2 pad - k) / stride) + 1 (ceil_mode False), a max
// pool's padding never wins (as -inf), an average pool divides by k*k
// (count_include_pad) or by the number of taps inside the input (not
// counting padding: pytorch-fid's FIDInception blocks). pad <= k / 2.
// CPU implementation in nn/cpu/pool.c: serial loops, a fixed tap order (no
// OpenMP region: its spinning workers slow the next conv's OpenBLAS GEMM,
// see nn/cpu/conv.c; pooling is a small share of Inception's time).
// Not here: backward, dilation, ceil_mode, global pooling over a (B, C, HW)
// tensor is pool_global_avg below.
#ifndef NN_POOL_H
#define NN_POOL_H

int pool2d_out_size(int H, int k, int stride, int pad);
// out (B, C, OH, OW); inp (B, C, H, W).
void maxpool2d_forward(float *out, const float *inp, int B, int C, int H, int W, int k,
                       int stride, int pad);
void avgpool2d_forward(float *out, const float *inp, int B, int C, int H, int W, int k,
                       int stride, int pad, int count_include_pad);
// out (B, C) = mean over HW of inp (B, C, HW), summed in double.
void pool_global_avg(float *out, const float *inp, int B, int C, int HW);

#endif
