// toy_mlp.h: the 2D toy's networks (docs/FORMULAS.md section 2) and their training
// steps, fp32 on the CPU:
//   - toy_mlp: `depth` hidden layers Linear+ReLU of `width`, then an output
//     Linear (paper config depth 8, width 512); PyTorch default init;
//   - toy_tok: tokenizer, encoder 2 -> (mu 2, logvar 2), decoder 2 -> 2, with
//     the KL baseline or the VE regulariser (SPEC section 1);
//   - toy_flow: flow model (z_t 2, time features of t) -> v 2, flow-matching
//     loss; t enters raw (one input) or as fixed Fourier features;
//   - checkpoints as safetensors with the architecture in __metadata__.
// The loss terms are nn/loss.h's (MSE, KL, VE, magnitude regulariser,
// reparameterisation); training uses nn/optim.h (Adam) with nn/schedule.h's
// LR_INV_SQRT (the AutoGuidance schedule lr_ref / sqrt(max(it/512, 1))).
// Conventions as in nn/: backward accumulates into the parameter table's
// grads (callers zero them; the *_step functions do it themselves).
// Not here: data (data/toy_gmm.h), the sampler (models/toy_sampler.h).
#ifndef MODELS_TOY_MLP_H
#define MODELS_TOY_MLP_H

#include <stdint.h>

#include "nn/arena.h"
#include "nn/loss.h"
#include "core/mt19937.h"
#include "nn/params.h"

enum {
    TOY_EMODEL = -501,   // checkpoint holds another model or a bad architecture
    TOY_EDIM = -502,     // data of the wrong dimension
    TOY_ECONFIG = -503,  // invalid configuration value
};
const char *toy_strerror(int err);   // also knows the core/base.h and checkpoint codes

#define TOY_MAX_LAYERS 33

typedef struct {
    int in, out, depth, width, max_batch;
    int pidx[TOY_MAX_LAYERS];     // index of each layer's weight in the table (bias = +1)
    float *W[TOY_MAX_LAYERS], *b[TOY_MAX_LAYERS];
    float *dW[TOY_MAX_LAYERS], *db[TOY_MAX_LAYERS];
    // activations of the latest forward (carved from the owner's arena)
    float *x0;                    // (max_batch, in) copy of the input
    float *pre[TOY_MAX_LAYERS];   // (max_batch, width) pre-activations, hidden layers
    float *post[TOY_MAX_LAYERS];  // (max_batch, width) ReLU outputs
    float *g0, *g1;               // (max_batch, max(width, in)) backward scratch
    int last_batch;
} toy_mlp;

// Two-pass setup: declare into a table (before param_table_commit), then
// bind pointers after commit; carve activations from an arena (measure and
// commit passes, see nn/arena.h).
void toy_mlp_declare(toy_mlp *m, param_table *pt, const char *prefix, int in, int out,
                     int depth, int width, int max_batch);
void toy_mlp_bind(toy_mlp *m, const param_table *pt);
void toy_mlp_carve(toy_mlp *m, arena *a);
// PyTorch's nn.Linear default: W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
void toy_mlp_init(toy_mlp *m, mt19937 *rng);
// out (B, out) from in (B, in); B <= max_batch. Keeps activations for backward.
void toy_mlp_forward(toy_mlp *m, float *out, const float *in, int B);
// Uses the latest forward. Accumulates parameter grads; din (B, in) += if not NULL.
void toy_mlp_backward(toy_mlp *m, float *din, const float *dout, int B);

// The AutoGuidance schedule used by both toy trainers: lr_ref / sqrt(max(it /
// 512, 1)) (nn/schedule.h LR_INV_SQRT, t_ref 512, no warm-up).
#define TOY_LR_T_REF 512

// ---- tokenizer ----
typedef enum { TOY_REG_KL = 0, TOY_REG_VE = 1 } toy_reg;
typedef struct {
    toy_reg reg;
    float kl_weight;             // KL arm: beta
    float lambda_ve, lambda_reg, tau, delta;   // VE arm
    ve_kind ve_form;             // nn/loss.h; VE_INV_VAR (iii) default
    int reg_global;              // 0: element-wise (a), 1: global RMS (b)
} toy_tok_cfg;

typedef struct { double total, rec, kl, ve, reg; } toy_tok_losses;

typedef struct {
    int depth, width, max_batch;
    param_table pt;
    toy_mlp enc, dec;
    arena act;
    // step buffers (max_batch rows)
    float *h, *mu, *lv, *sigma, *z, *xr, *dxr, *dz, *dmu, *dlv, *dh;
} toy_tok;

