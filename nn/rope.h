// rope.h: 2D rotary position embedding as LightningDiT applies it to q and k
// (its VisionRotaryEmbeddingFast from EVA-02, with dim = HD/2, tokens of an
// H x W grid in row-major order).
//
// Exact formula (HD divisible by 4; Q = HD/4 frequency pairs per axis):
//   freq_m  = theta^(-2m / (HD/2)) = theta^(-4m/HD),  m = 0..Q-1, theta = 10000
//   token n = i*W + j (row i, column j); head dim d, pair p = d/2:
//     p <  Q:   angle = i * freq_p          (first half of the head: the row)
//     p >= Q:   angle = j * freq_(p-Q)      (second half: the column)
//   out[2p]   = x[2p] cos(angle) - x[2p+1] sin(angle)
//   out[2p+1] = x[2p+1] cos(angle) + x[2p] sin(angle)   (adjacent pairs)
// Positions are the exact integers i, j. (LightningDiT computes them as
// arange(L)/L*L in float32, which equals i up to one rounding; its grid is
// square, H = W = L; here H and W may differ.)
// The tables are (T, HD) with each value repeated for both members of a
// pair, like PyTorch's freqs_cos / freqs_sin buffers.
//
// Backward is the rotation by -angle and ACCUMULATES (+=) into dinp.
// Rows: q/k of token t, head h live at X[t*ld + h*HD] (ld = NH*HD for a
// plain (B,T,NH,HD) buffer, 3*NH*HD for the q or k part of a packed qkv).
// Fused with LightningDiT's q/k norm: qknorm_rope_forward / _backward below.
// Not here: 1D RoPE, NTK/interpolated frequencies.
#ifndef NN_ROPE_H
#define NN_ROPE_H

// cos_t, sin_t (H*W, HD) written (fixed buffers; computed in double).
void rope2d_tables(float *cos_t, float *sin_t, int H, int W, int HD, double theta);

// out, inp: B*T token rows (stride ld_out / ld_inp floats) of NH heads of HD.
// out may equal inp (then ld_out must equal ld_inp). T = H*W of the tables.
void rope_forward(float *out, const float *inp, const float *cos_t, const float *sin_t,
                  int B, int T, int NH, int HD, int ld_out, int ld_inp);
// dinp += R(-angle) dout. dinp must not alias dout.
void rope_backward(float *dinp, const float *dout, const float *cos_t, const float *sin_t,
                   int B, int T, int NH, int HD, int ld_dinp, int ld_dout);

// rope_backward with dinp SET (=) instead of accumulated (the same bits as
// zeroing dinp first).
void rope_backward_set(float *dinp, const float *dout, const float *cos_t, const float *sin_t,
                       int B, int T, int NH, int HD, int ld_dinp, int ld_dout);

// q/k RMSNorm then RoPE, in place on the q and k parts of packed qkv rows
// (B*T rows of 3*D floats, D = NH*HD: q, k, v; v untouched):
//   raw = part (copied to qraw / kraw, (B*T, D)),
//   each head's HD floats: y = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps)
//   (rstd_q / rstd_k, (B*T*NH)), w = wq / wk (HD), then part = RoPE(y).
// The same bits as, per part: rows_copy_forward into raw, rmsnorm_forward
// over the B*T*NH head rows, rope_forward into the part (one pass over the
// data instead of three, one parallel region for both parts).
// scratch: B*T*D floats used on the GPU (where the op is that sequence of
// ops); may be NULL on the host. HD <= 256 (ATTN_HD_MAX, the CPU's row
// buffer; LightningDiT's configs are validated against it).
void qknorm_rope_forward(float *qkv, float *qraw, float *kraw, float *rstd_q, float *rstd_k,
                         const float *wq, const float *wk, const float *cos_t,
                         const float *sin_t, float *scratch, int B, int T, int NH, int HD,
                         float eps);
// Backward: the q and k parts of dqkv (gradients with respect to the roped
// parts) are REPLACED by the gradients with respect to the raw parts; dwq,
// dwk (HD, or NULL) ACCUMULATE the weight gradients. dx has the bits of
// rope_backward_set + rmsnorm_backward_set; the weight-gradient sums run over
// 16 fixed row chunks added in order (thread-count independent; the order
// differs from rmsnorm_backward's single pass). scratch: 2*B*T*D floats on
// the GPU, may be NULL on the host.
void qknorm_rope_backward(float *dqkv, float *dwq, float *dwk, const float *qraw,
                          const float *kraw, const float *rstd_q, const float *rstd_k,
                          const float *wq, const float *wk, const float *cos_t,
                          const float *sin_t, float *scratch, int B, int T, int NH, int HD);

#endif
