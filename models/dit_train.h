// dit_train.h: the training math of LightningDiT as class-conditional flow
// matching (docs/FORMULAS.md section 4; hustvl/LightningDiT's transport with
// path "Linear", prediction "velocity"):
//   x1 = normalised data latent, x0 ~ N(0, I), t ~ U[0,1) or sigmoid(N(m, s)),
//   x_t = t*x1 + (1-t)*x0, target u = x1 - x0, v = model(x_t, t, y'),
//   y' = null class (id num_classes) with probability label_drop,
//   loss = mean((v - u)^2) + cos_weight * mean over (b, h, w) of (1 - cos(v, u))
//          with the cosine over channels (LightningDiT's use_cosine_loss).
// Training presets (architecture only: depth, width, heads, patch); the data
// shape and class count come from the latent cache.
//
// Randomness: every draw depends only on (seed, stream, position), position =
// the sample's place in the global stream of training samples, pos = step *
// global_batch + rank * local_batch + i. So a resumed run continues exactly,
// and world size W on batch B/W draws what world size 1 draws on batch B.
//
// Not here: reading the cache and normalising (store/), the optimizer, EMA,
// gradient all-reduce (the train stage calls nn/optim.h, nn/ema.h, dist/).
#ifndef MODELS_DIT_TRAIN_H
#define MODELS_DIT_TRAIN_H

#include <stdint.h>

#include "models/lightningdit.h"

// Philox streams (core/philox.h) of the training draws.
enum {
    DIT_STREAM_LATENT = 11,  // eps of z = mu + sigma*eps (numel per sample)
    DIT_STREAM_NOISE = 12,   // x0 (numel per sample)
    DIT_STREAM_TIME = 13,    // t (1 normal or uniform per sample)
    DIT_STREAM_DROP = 14,    // label dropout (1 uniform per sample)
    DIT_STREAM_SAMPLE = 15,  // noise of the preview samples (dit_euler_sample)
};

typedef enum { DIT_T_UNIFORM = 0, DIT_T_LOGIT_NORMAL = 1 } dit_time_mode;
const char *dit_time_name(dit_time_mode m);          // "uniform", "logit-normal"
int dit_time_parse(const char *s, dit_time_mode *m); // 0 or VEL_EINVAL

typedef struct {
    dit_time_mode time;
    float ln_mean, ln_std;   // logit-normal location and scale (0, 1)
    float label_drop;        // probability of the null class (0.1)
    float cos_weight;        // weight of the cosine loss (1: LightningDiT; 0: MSE only)
} dit_fm_cfg;

dit_fm_cfg dit_fm_defaults(void);   // logit-normal(0,1), drop 0.1, cos 1

// Architecture presets: "tiny" (CPU demo), "S", "B" (patch 1), "B/1", "B/2",
// "L/2", "XL/1", "XL/2" (reference LightningDiT sizes; at 16x16x32 latents and
// 1000 classes their counts are those of ldit_param_count, e.g. B/1
// 130,359,584). Sets depth, hidden, heads, patch of *cfg; leaves the rest.
// Returns 0 or LDIT_ECONFIG (unknown name).
int dit_preset(const char *name, ldit_config *cfg);
// Preset names, NULL-terminated (for --help and --list-presets).
extern const char *const DIT_PRESET_NAMES[];

// Per-step buffers for batches up to Bmax of the model's shape. The draws,
// x_t and u are made on the host; the velocity, its gradient and the loss
// (nn/flow_loss.h) live where the model does (m->dev when the trainer is
// created: call ldit_to_device first). On the GPU, x_t and u go up once per
// step and only the two loss values come back (v and dv stay on the device).
typedef struct {
    ldit *m;                   // borrowed
    dit_fm_cfg cfg;
    int Bmax;
    int64_t numel;             // C*S*S per sample
    float *x0, *xt, *u, *t;    // owned, host (Bmax*numel or Bmax)
    uint8_t *drop;             // owned, host (Bmax)
    float *v, *dv;             // owned, where the model lives (Bmax*numel)
    float *mxt, *mu;           // x_t and u where the model lives (= xt, u on the CPU)
    double *vals;              // (2) mse, cos where the model lives (nn/flow_loss.h)
} dit_trainer;

// 0, VEL_EINVAL (Bmax > m->Bmax or < 1, bad cfg), VEL_ENOMEM or a device
// code (nn/device.h) when the GPU buffers cannot be had.
int dit_trainer_create(dit_trainer **out, ldit *m, const dit_fm_cfg *cfg, int Bmax);
void dit_trainer_destroy(dit_trainer **tr);

// z (B, numel) = mu + sigma * eps, eps from DIT_STREAM_LATENT at positions
// pos0 .. pos0+B-1 (numel draws each). z may alias mu.
void dit_draw_latents(float *z, const float *mu, const float *sigma, int64_t numel, int B,
                      uint64_t seed, uint64_t pos0);

// Draws x0, t and the dropout flags of positions pos0 .. pos0+B-1 into tr.
void dit_draw_step(dit_trainer *tr, int B, uint64_t seed, uint64_t pos0);

typedef struct { double loss, mse, cos; } dit_losses;

// With the draws of the last dit_draw_step: forward, loss, and backward
// (parameter gradients +=; zero them first). x1 (B, numel) normalised data,
// y (B) labels in [0, num_classes), both host arrays. Returns 0 or an ldit
// code (nothing accumulated then), or a device code when a copy to or from
// the GPU fails. On the GPU the loss values are read after the backward is
// queued (the call waits for it); other device failures are the op API's
// sticky error (nn_sync).
int dit_loss_backward(dit_trainer *tr, const float *x1, const int32_t *y, int B, dit_losses *out);
// The same loss without backward (tests, evaluation).
int dit_loss_forward(dit_trainer *tr, const float *x1, const int32_t *y, int B, dit_losses *out);

// models/sampler.h's smp_velocity_fn over an ldit: every row of the call at
// the same t. ctx is a dit_vel_ctx whose t holds room for the largest n the
// sampler passes (2 x batch under guidance). The model may be on the GPU
// (ldit_to_device): x and v stay host arrays, staged by ldit_forward, and a
// device failure is returned (nn_sync) instead of a wrong v.
typedef struct { ldit *m; float *t; } dit_vel_ctx;
int dit_velocity(void *ctx, float *v, const float *x, double t, const int32_t *y, int64_t n);

// Euler sampling of the flow from t=0 (noise) to t=1 on linspace(0, 1,
// steps+1), no guidance (models/sampler.h's smp_integrate): x (B, numel) receives the samples (normalised
// latents). Noise: DIT_STREAM_SAMPLE of seed at positions 0..B-1. Uses the
// model's activation arena (so not between a forward and its backward).
int dit_euler_sample(ldit *m, float *x, const int32_t *y, int B, int steps, uint64_t seed);

#endif
