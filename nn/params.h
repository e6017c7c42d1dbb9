// params.h: the named parameter table of a model. A model describes its
// parameters once (name in PyTorch style, shape); the table then owns one
// arena for all values and one for all gradients, carved in declaration
// order, so optimizers, gradient clipping, checkpoints (safetensors) and the
// data-parallel all-reduce can treat a model as one flat buffer.
//
//   param_table pt; param_table_init(&pt);
//   float *w = param_add(&pt, "blocks.0.attn.qkv.weight", 2, (int64_t[]){3*D, D});
//   ... (during this pass the returned pointers are NULL: sizes only)
//   param_table_commit(&pt);          // allocates values and grads (zeroed)
//   then read every pointer back with param_data(&pt, i) / param_grad(&pt, i)
//   or param_find(&pt, name).
//
// Not here: initialisation schemes (models do that), optimizer state
// (nn/optim.h keeps its own buffers sized from pt.total).
//
// On the GPU: param_table_move(&pt, DEVICE_CUDA) (after device_activate and
// the model's host-side initialisation) moves values and grads to the device;
// every pointer taken before (param_data, param_grad, pt->values) must be
// read again. The ops, param_zero_grads and optim_step then run there.
#ifndef NN_PARAMS_H
#define NN_PARAMS_H

#include <stdint.h>

#include "nn/arena.h"
#include "nn/device.h"

#define PARAM_NAME_MAX 96

typedef struct {
    char name[PARAM_NAME_MAX];
    int ndim;
    int64_t shape[4];
    int64_t numel;
    int64_t offset;      // in floats, into the values / grads buffers
    int no_decay;        // 1 for biases, norms, embeddings: no weight decay; AdamW not Muon
} param_info;

typedef struct {
    param_info *info;    // owned
    int count, cap;
    int64_t total;       // floats over all parameters
    float *values;       // owned, 64-byte aligned, total floats (NULL before commit)
    float *grads;        // owned, same layout
} param_table;

void param_table_init(param_table *pt);
// Declares a parameter; returns its values pointer after commit, NULL before.
// no_decay is set automatically for ndim < 2 (biases, norm weights).
float *param_add(param_table *pt, const char *name, int ndim, const int64_t *shape);
// Allocates values and grads (zeroed). Returns 0 or VEL_ENOMEM.
int param_table_commit(param_table *pt);
float *param_data(const param_table *pt, int i);
float *param_grad(const param_table *pt, int i);
int param_find(const param_table *pt, const char *name);   // index or -1
void param_zero_grads(param_table *pt);
// Moves values and grads (contents kept) to kind; a no-op if already there.
// 0 or device_alloc / device_copy codes (the table is unchanged on failure).
int param_table_move(param_table *pt, device_kind kind);
// Moves a model to kind: *dev (the model's device, which its carve may
// read) becomes kind, its activation arena *act is made again there
// (measure, commit on kind, carve(model, a)), then before_params(model) runs
// if given (uploads into the new views), then the table moves. The table
// moves last and all or nothing, so on any failure the model is as it was:
// *dev is restored, the new arena freed and the old one carved again from
// its start (its views restored). On success the old arena is freed and
// *act is the new one.
int param_move_with_arena(param_table *pt, arena *act, device_kind *dev, device_kind kind,
                          void (*carve)(void *model, arena *a), int (*before_params)(void *model), void *model);
void param_table_free(param_table *pt);

#endif
