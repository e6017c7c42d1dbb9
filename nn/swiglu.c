// swiglu.c: the swiglu ops of nn/swiglu.h, dispatched by where their pointers live
// (nn/backend.h): host -> nn/cpu/swiglu.c, device -> nn/cuda/transformer.cu.
#include "nn/swiglu.h"

#include "nn/backend.h"
#include "nn/cpu/ops.h"
#include "nn/zero_first.h"
#ifdef VEL_HAVE_CUDA
#include "nn/cuda/ops.h"
#endif

void swiglu_forward(float *h, const float *x12, int N, int H) {
    int w = NN_WHERE(h, x12);
    if (w == NN_HOST)
        swiglu_forward_cpu(h, x12, N, H);
    else if (w == NN_DEVICE)
        NN_CUDA(swiglu_forward_cuda(NN_CTX, h, x12, N, H));
}

void swiglu_backward(float *dx12, const float *dh, const float *x12, int N, int H) {
    int w = NN_WHERE(dx12, dh, x12);
    if (w == NN_HOST)
        swiglu_backward_cpu(dx12, dh, x12, N, H);
    else if (w == NN_DEVICE)
        NN_CUDA(swiglu_backward_cuda(NN_CTX, dx12, dh, x12, N, H));
}

void swiglu_backward_set(float *dx12, const float *dh, const float *x12, int N, int H) {
    int w = NN_WHERE(dx12, dh, x12);
    if (w == NN_HOST)
        swiglu_backward_set_cpu(dx12, dh, x12, N, H);
    else if (w == NN_DEVICE && !nn_zero_first(__func__, dx12, (size_t)N, (size_t)2 * H, (size_t)2 * H))
        NN_CUDA(swiglu_backward_cuda(NN_CTX, dx12, dh, x12, N, H));
}
