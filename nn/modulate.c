// modulate.c: the modulate ops of nn/modulate.h, dispatched by where their pointers live
// (nn/backend.h): host -> nn/cpu/modulate.c, device -> nn/cuda/transformer.cu.
#include "nn/modulate.h"

#include "nn/backend.h"
#include "nn/cpu/ops.h"
#include "nn/zero_first.h"
#ifdef VEL_HAVE_CUDA
#include "nn/cuda/ops.h"
#endif

void modulate_forward(float *out, const float *x, const float *shift, const float *scale, int B,
                      int T, int C, int ld) {
    int w = NN_WHERE(out, x, shift, scale);
    if (w == NN_HOST)
        modulate_forward_cpu(out, x, shift, scale, B, T, C, ld);
    else if (w == NN_DEVICE)
        NN_CUDA(modulate_forward_cuda(NN_CTX, out, x, shift, scale, B, T, C, ld));
}

void modulate_backward(float *dx, float *dshift, float *dscale, const float *dout, const float *x,
                       const float *scale, int B, int T, int C, int ld) {
    int w = NN_WHERE(dx, dshift, dscale, dout, x, scale);
    if (w == NN_HOST)
        modulate_backward_cpu(dx, dshift, dscale, dout, x, scale, B, T, C, ld);
    else if (w == NN_DEVICE)
        NN_CUDA(modulate_backward_cuda(NN_CTX, dx, dshift, dscale, dout, x, scale, B, T, C, ld));
}

void gate_residual_forward(float *out, const float *x, const float *y, const float *gate, int B,
                           int T, int C, int ld) {
    int w = NN_WHERE(out, x, y, gate);
    if (w == NN_HOST)
        gate_residual_forward_cpu(out, x, y, gate, B, T, C, ld);
    else if (w == NN_DEVICE)
        NN_CUDA(gate_residual_forward_cuda(NN_CTX, out, x, y, gate, B, T, C, ld));
}

void gate_residual_backward(float *dx, float *dy, float *dgate, const float *dout, const float *y,
                            const float *gate, int B, int T, int C, int ld) {
    int w = NN_WHERE(dx, dy, dgate, dout, y, gate);
    if (w == NN_HOST)
        gate_residual_backward_cpu(dx, dy, dgate, dout, y, gate, B, T, C, ld);
    else if (w == NN_DEVICE)
        NN_CUDA(gate_residual_backward_cuda(NN_CTX, dx, dy, dgate, dout, y, gate, B, T, C, ld));
}

void modulate_backward_set(float *dx, float *dshift, float *dscale, const float *dout,
                           const float *x, const float *scale, int B, int T, int C, int ld) {
    int w = NN_WHERE(dx, dshift, dscale, dout, x, scale);
    if (w == NN_HOST)
        modulate_backward_set_cpu(dx, dshift, dscale, dout, x, scale, B, T, C, ld);
    else if (w == NN_DEVICE && !(dx && nn_zero_first(__func__, dx, (size_t)B * T, C, C)))
        NN_CUDA(modulate_backward_cuda(NN_CTX, dx, dshift, dscale, dout, x, scale, B, T, C, ld));
}

void gate_residual_backward_set(float *dx, float *dy, float *dgate, const float *dout,
                                const float *y, const float *gate, int B, int T, int C, int ld) {
    int w = NN_WHERE(dx, dy, dgate, dout, y, gate);
    if (w == NN_HOST)
        gate_residual_backward_set_cpu(dx, dy, dgate, dout, y, gate, B, T, C, ld);
    else if (w == NN_DEVICE && !(dx && nn_zero_first(__func__, dx, (size_t)B * T, C, C)) &&
             !(dy && nn_zero_first(__func__, dy, (size_t)B * T, C, C)))
        NN_CUDA(gate_residual_backward_cuda(NN_CTX, dx, dy, dgate, dout, y, gate, B, T, C, ld));
}
