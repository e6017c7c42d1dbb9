// inception.h: Inception-v3 as the FID feature network: pytorch-fid's port
// of the 2015 TensorFlow graph (FIDInceptionA/C/E blocks: average pools that
// do not count padding, and a max pool in the last block's pool branch), the
// architecture behind ADM's and everyone's FID numbers.
//   input  uint8 (B, 3, H, W) -> x / 255 -> bilinear resize to 299x299
//          (F.interpolate, align_corners False, no antialias, as pytorch-fid)
//          -> 2x - 1
//   pool3  (B, 2048): global average pool after Mixed_7c (FID, precision/recall)
//   logits (B, 1008): pool3 @ fc.weight^T, WITHOUT fc.bias, as ADM's
//          evaluator (its softmax/weights only) for the Inception Score
//   spatial (B, 2023): Mixed_6d's branch1x1 output (17x17x192 after ReLU),
//          channels 0..6, flattened in (H, W, C) order: ADM's "mixed_6/conv"
//          sFID features.
// BasicConv2d = conv (no bias) + eval BatchNorm (eps 1e-3) + ReLU; the BN is
// folded into the conv's weight and a bias by inception_prepare (in double).
// Parameters carry pytorch-fid's state_dict names without num_batches_tracked
// (scripts/convert_inception.py writes them from pt_inception-2015-12-05).
// Weights: none ship with vel; inception_load reads the converted file,
// inception_random_weights makes the seeded weights of the parity test
// (tests/ref/fixture_inception.py has the same generator in Python).
// Not here: the 1-channel Fashion-MNIST case (replicate the gray channel
// before calling), training, the CUDA path.
#ifndef MODELS_INCEPTION_H
#define MODELS_INCEPTION_H

#include <stddef.h>
#include <stdint.h>

#include "nn/params.h"

#define INCEPTION_NET_NAME "inception-v3-fid"
#define INCEPTION_SIZE 299
#define INCEPTION_POOL_DIM 2048
#define INCEPTION_LOGITS 1008
#define INCEPTION_SPATIAL_CH 7
#define INCEPTION_SPATIAL_HW 17
#define INCEPTION_SPATIAL_DIM (INCEPTION_SPATIAL_CH * INCEPTION_SPATIAL_HW * INCEPTION_SPATIAL_HW)

typedef struct inception inception;

// Declares the parameters and allocates buffers for up to Bmax images per
// internal pass (forward takes any B; it loops in chunks of Bmax). Weights are
// zero until loaded. Returns 0, VEL_EINVAL or VEL_ENOMEM.
int inception_create(inception **out, int Bmax);
void inception_destroy(inception **m);
// The raw (unfolded) parameters, for loading, hashing and tests; borrowed.
param_table *inception_params(inception *m);
// Loads a converted safetensors file (exactly the table's tensors, F32/BF16/
// F16) and prepares. Returns 0 or a checkpoint code (nn/safetensors.h; the
// detail names the missing, extra or mismatched tensors).
int inception_load(inception *m, const char *path);
// The seeded random weights of the parity test, then prepare.
void inception_random_weights(inception *m, uint64_t seed);
// Folds BatchNorm into conv weights/biases; call after changing parameters.
void inception_prepare(inception *m);

// img uint8 (B, 3, H, W), H, W >= 1 (H*W <= 2^26). Outputs (each may be
// NULL): pool3 (B, 2048), logits (B, 1008), spatial (B, 2023). Returns 0,
// VEL_EINVAL or VEL_ENOMEM.
int inception_forward_u8(inception *m, const uint8_t *img, int B, int H, int W, float *pool3,
                         float *logits, float *spatial);

// The resize alone: out (C, OH, OW) from inp (C, H, W), PyTorch bilinear with
// align_corners False: source = (dst + 0.5) * in/out - 0.5, clamped at 0.
void inception_resize_bilinear(float *out, int OH, int OW, const float *inp, int C, int H, int W);

#endif
