// toy_mlp.h: the MLP under the 2D toy's networks (docs/FORMULAS.md section 2),
// fp32: `depth` hidden layers Linear+ReLU of `width`, then an output Linear
// (paper config depth 8, width 512); PyTorch default init. Every step is an
// op of the op API (nn/linear.h, nn/activation.h) or a device_copy /
// device_zero, so the same code runs on the GPU once the owner has put the
// table and the arena there (toy_tok_to_device, toy_flow_to_device).
// Also the toy models' shared error codes and the AutoGuidance schedule
// constant both toy trainers use.
// The models built on it: models/toy_tok.h (tokenizer), models/toy_flow.h
// (flow model); their checkpoints: models/toy_ckpt.h.
// Conventions as in nn/: backward accumulates into the parameter table's
// grads (callers zero them).
// Not here: data (data/toy_gmm.h), the sampler (models/sampler.h).
#ifndef MODELS_TOY_MLP_H
#define MODELS_TOY_MLP_H

#include <stddef.h>
#include <stdint.h>

#include "core/mt19937.h"
#include "nn/arena.h"
#include "nn/params.h"

enum {
    TOY_EMODEL = -501,   // checkpoint holds another model or a bad architecture
    TOY_EDIM = -502,     // data of the wrong dimension
    TOY_ECONFIG = -503,  // invalid configuration value
};

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

// Copy / zero fill of buffers on the host or the device (nn/device.h); a
// failure becomes this thread's pending op error (nn/backend.h: nn_sync).
void toy_copy(void *dst, const void *src, size_t bytes);
void toy_zero(float *p, size_t n);

// The AutoGuidance schedule used by both toy trainers: lr_ref / sqrt(max(it /
// 512, 1)) (nn/schedule.h LR_INV_SQRT, t_ref 512, no warm-up).
#define TOY_LR_T_REF 512

#endif
