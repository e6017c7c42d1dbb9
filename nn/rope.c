// rope.c: the rope ops of nn/rope.h, dispatched by where their pointers live
// (nn/backend.h): host -> nn/cpu/rope.c, device -> nn/cuda/transformer.cu.
#include "nn/rope.h"

#include "nn/backend.h"
#include "nn/cpu/ops.h"
#include "nn/zero_first.h"
#ifdef VEL_HAVE_CUDA
#include "nn/cuda/ops.h"
#endif

void rope2d_tables(float *cos_t, float *sin_t, int H, int W, int HD, double theta) {
    int w = NN_WHERE(cos_t, sin_t);
    if (w == NN_HOST)
        rope2d_tables_cpu(cos_t, sin_t, H, W, HD, theta);
    else if (w == NN_DEVICE)
        NN_NO_CUDA();
}

void rope_forward(float *out, const float *inp, const float *cos_t, const float *sin_t, int B,
                  int T, int NH, int HD, int ld_out, int ld_inp) {
    int w = NN_WHERE(out, inp, cos_t, sin_t);
    if (w == NN_HOST)
        rope_forward_cpu(out, inp, cos_t, sin_t, B, T, NH, HD, ld_out, ld_inp);
    else if (w == NN_DEVICE)
        NN_CUDA(rope_forward_cuda(NN_CTX, out, inp, cos_t, sin_t, B, T, NH, HD, ld_out, ld_inp));
}

void rope_backward(float *dinp, const float *dout, const float *cos_t, const float *sin_t, int B,
                   int T, int NH, int HD, int ld_dinp, int ld_dout) {
    int w = NN_WHERE(dinp, dout, cos_t, sin_t);
    if (w == NN_HOST)
        rope_backward_cpu(dinp, dout, cos_t, sin_t, B, T, NH, HD, ld_dinp, ld_dout);
    else if (w == NN_DEVICE)
        NN_CUDA(
            rope_backward_cuda(NN_CTX, dinp, dout, cos_t, sin_t, B, T, NH, HD, ld_dinp, ld_dout));
}

void rope_backward_set(float *dinp, const float *dout, const float *cos_t, const float *sin_t,
                       int B, int T, int NH, int HD, int ld_dinp, int ld_dout) {
    int w = NN_WHERE(dinp, dout, cos_t, sin_t);
    if (w == NN_HOST)
        rope_backward_set_cpu(dinp, dout, cos_t, sin_t, B, T, NH, HD, ld_dinp, ld_dout);
    else if (w == NN_DEVICE &&
             !nn_zero_first(__func__, dinp, (size_t)B * T, (size_t)NH * HD, ld_dinp))
        NN_CUDA(
            rope_backward_cuda(NN_CTX, dinp, dout, cos_t, sin_t, B, T, NH, HD, ld_dinp, ld_dout));
}