int toy_tok_create(toy_tok **out, int depth, int width, int max_batch);
void toy_tok_destroy(toy_tok **t);
void toy_tok_init(toy_tok *t, uint32_t seed);
// Encoder moments: mu, logvar (B, 2) each; logvar already clamped to [-30, 20].
void toy_tok_encode(toy_tok *t, float *mu, float *logvar, const float *x, int B);
void toy_tok_decode(toy_tok *t, float *x, const float *z, int B);
// One training step on x (B, 2) with eps (B, 2): zeroes grads, forward,
// backward (grads left in t->pt.grads). Returns the loss terms.
toy_tok_losses toy_tok_loss_backward(toy_tok *t, const toy_tok_cfg *cfg, const float *x,
                                     const float *eps, int B);
// The loss terms only (no gradients), for tests and finite differences.
toy_tok_losses toy_tok_loss(toy_tok *t, const toy_tok_cfg *cfg, const float *x,
                            const float *eps, int B);

// ---- flow model ----
// Time input. TOY_TIME_RAW: t itself (one input, the original model).
// TOY_TIME_FOURIER: 2K fixed features [sin(w_k t), cos(w_k t)], k = 0..K-1,
// w_k = 1000 * 10000^(-k/K) (the DDPM / transformer sinusoidal embedding of
// 1000 t: periods from 2pi/1000 up to ~2pi/0.18 for K = 16), no raw t.
// The MLP's input is [z_t (2), time features] either way.
typedef enum { TOY_TIME_RAW = 0, TOY_TIME_FOURIER = 1 } toy_time_embed;
#define TOY_FOURIER_DEFAULT 16
#define TOY_FOURIER_MAX 256
const char *toy_time_embed_name(toy_time_embed te);   // "raw", "fourier"
int toy_time_embed_parse(const char *name, toy_time_embed *out);   // 0 or TOY_ECONFIG
// Writes the time features of t into feat (toy_time_features_dim floats).
int toy_time_features_dim(toy_time_embed te, int nfreq);
void toy_time_features(float *feat, float t, toy_time_embed te, int nfreq);

typedef struct {
    int depth, width, max_batch;
    toy_time_embed time_embed;
    int nfreq, in_dim;           // Fourier frequencies K (0 for raw); MLP input 2 + time dim
    param_table pt;
    toy_mlp net;
    arena act;
    float *inp, *v, *target, *dv;
} toy_flow;

// nfreq is used by TOY_TIME_FOURIER only (1..TOY_FOURIER_MAX).
int toy_flow_create(toy_flow **out, int depth, int width, int max_batch, toy_time_embed te,
                    int nfreq);
void toy_flow_destroy(toy_flow **f);
void toy_flow_init(toy_flow *f, uint32_t seed);
// v (B, 2) = model(z_t (B, 2), t (B)); B <= max_batch.
void toy_flow_velocity(toy_flow *f, float *v, const float *zt, const float *t, int B);
// Flow matching on data z1 with noise x0 and times t: z_t = t z1 + (1-t) x0,
// target z1 - x0, loss mean((v - target)^2). Zeroes grads, accumulates them.
double toy_flow_loss_backward(toy_flow *f, const float *z1, const float *x0, const float *t, int B);
double toy_flow_loss(toy_flow *f, const float *z1, const float *x0, const float *t, int B);

// ---- checkpoints (safetensors; __metadata__ model, depth, width + extras) ----
// Flow checkpoints also carry "time_embed" (raw | fourier) and "time_freqs"
// (K); a checkpoint without them is a raw-time model (written before the
// option existed). toy_flow_save writes them.
typedef struct { const char *key, *value; } toy_kv;
int toy_save(const char *path, const param_table *pt, const char *model, int depth, int width,
             const toy_kv *extra, int nextra, char *err, int errlen);
// Reads the architecture of a checkpoint and checks its model name.
int toy_ckpt_arch(const char *path, const char *want_model, int *depth, int *width,
                  char *err, int errlen);
int toy_tok_load(toy_tok **out, const char *path, int max_batch, char *err, int errlen);
int toy_flow_save(const char *path, const toy_flow *f, const toy_kv *extra, int nextra, char *err,
                  int errlen);
int toy_flow_load(toy_flow **out, const char *path, int max_batch, char *err, int errlen);
// A metadata value of a checkpoint (copied into out); VEL_ENOTFOUND if absent.
int toy_ckpt_meta(const char *path, const char *key, char *out, int outlen);
// FNV-1a 64 of a file's bytes as 16 hex digits (the store's tokenizer hash).
int toy_file_hash(const char *path, char out[17]);

#endif
