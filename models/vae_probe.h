// vae_probe.h: the latent robustness probe of a VAE tokenizer (issue 5):
// how gracefully the decoder handles latents off the encoder's means,
// decode(mu + s * eps * std_c) with eps ~ N(0, I) and std_c the spread of mu
// in channel c over the evaluated images. This file makes the latents and
// the per-channel statistics; scoring the decodes is metrics/vae_recon.h.
// Used by `eval --model vae` (every --scales value) and by `train --model
// vae --dataset photos` (its held-out report), each with its own Philox
// stream.
#ifndef MODELS_VAE_PROBE_H
#define MODELS_VAE_PROBE_H

#include <stdint.h>

// std_c (zc): population standard deviation of mu (n, zc, hw) per channel,
// over every image and position (sums in double).
void vae_latent_std(const float *mu, int64_t n, int zc, int hw, double *std_c);

// sigma_c (zc): mean over images and positions of vae_sigma(logvar) per
// channel, logvar (n, zc, hw).
void vae_latent_mean_sigma(const float *logvar, int64_t n, int zc, int hw, double *sigma_c);

// z (B, zc, hw) for images i0 .. i0+B-1 of a set whose means are mu
// (B, zc, hw, the batch's own rows): z = mu + (float)(s * std_c[c]) * eps,
// eps Philox normals of (seed, stream) at offset i0 * zc * hw, so an image's
// noise depends only on its position in the set, not on the batching.
void vae_probe_latents(float *z, const float *mu, int B, int zc, int hw, double s, const double *std_c,
                       uint64_t seed, uint32_t stream, int64_t i0);

#endif
