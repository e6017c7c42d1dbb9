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
// Not here: 1D RoPE, NTK/interpolated frequencies, the q/k norm.
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

#endif
