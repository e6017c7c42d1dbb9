// linear.c: the linear ops of nn/linear.h, dispatched by where their pointers live
// (nn/backend.h): host -> nn/cpu/linear.c, device -> nn/cuda/linear.cu.
#include "nn/linear.h"

#include "nn/backend.h"
#include "nn/cpu/ops.h"
#include "nn/zero_first.h"
#ifdef VEL_HAVE_CUDA
#include "nn/cuda/ops.h"
#endif

void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N,
                    int C, int OC) {
    int w = NN_WHERE(out, inp, weight, bias);
    if (w == NN_HOST)
        linear_forward_cpu(out, inp, weight, bias, N, C, OC);
    else if (w == NN_DEVICE)
        NN_CUDA(linear_forward_cuda(NN_CTX, out, inp, weight, bias, N, C, OC));
}

void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int N, int C, int OC) {
    int w = NN_WHERE(dinp, dweight, dbias, dout, inp, weight);
    if (w == NN_HOST)
        linear_backward_cpu(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
    else if (w == NN_DEVICE)
        NN_CUDA(linear_backward_cuda(NN_CTX, dinp, dweight, dbias, dout, inp, weight, N, C, OC));
}

void linear_backward_set(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, int N, int C, int OC) {
    int w = NN_WHERE(dinp, dweight, dbias, dout, inp, weight);
    if (w == NN_HOST)
        linear_backward_set_cpu(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
    else if (w == NN_DEVICE && !(dinp && nn_zero_first(__func__, dinp, (size_t)N, C, C)))
        NN_CUDA(linear_backward_cuda(NN_CTX, dinp, dweight, dbias, dout, inp, weight, N, C, OC));
}
