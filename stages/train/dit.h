// dit.h: pieces of `train --model dit` shared by its files (dit.c: flags and
// the loop; dit_out.c: what it writes besides the checkpoint's tensors).
#ifndef STAGES_TRAIN_DIT_H
#define STAGES_TRAIN_DIT_H

#include <stdint.h>
#include <stdio.h>

#include "models/dit_train.h"
#include "models/lightningdit.h"
#include "nn/ema.h"
#include "nn/optim.h"
#include "nn/safetensors.h"
#include "store/store.h"

typedef struct {
    const char *store, *out, *preset, *tokenizer;
    ldit_config cfg;          // resolved: preset + overrides + the cache's shape
    dit_fm_cfg fm;
    int batch;                // global batch (all ranks)
    int64_t steps;
    double lr, beta1, beta2, wd, clip, ema, ema_halflife;
    int64_t warmup;
    uint64_t seed;
    int flip;                 // -1 auto (on when the cache has flips), 0, 1
    int64_t ckpt_every, sample_every, log_every;
    int sample_steps;
    double progress_s, time_limit_s;
    int resume;
    optim_kind optimizer;
    const char *device;       // --device text (NULL: cpu)
    int bf16;                 // --bf16: autocast of the GEMMs on the GPU
} dit_opts;

// Host copy of a GPU run's parameters, optimizer state and EMA, for the
// checkpoint code, which works on host memory (dit_device.c). pull: device
// -> mirror (before ckpt_save); push: mirror -> device (after ckpt_load).
// Functions return 0 or a device / VEL code with a vel_fail detail.
typedef struct {
    param_table pt;
    optim *opt;
    ema *ema;
} dit_mirror;
int dit_mirror_create(dit_mirror *h, const param_table *pt, const optim_config *oc);
void dit_mirror_free(dit_mirror *h);
int dit_mirror_pull(dit_mirror *h, const param_table *pt, const optim *o, const ema *e);
int dit_mirror_push(const dit_mirror *h, param_table *pt, optim *o, ema *e);

// Checkpoint metadata (dit_out.c):
// dit.preset, dit.depth ... dit.qk_norm, dit.time, store.tokenizer_hash,
// store.shape, store.mean, store.std, train.batch, train.seed. kv/buf are
// the caller's storage (DIT_META_MAX entries).
#define DIT_META_MAX 20
typedef struct {
    st_kv kv[DIT_META_MAX];
    char val[DIT_META_MAX][64];
    char *stats[2];   // malloc'ed mean/std strings (may be long)
    int n;
} dit_meta;
void dit_meta_build(dit_meta *m, const dit_opts *o, const store_meta *sm);
void dit_meta_free(dit_meta *m);
// Checks an existing checkpoint's metadata against this run: 0, or 2 with a
// message on stderr (another preset/config, another store, another batch/seed).
int dit_meta_check(const char *weights_path, const dit_meta *want);

// config.json of the run.
int dit_write_config(const char *path, const dit_opts *o, const store_meta *sm, int world,
                     int64_t nparams, int64_t nrecords);
// Preview grid with the EMA weights swapped in: classes 0..k-1 in rows,
// Euler samples decoded by the tokenizer when o->tokenizer is set (else the
// first latent channel in gray). Writes path (PNG). Returns 0 or prints why.
int dit_preview(const char *path, ldit *m, ema *e, const dit_opts *o, const store_meta *sm);

// On --resume: keeps the lines of log.jsonl with step <= step (a run that
// died after its last checkpoint logged steps that will run again). 0 or -1.
int dit_log_truncate(const char *path, int64_t step);
// Loss curve (loss, MSE, cosine against the step, log y) from log.jsonl to
// png. 0 or -1 (printed).
int dit_plot_loss(const char *png, const char *jsonl);

#endif
