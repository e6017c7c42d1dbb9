// swiglu.h: the gating part of LightningDiT's SwiGLU feed-forward
// (DINOv2's SwiGLUFFN: x12 = w12(x); x1, x2 = chunk(x12, 2); w3(silu(x1)*x2)).
// The two Linears come from nn/linear.h; this op is only
//   h (N, H) = silu(x12[:, :H]) .* x12[:, H:]      x12 (N, 2H)
// with silu(a) = a * sigmoid(a). LightningDiT's hidden H = int(2/3 * 4D).
// Backward ACCUMULATES (+=) into dx12 and needs the forward input x12.
#ifndef NN_SWIGLU_H
#define NN_SWIGLU_H

void swiglu_forward(float *h, const float *x12, int N, int H);
void swiglu_backward(float *dx12, const float *dh, const float *x12, int N, int H);

// swiglu_backward with dx12 SET (=) instead of accumulated (the same bits
// as zeroing dx12 first).
void swiglu_backward_set(float *dx12, const float *dh, const float *x12, int N, int H);

#endif
