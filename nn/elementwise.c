// elementwise.c: the elementwise ops of nn/elementwise.h, dispatched by where their pointers live
// (nn/backend.h): host -> nn/cpu/elementwise.c, device -> nn/cuda/shape.cu.
#include "nn/elementwise.h"

#include "nn/backend.h"
#include "nn/cpu/ops.h"
#ifdef VEL_HAVE_CUDA
#include "nn/cuda/ops.h"
#endif

void add_forward(float *out, const float *a, const float *b, int64_t n) {
    int w = NN_WHERE(out, a, b);
    if (w == NN_HOST)
        add_forward_cpu(out, a, b, n);
    else if (w == NN_DEVICE)
        NN_CUDA(add_forward_cuda(NN_CTX, out, a, b, n));
}

void add_backward(float *da, float *db, const float *dout, int64_t n) {
    int w = NN_WHERE(da, db, dout);
    if (w == NN_HOST)
        add_backward_cpu(da, db, dout, n);
    else if (w == NN_DEVICE)
        NN_CUDA(add_backward_cuda(NN_CTX, da, db, dout, n));
}

void add_inplace(float *x, const float *y, int64_t n) {
    int w = NN_WHERE(x, y);
    if (w == NN_HOST)
        add_inplace_cpu(x, y, n);
    else if (w == NN_DEVICE)
        NN_CUDA(add_inplace_cuda(NN_CTX, x, y, n));
}

void mul_forward(float *out, const float *a, const float *b, int64_t n) {
    int w = NN_WHERE(out, a, b);
    if (w == NN_HOST)
        mul_forward_cpu(out, a, b, n);
    else if (w == NN_DEVICE)
        NN_CUDA(mul_forward_cuda(NN_CTX, out, a, b, n));
}

void mul_backward(float *da, float *db, const float *dout, const float *a, const float *b,
                  int64_t n) {
    int w = NN_WHERE(da, db, dout, a, b);
    if (w == NN_HOST)
        mul_backward_cpu(da, db, dout, a, b, n);
    else if (w == NN_DEVICE)
        NN_CUDA(mul_backward_cuda(NN_CTX, da, db, dout, a, b, n));
}

void scale_forward(float *out, const float *a, float s, int64_t n) {
    int w = NN_WHERE(out, a);
    if (w == NN_HOST)
        scale_forward_cpu(out, a, s, n);
    else if (w == NN_DEVICE)
        NN_CUDA(scale_forward_cuda(NN_CTX, out, a, s, n));
}

void scale_backward(float *da, const float *dout, float s, int64_t n) {
    int w = NN_WHERE(da, dout);
    if (w == NN_HOST)
        scale_backward_cpu(da, dout, s, n);
    else if (w == NN_DEVICE)
        NN_CUDA(scale_backward_cuda(NN_CTX, da, dout, s, n));
}

void add_channel_bias_forward(float *out, const float *inp, const float *bias, int B, int C,
                              int HW) {
    int w = NN_WHERE(out, inp, bias);
    if (w == NN_HOST)
        add_channel_bias_forward_cpu(out, inp, bias, B, C, HW);
    else if (w == NN_DEVICE)
        NN_CUDA(add_channel_bias_forward_cuda(NN_CTX, out, inp, bias, B, C, HW));
}

void add_channel_bias_backward(float *dinp, float *dbias, const float *dout, int B, int C, int HW) {
    int w = NN_WHERE(dinp, dbias, dout);
    if (w == NN_HOST)
        add_channel_bias_backward_cpu(dinp, dbias, dout, B, C, HW);
    else if (w == NN_DEVICE)
        NN_CUDA(add_channel_bias_backward_cuda(NN_CTX, dinp, dbias, dout, B, C, HW));
}
