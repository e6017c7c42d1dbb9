// norm.c: the norm ops of nn/norm.h, dispatched by where their pointers live
// (nn/backend.h): host -> nn/cpu/norm.c, device -> nn/cuda/norm.cu.
#include "nn/norm.h"

#include "nn/backend.h"
#include "nn/cpu/ops.h"
#include "nn/zero_first.h"
#ifdef VEL_HAVE_CUDA
#include "nn/cuda/ops.h"
#endif

void groupnorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                       const float *bias, int B, int C, int HW, int G, float eps) {
    int w = NN_WHERE(out, mean, rstd, inp, weight, bias);
    if (w == NN_HOST)
        groupnorm_forward_cpu(out, mean, rstd, inp, weight, bias, B, C, HW, G, eps);
    else if (w == NN_DEVICE)
        NN_CUDA(
            groupnorm_forward_cuda(NN_CTX, out, mean, rstd, inp, weight, bias, B, C, HW, G, eps));
}

void groupnorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean, const float *rstd,
                        int B, int C, int HW, int G) {
    int w = NN_WHERE(dinp, dweight, dbias, dout, inp, weight, mean, rstd);
    if (w == NN_HOST)
        groupnorm_backward_cpu(dinp, dweight, dbias, dout, inp, weight, mean, rstd, B, C, HW, G);
    else if (w == NN_DEVICE)
        NN_CUDA(groupnorm_backward_cuda(NN_CTX, dinp, dweight, dbias, dout, inp, weight, mean, rstd,
                                        B, C, HW, G));
}

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                       const float *bias, int N, int C, float eps) {
    int w = NN_WHERE(out, mean, rstd, inp, weight, bias);
    if (w == NN_HOST)
        layernorm_forward_cpu(out, mean, rstd, inp, weight, bias, N, C, eps);
    else if (w == NN_DEVICE)
        NN_CUDA(layernorm_forward_cuda(NN_CTX, out, mean, rstd, inp, weight, bias, N, C, eps));
}

void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean, const float *rstd,
                        int N, int C) {
    int w = NN_WHERE(dinp, dweight, dbias, dout, inp, weight, mean, rstd);
    if (w == NN_HOST)
        layernorm_backward_cpu(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
    else if (w == NN_DEVICE)
        NN_CUDA(layernorm_backward_cuda(NN_CTX, dinp, dweight, dbias, dout, inp, weight, mean, rstd,
                                        N, C));
}

void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N, int C,
                     float eps) {
    int w = NN_WHERE(out, rstd, inp, weight);
    if (w == NN_HOST)
        rmsnorm_forward_cpu(out, rstd, inp, weight, N, C, eps);
    else if (w == NN_DEVICE)
        NN_CUDA(rmsnorm_forward_cuda(NN_CTX, out, rstd, inp, weight, N, C, eps));
}

void rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                      const float *weight, const float *rstd, int N, int C) {
    int w = NN_WHERE(dinp, dweight, dout, inp, weight, rstd);
    if (w == NN_HOST)
        rmsnorm_backward_cpu(dinp, dweight, dout, inp, weight, rstd, N, C);
    else if (w == NN_DEVICE)
        NN_CUDA(rmsnorm_backward_cuda(NN_CTX, dinp, dweight, dout, inp, weight, rstd, N, C));
}

void rmsnorm_backward_set(float *dinp, float *dweight, const float *dout, const float *inp,
                          const float *weight, const float *rstd, int N, int C) {
    int w = NN_WHERE(dinp, dweight, dout, inp, weight, rstd);
    if (w == NN_HOST)
        rmsnorm_backward_set_cpu(dinp, dweight, dout, inp, weight, rstd, N, C);
    else if (w == NN_DEVICE && !(dinp && nn_zero_first(__func__, dinp, (size_t)N, C, C)))
        NN_CUDA(rmsnorm_backward_cuda(NN_CTX, dinp, dweight, dout, inp, weight, rstd, N, C));
}
