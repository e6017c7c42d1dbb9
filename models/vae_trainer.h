// vae_trainer.h: one training run of the VAE tokenizer (models/vae.h): the
// model and its Adam (beta 0.5, 0.9), optionally LDM's PatchGAN hinge
// discriminator (models/vae_gan.h) with its own Adam, one step that updates
// them from a batch of images, and checkpoints that resume bit-exactly.
// Determinism: the noise of step s is Philox (seed, stream
// VAE_TRAINER_EPS_STREAM) at offset s * (elements of one step's noise), so
// it depends only on (seed, s); the batch is the caller's (data/batcher.h).
// Not here: data, logging, reports (stages/train/image_vae.c).
#ifndef MODELS_VAE_TRAINER_H
#define MODELS_VAE_TRAINER_H

#include <stddef.h>
#include <stdint.h>

#include "models/patchgan.h"
#include "models/vae.h"
#include "models/vae_gan.h"
#include "nn/optim.h"
#include "nn/safetensors.h"

#define VAE_TRAINER_EPS_STREAM 2

typedef struct {
    vae_loss_cfg loss;
    double lr;
    double disc_weight;          // 0: no discriminator
    double disc_lr;              // 0: = lr
    int disc_start;              // first step with the GAN losses
    int disc_ndf, disc_layers;
    uint64_t seed;               // init and noise
} vae_trainer_cfg;

typedef struct {
    vae *m;
    optim *opt;
    patchgan *disc;              // NULL without the GAN
    optim *dopt;
    vae_gan *vg;
    vae_trainer_cfg cfg;
    int B;
    int64_t nz;                  // noise elements per step
    float *eps;                  // (B, z, zs, zs)
} vae_trainer;

// Builds the model for batches of B (and the discriminator when
// cfg->disc_weight > 0), parameters initialised from cfg->seed. 0 or
// VEL_ENOMEM / VEL_EINVAL.
int vae_trainer_create(vae_trainer **out, const vae_config *vc, int B, const vae_trainer_cfg *cfg);
void vae_trainer_destroy(vae_trainer **t);   // NULL-safe

// Step s on x (B, in_ch, R, R): generator update (with the GAN losses from
// cfg.disc_start on, then a discriminator update). lp: the loss parts (its
// total includes d_weight * g_loss with the GAN); gp and *gan_now: the GAN
// step's values and whether it ran. VEL_ERANGE (no update made) when the
// loss is not finite.
int vae_trainer_step(vae_trainer *t, const float *x, int64_t s, vae_loss_parts *lp, vae_gan_parts *gp,
                     int *gan_now);

// Checkpoints PREFIX.safetensors + PREFIX.optim.safetensors (nn/checkpoint.h)
// of the model at `prefix` and of the discriminator at `dprefix`, at step
// `step`; meta goes into the model's weights file. On failure the error
// detail (core/error.h) is a sentence naming the file ("saving PREFIX: ...").
int vae_trainer_save(const vae_trainer *t, const char *prefix, const char *dprefix, int64_t step,
                     const st_kv *meta, int nmeta);
// Loads what vae_trainer_save wrote; *step = the steps done. VEL_EINVAL when
// the checkpoint's seed is not cfg.seed, VEL_EFORMAT when the
// discriminator's step differs; the detail says what failed ("--resume: ...").
int vae_trainer_load(vae_trainer *t, const char *prefix, const char *dprefix, int64_t *step);

// FLOPs (2 per MAC) of one step without and with the GAN part.
double vae_trainer_step_flops(const vae_trainer *t, int gan);

#endif
