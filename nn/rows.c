// rows.c: the rows ops of nn/rows.h, dispatched by where their pointers live
// (nn/backend.h): host -> nn/cpu/rows.c, device -> nn/cuda/rows.cu.
#include "nn/rows.h"

#include "nn/backend.h"
#include "nn/cpu/ops.h"
#ifdef VEL_HAVE_CUDA
#include "nn/cuda/ops.h"
#endif

void rows_copy_forward(float *out, const float *inp, int N, int W, int out_stride, int inp_stride) {
    int w = NN_WHERE(out, inp);
    if (w == NN_HOST)
        rows_copy_forward_cpu(out, inp, N, W, out_stride, inp_stride);
    else if (w == NN_DEVICE)
        NN_CUDA(rows_copy_forward_cuda(NN_CTX, out, inp, N, W, out_stride, inp_stride));
}

void rows_copy_backward(float *dinp, const float *dout, int N, int W, int out_stride,
                        int inp_stride) {
    int w = NN_WHERE(dinp, dout);
    if (w == NN_HOST)
        rows_copy_backward_cpu(dinp, dout, N, W, out_stride, inp_stride);
    else if (w == NN_DEVICE)
        NN_CUDA(rows_copy_backward_cuda(NN_CTX, dinp, dout, N, W, out_stride, inp_stride));
}
