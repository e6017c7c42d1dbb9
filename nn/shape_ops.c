// shape_ops.c: the shape_ops ops of nn/shape_ops.h, dispatched by where their pointers live
// (nn/backend.h): host -> nn/cpu/shape_ops.c, patchify.c, device -> nn/cuda/shape.cu.
#include "nn/shape_ops.h"

#include "nn/backend.h"
#include "nn/cpu/ops.h"
#ifdef VEL_HAVE_CUDA
#include "nn/cuda/ops.h"
#endif

void upsample2x_forward(float *out, const float *inp, int B, int C, int H, int W) {
    int w = NN_WHERE(out, inp);
    if (w == NN_HOST)
        upsample2x_forward_cpu(out, inp, B, C, H, W);
    else if (w == NN_DEVICE)
        NN_CUDA(upsample2x_forward_cuda(NN_CTX, out, inp, B, C, H, W));
}

void upsample2x_backward(float *dinp, const float *dout, int B, int C, int H, int W) {
    int w = NN_WHERE(dinp, dout);
    if (w == NN_HOST)
        upsample2x_backward_cpu(dinp, dout, B, C, H, W);
    else if (w == NN_DEVICE)
        NN_CUDA(upsample2x_backward_cuda(NN_CTX, dinp, dout, B, C, H, W));
}

void pad2d_forward(float *out, const float *inp, int B, int C, int H, int W, int pt, int pb, int pl,
                   int pr) {
    int w = NN_WHERE(out, inp);
    if (w == NN_HOST)
        pad2d_forward_cpu(out, inp, B, C, H, W, pt, pb, pl, pr);
    else if (w == NN_DEVICE)
        NN_CUDA(pad2d_forward_cuda(NN_CTX, out, inp, B, C, H, W, pt, pb, pl, pr));
}

void pad2d_backward(float *dinp, const float *dout, int B, int C, int H, int W, int pt, int pb,
                    int pl, int pr) {
    int w = NN_WHERE(dinp, dout);
    if (w == NN_HOST)
        pad2d_backward_cpu(dinp, dout, B, C, H, W, pt, pb, pl, pr);
    else if (w == NN_DEVICE)
        NN_CUDA(pad2d_backward_cuda(NN_CTX, dinp, dout, B, C, H, W, pt, pb, pl, pr));
}

void concat_channels_forward(float *out, const float *a, const float *b, int B, int Ca, int Cb,
                             int HW) {
    int w = NN_WHERE(out, a, b);
    if (w == NN_HOST)
        concat_channels_forward_cpu(out, a, b, B, Ca, Cb, HW);
    else if (w == NN_DEVICE)
        NN_CUDA(concat_channels_forward_cuda(NN_CTX, out, a, b, B, Ca, Cb, HW));
}

void concat_channels_backward(float *da, float *db, const float *dout, int B, int Ca, int Cb,
                              int HW) {
    int w = NN_WHERE(da, db, dout);
    if (w == NN_HOST)
        concat_channels_backward_cpu(da, db, dout, B, Ca, Cb, HW);
    else if (w == NN_DEVICE)
        NN_CUDA(concat_channels_backward_cuda(NN_CTX, da, db, dout, B, Ca, Cb, HW));
}

void split_channels_forward(float *a, float *b, const float *inp, int B, int Ca, int Cb, int HW) {
    int w = NN_WHERE(a, b, inp);
    if (w == NN_HOST)
        split_channels_forward_cpu(a, b, inp, B, Ca, Cb, HW);
    else if (w == NN_DEVICE)
        NN_CUDA(split_channels_forward_cuda(NN_CTX, a, b, inp, B, Ca, Cb, HW));
}

void split_channels_backward(float *dinp, const float *da, const float *db, int B, int Ca, int Cb,
                             int HW) {
    int w = NN_WHERE(dinp, da, db);
    if (w == NN_HOST)
        split_channels_backward_cpu(dinp, da, db, B, Ca, Cb, HW);
    else if (w == NN_DEVICE)
        NN_CUDA(split_channels_backward_cuda(NN_CTX, dinp, da, db, B, Ca, Cb, HW));
}

void patchify_forward(float *out, const float *inp, int B, int C, int H, int W, int p,
                      patch_order order) {
    int w = NN_WHERE(out, inp);
    if (w == NN_HOST)
        patchify_forward_cpu(out, inp, B, C, H, W, p, order);
    else if (w == NN_DEVICE)
        NN_CUDA(patchify_forward_cuda(NN_CTX, out, inp, B, C, H, W, p, order));
}

void patchify_backward(float *dinp, const float *dout, int B, int C, int H, int W, int p,
                       patch_order order) {
    int w = NN_WHERE(dinp, dout);
    if (w == NN_HOST)
        patchify_backward_cpu(dinp, dout, B, C, H, W, p, order);
    else if (w == NN_DEVICE)
        NN_CUDA(patchify_backward_cuda(NN_CTX, dinp, dout, B, C, H, W, p, order));
}

void unpatchify_forward(float *out, const float *inp, int B, int C, int H, int W, int p,
                        patch_order order) {
    int w = NN_WHERE(out, inp);
    if (w == NN_HOST)
        unpatchify_forward_cpu(out, inp, B, C, H, W, p, order);
    else if (w == NN_DEVICE)
        NN_CUDA(unpatchify_forward_cuda(NN_CTX, out, inp, B, C, H, W, p, order));
}

void unpatchify_backward(float *dinp, const float *dout, int B, int C, int H, int W, int p,
                         patch_order order) {
    int w = NN_WHERE(dinp, dout);
    if (w == NN_HOST)
        unpatchify_backward_cpu(dinp, dout, B, C, H, W, p, order);
    else if (w == NN_DEVICE)
        NN_CUDA(unpatchify_backward_cuda(NN_CTX, dinp, dout, B, C, H, W, p, order));
}
