// conv.c: the conv ops of nn/conv.h, dispatched by where their pointers live
// (nn/backend.h): host -> nn/cpu/conv.c, device -> nn/cuda/conv.cu.
#include "nn/conv.h"

#include "nn/backend.h"
#include "nn/zero_first.h"
#include "nn/cpu/ops.h"
#ifdef VEL_HAVE_CUDA
#include "nn/cuda/ops.h"
#endif

#include "core/base.h"

conv2d_cfg conv2d_make(int B, int C, int H, int W, int OC, int k, int stride, int pad) {
    conv2d_cfg c = {B, C, H, W, OC, k, k, stride, pad, pad, pad, pad};
    return c;
}

int conv2d_out_h(const conv2d_cfg *c) {
    return (c->H + c->pad_top + c->pad_bottom - c->KH) / c->stride + 1;
}
int conv2d_out_w(const conv2d_cfg *c) {
    return (c->W + c->pad_left + c->pad_right - c->KW) / c->stride + 1;
}

int conv2d_validate(const conv2d_cfg *c) {
    if (c->B < 1 || c->C < 1 || c->H < 1 || c->W < 1 || c->OC < 1 || c->KH < 1 || c->KW < 1 ||
        c->stride < 1 || c->pad_top < 0 || c->pad_bottom < 0 || c->pad_left < 0 || c->pad_right < 0)
        return VEL_EINVAL;
    if (c->H + c->pad_top + c->pad_bottom < c->KH || c->W + c->pad_left + c->pad_right < c->KW)
        return VEL_EINVAL;
    return 0;
}

// One scratch size serves both backends, so a model sizes its buffer the same
// way wherever it runs: the CPU's im2col columns, or the padded input copy the
// CUDA op makes for asymmetric padding, whichever is larger (the larger size
// changes no result, only how much of the buffer goes unused).
size_t conv2d_scratch_floats(const conv2d_cfg *c) {
    size_t n = conv2d_scratch_floats_cpu(c);
#ifdef VEL_HAVE_CUDA
    size_t g = conv2d_scratch_floats_cuda(c);
    if (g > n) n = g;
#endif
    return n;
}

void conv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                    float *scratch, const conv2d_cfg *c) {
    int w = NN_WHERE(out, inp, weight, bias, scratch);
    if (w == NN_HOST)
        conv2d_forward_cpu(out, inp, weight, bias, scratch, c);
    else if (w == NN_DEVICE)
        NN_CUDA(conv2d_forward_cuda(NN_CTX, out, inp, weight, bias, scratch, c));
}

void conv2d_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, float *scratch, const conv2d_cfg *c) {
    int w = NN_WHERE(dinp, dweight, dbias, dout, inp, weight, scratch);
    if (w == NN_HOST)
        conv2d_backward_cpu(dinp, dweight, dbias, dout, inp, weight, scratch, c);
    else if (w == NN_DEVICE)
        NN_CUDA(conv2d_backward_cuda(NN_CTX, dinp, dweight, dbias, dout, inp, weight, scratch, c));
}

void conv2d_backward_set(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, float *scratch,
                         const conv2d_cfg *c) {
    int w = NN_WHERE(dinp, dweight, dbias, dout, inp, weight, scratch);
    if (w == NN_HOST)
        conv2d_backward_set_cpu(dinp, dweight, dbias, dout, inp, weight, scratch, c);
    else if (w == NN_DEVICE &&
             !(dinp && nn_zero_first(__func__, dinp, 1, (size_t)c->B * c->C * c->H * c->W,
                                     (size_t)c->B * c->C * c->H * c->W)))
        NN_CUDA(conv2d_backward_cuda(NN_CTX, dinp, dweight, dbias, dout, inp, weight, scratch, c));
}
