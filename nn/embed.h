// embed.h: DiT conditioning and position embeddings.
// - timestep_embedding: sinusoidal features of t (DiT's TimestepEmbedder,
//   t in [0, 1] used as is, no x1000): with half = dim/2,
//   freq_k = exp(-ln(max_period) k / half), out = [cos(t freq), sin(t freq)]
//   (cos half first). dim 256, max_period 10000 in LightningDiT. No backward
//   (t is not learned).
// - label embedding: rows of a (num_classes + 1, D) table; row num_classes is
//   the null class used for classifier-free guidance. Label dropout is the
//   caller's decision, passed as an explicit mask so runs are deterministic.
// - pos_embed_2d: the fixed 2D sin-cos table of MAE/DiT
//   (get_2d_sincos_pos_embed): for token n = i*W + j, dims [0, D/2) encode the
//   column j and [D/2, D) the row i (MAE's meshgrid puts w first); each half
//   is [sin(pos omega_k), cos(pos omega_k)], omega_k = 10000^(-k/(D/4)),
//   k < D/4.
// Backward ACCUMULATES (+=) into dtable. Not here: the timestep MLP (Linears
// from nn/linear.h), patch embedding.
#ifndef NN_EMBED_H
#define NN_EMBED_H

#include <stdint.h>

// out (B, dim) written; t (B). dim even. Computed in double, rounded once.
void timestep_embedding(float *out, const float *t, int B, int dim, double max_period);

// out (B, D) = table[row_b], row_b = num_classes if drop && drop[b], else y[b].
// table (num_classes + 1, D); y (B) may also hold num_classes (the null id).
// Returns 0, or VEL_ERANGE (nothing written) if some used y[b] is outside
// [0, num_classes]: labels come from data files. On the device (y, drop in
// device memory) the range is not checked (reading the labels back would
// stall the stream): check them on the host first; an out-of-range row is
// written as zeros there.
int label_embed_forward(float *out, const float *table, const int32_t *y,
                        const uint8_t *drop, int B, int D, int num_classes);
// dtable[row_b] += dout[b], rows added in batch order (deterministic).
// Same labels as the forward (already validated there).
void label_embed_backward(float *dtable, const float *dout, const int32_t *y,
                          const uint8_t *drop, int B, int D, int num_classes);

// out (H*W, D) written; D divisible by 4. Computed in double, rounded once.
void pos_embed_2d(float *out, int H, int W, int D);

#endif
