// modulate.h: the adaLN pieces of a DiT block, broadcast per batch element
// over tokens:
//   modulate:      out = x * (1 + scale[b]) + shift[b]
//   gated residual out = x + gate[b] * y
// shift, scale, gate are rows of C floats, one per batch element, with batch
// stride ld: the chunks of the adaLN Linear output (B, 6C) are passed as
// pointers into it with ld = 6C (ld = C for a plain (B, C) array).
// Backward ACCUMULATES (+=) into every gradient; NULL = not needed.
// Reductions over tokens run per batch element in token order, so results
// do not depend on the thread count. Not here: the norm, the adaLN Linear.
#ifndef NN_MODULATE_H
#define NN_MODULATE_H

// out, x (B,T,C); shift, scale (B rows of C, stride ld). out may equal x.
void modulate_forward(float *out, const float *x, const float *shift, const float *scale,
                      int B, int T, int C, int ld);
// dx (B,T,C) += dout*(1+scale); dshift[b] += sum_t dout; dscale[b] += sum_t dout*x.
// x is the forward input. dx must not alias dout.
void modulate_backward(float *dx, float *dshift, float *dscale, const float *dout,
                       const float *x, const float *scale, int B, int T, int C, int ld);

// out, x, y (B,T,C); gate (B rows of C, stride ld). out may equal x.
void gate_residual_forward(float *out, const float *x, const float *y, const float *gate,
                           int B, int T, int C, int ld);
// dx += dout; dy += gate*dout; dgate[b] += sum_t dout*y.
// dx may be NULL (a caller that keeps the residual gradient in dout itself).
void gate_residual_backward(float *dx, float *dy, float *dgate, const float *dout,
                            const float *y, const float *gate, int B, int T, int C, int ld);

// The same with dx (and dy) SET (=) instead of accumulated, for a caller
// whose buffers hold nothing yet (saves zeroing them; the same bits as
// zeroing then calling the accumulating op). dshift, dscale, dgate
// still accumulate.
void modulate_backward_set(float *dx, float *dshift, float *dscale, const float *dout,
                           const float *x, const float *scale, int B, int T, int C, int ld);
void gate_residual_backward_set(float *dx, float *dy, float *dgate, const float *dout,
                                const float *y, const float *gate, int B, int T, int C, int ld);

#endif
