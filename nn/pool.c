// pool.c: the pooling ops of nn/pool.h, dispatched by where their pointers live
// (nn/backend.h): host -> nn/cpu/pool.c, device -> no CUDA implementation yet (sticky error).
#include "nn/pool.h"

#include "nn/backend.h"
#include "nn/cpu/ops.h"

int pool2d_out_size(int H, int k, int stride, int pad) { return (H + 2 * pad - k) / stride + 1; }

void maxpool2d_forward(float *out, const float *inp, int B, int C, int H, int W, int k,
                       int stride, int pad) {
    int w = NN_WHERE(out, inp);
    if (w == NN_HOST)
        maxpool2d_forward_cpu(out, inp, B, C, H, W, k, stride, pad);
    else if (w == NN_DEVICE)
        NN_NO_CUDA();
}

void avgpool2d_forward(float *out, const float *inp, int B, int C, int H, int W, int k,
                       int stride, int pad, int count_include_pad) {
    int w = NN_WHERE(out, inp);
    if (w == NN_HOST)
        avgpool2d_forward_cpu(out, inp, B, C, H, W, k, stride, pad, count_include_pad);
    else if (w == NN_DEVICE)
        NN_NO_CUDA();
}

void pool_global_avg(float *out, const float *inp, int B, int C, int HW) {
    int w = NN_WHERE(out, inp);
    if (w == NN_HOST)
        pool_global_avg_cpu(out, inp, B, C, HW);
    else if (w == NN_DEVICE)
        NN_NO_CUDA();
}
