// toy_tok.h: the 2D toy's tokenizer (docs/FORMULAS.md sections 1-2): encoder
// MLP 2 -> (mu 2, logvar 2), decoder MLP 2 -> 2, trained with the KL
// baseline or the VE regulariser. The loss terms are nn/loss.h's (MSE, KL,
// VE, magnitude regulariser, reparameterisation); training uses nn/optim.h
// (Adam) with nn/schedule.h's LR_INV_SQRT (TOY_LR_T_REF, models/toy_mlp.h).
// Checkpoints: safetensors, model "toy-tokenizer" (models/toy_ckpt.h).
#ifndef MODELS_TOY_TOK_H
#define MODELS_TOY_TOK_H

#include <stdint.h>

#include "models/toy_mlp.h"
#include "nn/loss.h"

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
    device_kind dev;             // where pt and act live (toy_tok_to_device)
    param_table pt;
    toy_mlp enc, dec;
    arena act;
    // step buffers (max_batch rows), in act
    float *h, *mu, *lv, *z, *xr, *dxr, *dz, *dmu, *dlv, *dh;
    float *xin, *epsin;          // GPU model: the step's x and eps copied up
    float *hmu, *hlv;            // GPU model: host copies for toy_tok_latent_stats (else NULL)
    int err;                     // device error of the latest loss call (0: none)
} toy_tok;

int toy_tok_create(toy_tok **out, int depth, int width, int max_batch);
void toy_tok_destroy(toy_tok **t);
void toy_tok_init(toy_tok *t, uint32_t seed);
// Moves parameters and activations to the GPU (after device_activate and
// toy_tok_init or a load); only DEVICE_CUDA, once. toy_tok_loss(_backward)
// and the optimizer then run there; x and eps stay host arrays, copied up
// per call. Encode / decode stay host-only (they CHECK for a host model).
// 0 or a device code (nn/device.h; the model is unchanged on failure).
int toy_tok_to_device(toy_tok *t, device_kind kind);
// Encoder moments: mu, logvar (B, 2) each; logvar already clamped to [-30, 20].
void toy_tok_encode(toy_tok *t, float *mu, float *logvar, const float *x, int B);
void toy_tok_decode(toy_tok *t, float *x, const float *z, int B);
// One training step on x (B, 2) with eps (B, 2) (host arrays): zeroes grads,
// forward, backward (grads left in t->pt.grads). Returns the loss terms. On
// the GPU the call waits for the forward (the values come back) and queues
// the backward; a device failure returns total = NAN with t->err set.
toy_tok_losses toy_tok_loss_backward(toy_tok *t, const toy_tok_cfg *cfg, const float *x,
                                     const float *eps, int B);
// The loss terms only (no gradients), for tests and finite differences.
toy_tok_losses toy_tok_loss(toy_tok *t, const toy_tok_cfg *cfg, const float *x,
                            const float *eps, int B);

// Of the latest loss call's B rows: the mean of sigma = exp(0.5 clamp(logvar))
// and the RMS of mu over all 2B latent elements (the training log's columns).
// 0, or a device code when the copy from the GPU fails.
int toy_tok_latent_stats(toy_tok *t, int B, double *mean_sigma, double *rms_mu);

// Builds the tokenizer a checkpoint describes and loads its weights.
int toy_tok_load(toy_tok **out, const char *path, int max_batch);

#endif
