// toy_mlp.h: the 2D toy's networks (SPEC.md section 2) and their training
// steps, fp32 on the CPU:
//   - toy_mlp: `depth` hidden layers Linear+ReLU of `width`, then an output
//     Linear (paper config depth 8, width 512); PyTorch default init;
//   - toy_tok: tokenizer, encoder 2 -> (mu 2, logvar 2), decoder 2 -> 2, with
//     the KL baseline or the VE regulariser (SPEC section 1);
//   - toy_flow: flow model (z_t 2, t) -> v 2, flow-matching loss;
//   - Adam with the AutoGuidance schedule lr_ref / sqrt(max(it/512, 1));
//   - checkpoints as safetensors with the architecture in __metadata__.
// Conventions as in nn/: backward accumulates into the parameter table's
// grads (callers zero them; the *_step functions do it themselves).
// Not here: data (data/toy_gmm.h), the sampler (models/toy_sampler.h).
//
// Local workarounds (documented in the report): the loss terms here are the
// 2-D forms of nn/loss.h's and the optimizer is a local Adam, because
// nn/cpu/loss*.c and nn/optim.h were not built yet when this was written.
#ifndef MODELS_TOY_MLP_H
#define MODELS_TOY_MLP_H

#include <stdint.h>

#include "nn/arena.h"
#include "nn/mt19937.h"
#include "nn/params.h"

enum {
    TOY_EMODEL = -501,   // checkpoint holds another model or a bad architecture
    TOY_EDIM = -502,     // data of the wrong dimension
    TOY_ECONFIG = -503,  // invalid configuration value
};
const char *toy_strerror(int err);   // also knows the nn/base.h and checkpoint codes

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

// ---- Adam (local; see header note) ----
typedef struct {
    float lr_ref, beta1, beta2, eps;
    int64_t n, t;          // parameter count, steps taken
    float *m, *v;          // owned
} toy_adam;
int toy_adam_init(toy_adam *o, int64_t n, float lr_ref, float beta1, float beta2, float eps);
void toy_adam_free(toy_adam *o);
// AutoGuidance schedule: lr_ref / sqrt(max(it / 512, 1)).
float toy_lr(float lr_ref, int64_t it);
void toy_adam_step(toy_adam *o, float *params, const float *grads, float lr);

// ---- tokenizer ----
typedef enum { TOY_REG_KL = 0, TOY_REG_VE = 1 } toy_reg;
typedef enum { TOY_VE_INV_VAR = 0, TOY_VE_NEG_VAR = 1, TOY_VE_NEG_LOGSTD = 2 } toy_ve_form;
typedef struct {
    toy_reg reg;
    float kl_weight;             // KL arm: beta
    float lambda_ve, lambda_reg, tau, delta;   // VE arm
    toy_ve_form ve_form;         // (iii) default
    int reg_global;              // 0: element-wise (a), 1: global RMS (b)
} toy_tok_cfg;

typedef struct { double total, rec, kl, ve, reg; } toy_tok_losses;

typedef struct {
    int depth, width, max_batch;
    param_table pt;
    toy_mlp enc, dec;
    arena act;
    // step buffers (max_batch rows)
    float *h, *mu, *lv, *sigma, *eps, *z, *xr, *dxr, *dz, *dh;
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
typedef struct {
    int depth, width, max_batch;
    param_table pt;
    toy_mlp net;
    arena act;
    float *inp, *v, *target, *dv;
} toy_flow;

int toy_flow_create(toy_flow **out, int depth, int width, int max_batch);
void toy_flow_destroy(toy_flow **f);
void toy_flow_init(toy_flow *f, uint32_t seed);
// v (B, 2) = model(z_t (B, 2), t (B)); B <= max_batch.
void toy_flow_velocity(toy_flow *f, float *v, const float *zt, const float *t, int B);
// Flow matching on data z1 with noise x0 and times t: z_t = t z1 + (1-t) x0,
// target z1 - x0, loss mean((v - target)^2). Zeroes grads, accumulates them.
double toy_flow_loss_backward(toy_flow *f, const float *z1, const float *x0, const float *t, int B);
double toy_flow_loss(toy_flow *f, const float *z1, const float *x0, const float *t, int B);

// ---- checkpoints (safetensors; __metadata__ model, depth, width + extras) ----
typedef struct { const char *key, *value; } toy_kv;
int toy_save(const char *path, const param_table *pt, const char *model, int depth, int width,
             const toy_kv *extra, int nextra, char *err, int errlen);
// Reads the architecture of a checkpoint and checks its model name.
int toy_ckpt_arch(const char *path, const char *want_model, int *depth, int *width,
                  char *err, int errlen);
int toy_tok_load(toy_tok **out, const char *path, int max_batch, char *err, int errlen);
int toy_flow_load(toy_flow **out, const char *path, int max_batch, char *err, int errlen);
// A metadata value of a checkpoint (copied into out); VEL_ENOTFOUND if absent.
int toy_ckpt_meta(const char *path, const char *key, char *out, int outlen);
// FNV-1a 64 of a file's bytes as 16 hex digits (the store's tokenizer hash).
int toy_file_hash(const char *path, char out[17]);

#endif
