// norm.h: group norm (NCHW), layer norm and RMS norm (over the last dim).
// CPU implementation in nn/cpu/norm.c. Statistics are computed in double and
// saved (as float) in caller-provided buffers for the backward pass.
// Not here: batch norm, per-head q/k norm wiring (callers use rmsnorm with
// N = rows, C = head dim).
//
// Backward ACCUMULATES (+=) into dinp, dweight and dbias; NULL = not needed.
// weight / bias may be NULL in forward (meaning 1 / 0); pass the same weight
// to backward. Reductions run in a fixed order: 1 and 2 OpenMP threads give
// bit-identical results.
#ifndef NN_NORM_H
#define NN_NORM_H

// out, inp (B, C, HW) with HW = H*W; weight, bias (C) or NULL; mean, rstd (B, G)
// written. C must be divisible by G. PyTorch GroupNorm: biased variance.
void groupnorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias,
                       int B, int C, int HW, int G, float eps);
void groupnorm_backward(float *dinp, float *dweight, float *dbias,
                        const float *dout, const float *inp, const float *weight,
                        const float *mean, const float *rstd,
                        int B, int C, int HW, int G);

// out, inp (N, C); weight, bias (C) or NULL; mean, rstd (N) written.
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, int N, int C, float eps);
void layernorm_backward(float *dinp, float *dweight, float *dbias,
                        const float *dout, const float *inp, const float *weight,
                        const float *mean, const float *rstd, int N, int C);

// out = inp * rstd * weight, rstd = 1/sqrt(mean(inp^2) + eps) per row.
// out, inp (N, C); weight (C) or NULL; rstd (N) written.
void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight,
                     int N, int C, float eps);
void rmsnorm_backward(float *dinp, float *dweight, const float *dout,
                      const float *inp, const float *weight, const float *rstd,
                      int N, int C);

// rmsnorm_backward with dinp SET (=) instead of accumulated (the same bits
// as zeroing dinp first); dweight still accumulates.
void rmsnorm_backward_set(float *dinp, float *dweight, const float *dout,
                          const float *inp, const float *weight, const float *rstd,
                          int N, int C);

#endif
