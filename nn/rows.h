// rows.h: strided row copies between row-major matrices, e.g. the q / k / v
// slot of packed (N, 3D) qkv rows to and from a contiguous (N, D) buffer
// (LightningDiT's q/k norm reads the q and k slots, and its backward writes
// the transformed gradients back into them). CPU implementation in
// nn/cpu/rows.c, CUDA in nn/cuda/rows.cu.
//
//   forward:  out[n*out_stride + j] = inp[n*inp_stride + j]      (assignment)
//   backward: dinp[n*inp_stride + j] += dout[n*out_stride + j]   (accumulates)
// for n < N, j < W; strides >= W (in floats). out and inp must not overlap.
// Not here: general permutes (shape_ops.h has patchify and channel concat).
#ifndef NN_ROWS_H
#define NN_ROWS_H

void rows_copy_forward(float *out, const float *inp, int N, int W, int out_stride, int inp_stride);
void rows_copy_backward(float *dinp, const float *dout, int N, int W, int out_stride,
                        int inp_stride);

#endif
