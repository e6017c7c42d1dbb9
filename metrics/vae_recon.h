// vae_recon.h: a VAE tokenizer's reconstruction quality over a set of
// images, in batches of the model's Bmax: PSNR and SSIM (metrics/image.h)
// of decode(mu) against each original, and of the robustness probe's
// decode(mu + s * eps * std_c) (models/vae_probe.h). Shared by `eval --model
// vae` and the held-out report of `train --model vae --dataset photos`.
// A callback sees every batch's reconstructions (e.g. for classifier
// features or a picture of the first batch) before the next batch
// overwrites them.
#ifndef METRICS_VAE_RECON_H
#define METRICS_VAE_RECON_H

#include <stdint.h>

#include "models/vae.h"

typedef struct {
    double psnr, ssim;   // sums over the images (divide by n for the means)
    int64_t n;
} vae_recon_sums;

// orig, rec (B, C, R, R): images i0 .. i0+B-1 and their reconstructions.
typedef void vae_recon_fn(void *ctx, const float *orig, const float *rec, int64_t i0, int B);

// imgs (n, in_ch, R, R): encode, decode(mu), score. mu and logvar (n, z,
// zs, zs) receive the moments when not NULL; fn (NULL: none) sees each batch.
// Adds into *sums (caller zeroes).
void vae_recon_eval(vae *m, const float *imgs, int64_t n, float *mu, float *logvar, vae_recon_fn *fn,
                    void *ctx, vae_recon_sums *sums);

// The probe at scale s: decode(vae_probe_latents(mu, s, std_c, seed,
// stream)) of every image, scored against imgs. mu (n, z, zs, zs) from
// vae_recon_eval; scratch z (Bmax, z, zs, zs). Adds into *sums.
void vae_probe_eval(vae *m, const float *imgs, const float *mu, int64_t n, double s, const double *std_c,
                    uint64_t seed, uint32_t stream, float *z, vae_recon_fn *fn, void *ctx,
                    vae_recon_sums *sums);

#endif
