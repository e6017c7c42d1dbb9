// activation.h: element-wise activations (ReLU, SiLU, GELU tanh
// approximation, LeakyReLU) and softmax over the last dim. CPU implementation
// in nn/cpu/activation.c (element-wise) and nn/cpu/softmax.c.
// Not here: SwiGLU (nn-transformer), fused norm+activation.
//
// Forward may run in place (out == inp). Backward ACCUMULATES (+=) into dinp
// (the _set forms below write it) and needs the forward INPUT (softmax: the
// forward OUTPUT), so an in-place forward is only possible when the caller
// keeps a copy. n = element count.
#ifndef NN_ACTIVATION_H
#define NN_ACTIVATION_H

#include <stdint.h>

void relu_forward(float *out, const float *inp, int64_t n);
void relu_backward(float *dinp, const float *dout, const float *inp, int64_t n);
// relu_backward with dinp SET (=) instead of accumulated: the same bits as
// zeroing dinp first (the device clears it, then the accumulating kernel).
void relu_backward_set(float *dinp, const float *dout, const float *inp, int64_t n);

// silu(x) = x * sigmoid(x) (the VAE's "swish").
void silu_forward(float *out, const float *inp, int64_t n);
void silu_backward(float *dinp, const float *dout, const float *inp, int64_t n);
// Like relu_backward_set, dinp = the SiLU gradient (overwritten; the values
// silu_backward adds to a zeroed dinp, up to the sign of a zero), for a
// caller whose dinp gets no other contribution (the VAE tape, where a group
// norm's output feeds only its SiLU): no zeroing pass, no read of dinp. CPU
// only (device pointers: NN_ENOCUDAOP).
void silu_backward_set(float *dinp, const float *dout, const float *inp, int64_t n);

// gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), PyTorch approximate='tanh'.
void gelu_forward(float *out, const float *inp, int64_t n);
void gelu_backward(float *dinp, const float *dout, const float *inp, int64_t n);

// leaky(x) = x if x > 0 else slope * x.
void leaky_relu_forward(float *out, const float *inp, int64_t n, float slope);
void leaky_relu_backward(float *dinp, const float *dout, const float *inp,
                         int64_t n, float slope);

// Softmax over the last dim of (N, C), max-subtracted. out may equal inp.
void softmax_forward(float *out, const float *inp, int N, int C);
// dinp (N,C) += out * (dout - sum_j dout_j out_j); out is the forward output.
void softmax_backward(float *dinp, const float *dout, const float *out, int N, int C);

#endif
