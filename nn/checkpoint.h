// checkpoint.h: training checkpoints for exact resume, as two safetensors
// files side by side (both written atomically):
//   PREFIX.safetensors        model weights under their PyTorch names (what
//                             sampling and PyTorch tools load), metadata
//                             "format": "pt", "train.step"
//   PREFIX.optim.safetensors  optimizer state and EMA shadow:
//                               "exp_avg.NAME", "exp_avg_sq.NAME"   Adam(W) params
//                               "momentum_buffer.NAME"              Muon params
//                               "ema.NAME"                          when an EMA is given
//                             metadata "optim.kind", "optim.step", "train.step",
//                             "rng.seed", "rng.offset" (decimal strings) and
//                             the hyperparameters (for the record, %.17g)
// A resume loads both; "train.step" must agree, which catches a crash between
// the two renames (weights of step N+1 beside optimizer state of step N).
// On load the optimizer kind and every tensor name and shape must match the
// model and optimizer the caller built; hyperparameters are the caller's
// (not read back). Nothing is changed unless everything checks out.
//
// Not here: the file format (nn/safetensors.h), choosing when to save.
#ifndef NN_CHECKPOINT_H
#define NN_CHECKPOINT_H

#include <stdint.h>

#include "nn/ema.h"
#include "nn/optim.h"
#include "nn/params.h"
#include "nn/safetensors.h"

typedef struct {
    uint64_t step;        // training steps done
    uint64_t rng_seed;    // the run's Philox seed
    uint64_t rng_offset;  // next unused Philox draw index
} ckpt_state;

// Paths are PREFIX + ".safetensors" / ".optim.safetensors". o and e may be
// NULL (weights only / no EMA). extra metadata goes into the weights file.
int ckpt_save(const char *prefix, const param_table *pt, const optim *o, const ema *e,
              const ckpt_state *st, const st_kv *extra, int nextra);

// Loads what ckpt_save wrote into an already built table / optimizer / EMA
// of the same layout. o == NULL loads weights only (st may then be NULL; its
// step comes from the weights file). Returns 0 or a CKPT_* / VEL_* code.
int ckpt_load(const char *prefix, param_table *pt, optim *o, ema *e, ckpt_state *st);

// The EMA weights as a plain model file at path (PyTorch names, stored as
// dtype, metadata "format": "pt" plus meta), ready for st_load_params /
// ckpt_load(..., NULL, NULL, NULL) in the sampler.
int ckpt_save_ema_weights(const char *path, const param_table *pt, const ema *e, dtype_t dtype,
                          const st_kv *meta, int nmeta);

// FNV-1a 64 of a file's bytes as 16 lower-case hex digits: the hash that
// ties a latent store to the tokenizer checkpoint it was encoded with.
// The offset basis is 1469598103934665603, the standard 14695981039346656037
// with its last digit lost in an early copy; kept, because stores on disk
// record hashes made with it (the prime is the standard 1099511628211).
// 0 or VEL_EIO (cannot open or read).
int ckpt_file_hash(const char *path, char out[17]);

#endif
