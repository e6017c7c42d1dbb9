// batchnorm.c: the batchnorm ops of nn/batchnorm.h, dispatched by where their pointers live
// (nn/backend.h): host -> nn/cpu/batchnorm.c, device -> no CUDA implementation yet (sticky error).
#include "nn/batchnorm.h"

#include "nn/backend.h"
#include "nn/cpu/ops.h"

void batchnorm_forward_train(float *out, float *mean, float *rstd, float *running_mean,
                             float *running_var, const float *inp, const float *weight,
                             const float *bias, int B, int C, int HW, float eps, float momentum) {
    int w = NN_WHERE(out, mean, rstd, running_mean, running_var, inp, weight, bias);
    if (w == NN_HOST)
        batchnorm_forward_train_cpu(out, mean, rstd, running_mean, running_var, inp, weight, bias,
                                    B, C, HW, eps, momentum);
    else if (w == NN_DEVICE)
        NN_NO_CUDA();
}

void batchnorm_forward_eval(float *out, const float *inp, const float *running_mean,
                            const float *running_var, const float *weight, const float *bias, int B,
                            int C, int HW, float eps) {
    int w = NN_WHERE(out, inp, running_mean, running_var, weight, bias);
    if (w == NN_HOST)
        batchnorm_forward_eval_cpu(out, inp, running_mean, running_var, weight, bias, B, C, HW,
                                   eps);
    else if (w == NN_DEVICE)
        NN_NO_CUDA();
}

void batchnorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean, const float *rstd,
                        int B, int C, int HW) {
    int w = NN_WHERE(dinp, dweight, dbias, dout, inp, weight, mean, rstd);
    if (w == NN_HOST)
        batchnorm_backward_cpu(dinp, dweight, dbias, dout, inp, weight, mean, rstd, B, C, HW);
    else if (w == NN_DEVICE)
        NN_NO_CUDA();
}
