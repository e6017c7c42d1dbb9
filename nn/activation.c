// activation.c: the activation ops of nn/activation.h, dispatched by where their pointers live
// (nn/backend.h): host -> nn/cpu/activation.c, softmax.c, device -> nn/cuda/activation.cu.
#include "nn/activation.h"

#include "nn/backend.h"
#include "nn/cpu/ops.h"
#include "nn/zero_first.h"
#ifdef VEL_HAVE_CUDA
#include "nn/cuda/ops.h"
#endif

void relu_forward(float *out, const float *inp, int64_t n) {
    int w = NN_WHERE(out, inp);
    if (w == NN_HOST)
        relu_forward_cpu(out, inp, n);
    else if (w == NN_DEVICE)
        NN_CUDA(relu_forward_cuda(NN_CTX, out, inp, n));
}

void relu_backward(float *dinp, const float *dout, const float *inp, int64_t n) {
    int w = NN_WHERE(dinp, dout, inp);
    if (w == NN_HOST)
        relu_backward_cpu(dinp, dout, inp, n);
    else if (w == NN_DEVICE)
        NN_CUDA(relu_backward_cuda(NN_CTX, dinp, dout, inp, n));
}

void relu_backward_set(float *dinp, const float *dout, const float *inp, int64_t n) {
    int w = NN_WHERE(dinp, dout, inp);
    if (w == NN_HOST)
        relu_backward_set_cpu(dinp, dout, inp, n);
    else if (w == NN_DEVICE && !nn_zero_first(__func__, dinp, 1, (size_t)n, (size_t)n))
        NN_CUDA(relu_backward_cuda(NN_CTX, dinp, dout, inp, n));
}

void silu_forward(float *out, const float *inp, int64_t n) {
    int w = NN_WHERE(out, inp);
    if (w == NN_HOST)
        silu_forward_cpu(out, inp, n);
    else if (w == NN_DEVICE)
        NN_CUDA(silu_forward_cuda(NN_CTX, out, inp, n));
}

void silu_backward(float *dinp, const float *dout, const float *inp, int64_t n) {
    int w = NN_WHERE(dinp, dout, inp);
    if (w == NN_HOST)
        silu_backward_cpu(dinp, dout, inp, n);
    else if (w == NN_DEVICE)
        NN_CUDA(silu_backward_cuda(NN_CTX, dinp, dout, inp, n));
}

void silu_backward_set(float *dinp, const float *dout, const float *inp, int64_t n) {
    int w = NN_WHERE(dinp, dout, inp);
    if (w == NN_HOST)
        silu_backward_set_cpu(dinp, dout, inp, n);
    else if (w == NN_DEVICE)
        NN_NO_CUDA();
}

void gelu_forward(float *out, const float *inp, int64_t n) {
    int w = NN_WHERE(out, inp);
    if (w == NN_HOST)
        gelu_forward_cpu(out, inp, n);
    else if (w == NN_DEVICE)
        NN_CUDA(gelu_forward_cuda(NN_CTX, out, inp, n));
}

void gelu_backward(float *dinp, const float *dout, const float *inp, int64_t n) {
    int w = NN_WHERE(dinp, dout, inp);
    if (w == NN_HOST)
        gelu_backward_cpu(dinp, dout, inp, n);
    else if (w == NN_DEVICE)
        NN_CUDA(gelu_backward_cuda(NN_CTX, dinp, dout, inp, n));
}

void leaky_relu_forward(float *out, const float *inp, int64_t n, float slope) {
    int w = NN_WHERE(out, inp);
    if (w == NN_HOST)
        leaky_relu_forward_cpu(out, inp, n, slope);
    else if (w == NN_DEVICE)
        NN_CUDA(leaky_relu_forward_cuda(NN_CTX, out, inp, n, slope));
}

void leaky_relu_backward(float *dinp, const float *dout, const float *inp, int64_t n, float slope) {
    int w = NN_WHERE(dinp, dout, inp);
    if (w == NN_HOST)
        leaky_relu_backward_cpu(dinp, dout, inp, n, slope);
    else if (w == NN_DEVICE)
        NN_CUDA(leaky_relu_backward_cuda(NN_CTX, dinp, dout, inp, n, slope));
}

void softmax_forward(float *out, const float *inp, int N, int C) {
    int w = NN_WHERE(out, inp);
    if (w == NN_HOST)
        softmax_forward_cpu(out, inp, N, C);
    else if (w == NN_DEVICE)
        NN_CUDA(softmax_forward_cuda(NN_CTX, out, inp, N, C));
}

void softmax_backward(float *dinp, const float *dout, const float *out, int N, int C) {
    int w = NN_WHERE(dinp, dout, out);
    if (w == NN_HOST)
        softmax_backward_cpu(dinp, dout, out, N, C);
    else if (w == NN_DEVICE)
        NN_CUDA(softmax_backward_cuda(NN_CTX, dinp, dout, out, N, C));
}
