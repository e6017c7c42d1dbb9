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

// Builds the tokenizer a checkpoint describes and loads its weights.
int toy_tok_load(toy_tok **out, const char *path, int max_batch);

#endif
