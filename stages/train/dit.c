// dit.c: `train --model dit`, LightningDiT on the latent cache
// (docs/FORMULAS.md section 4): flags, open, loop, close. The step math is
// models/dit_train.h, batches come from store/loader.h (prefetch thread),
// gradients are averaged over ranks by dist/ (Open MPI on the CPU, NCCL with
// --device cuda; ranks from RANK/WORLD_SIZE, Slurm or Open MPI variables,
// launched by mpirun/srun).
//
// Per step s (global batch G, this rank's slice of B = G / world samples at
// global positions pos0 = s*G + rank*B ..):
//   z = mu + sigma*eps (fresh eps), zn = store_normalise(z), x0, t, label
//   dropout drawn at the same positions; grads = d(loss)/d(params) averaged
//   over ranks; clip; AdamW (or Muon) at lr(s); EMA with decay d.
// Every draw depends on (seed, position), so a resumed run continues
// bit-exactly and world W on G equals world 1 on G to fp32 rounding.
//
// Writes into --out (rank 0 only): config.json, log.jsonl, dit.safetensors +
// dit.optim.safetensors (checkpoint, every --ckpt-every steps and at the end),
// dit-ema.safetensors (EMA weights for sampling), samples-STEP.png,
// loss.png (from the whole log.jsonl, resumed runs included). Input errors (flags, missing store, store without stats,
// mismatching checkpoint) exit 2 before anything is written.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base.h"
#include "dist/dist.h"
#include "nn/backend.h"
#include "nn/checkpoint.h"
#include "nn/device.h"
#include "nn/schedule.h"
#include "stages/common/flags.h"
#include "stages/train/dit.h"
#include "stages/train/train.h"
#include "store/loader.h"

static void help(void) {
    printf("usage: train --model dit --store DIR --out DIR [options]\n"
           "Trains LightningDiT by class-conditional flow matching on the latent cache written by\n"
           "`encode` (z = mu + sigma*eps drawn afresh each step, normalised by the cache's stats).\n"
           "Model:\n"
           "  --preset NAME      tiny (default), S, B (patch 1, for small latents), B/1, B/2, L/2,\n"
           "                     XL/1, XL/2 (reference sizes); latent shape from the cache\n"
           "  --depth N --width N --heads N --patch N   override the preset\n"
           "  --qk-norm          per-head RMSNorm on q and k\n"
           "  --num-classes N    label table size (default: largest label in the cache + 1)\n"
           "  --list-presets     print every preset's parameter count at 32x16x16 latents with\n"
           "                     1000 classes and at 4x8x8 with 10 classes, then exit\n"
           "Flow matching:\n"
           "  --time logit-normal|uniform  t distribution (default logit-normal(0,1))\n"
           "  --label-drop P     probability of the null class (default 0.1)\n"
           "  --cos-weight W     weight of the cosine loss over channels (default 1; 0 = MSE only)\n"
           "  --flip auto|on|off random horizontal flips from the cache (default auto: on if cached)\n"
           "Optimisation:\n"
           "  --batch N (64, global over ranks)  --steps N (10000)  --lr X (2e-4)  --warmup N (0)\n"
           "  --optimizer adamw|muon (adamw)  --beta1 X (0.9)  --beta2 X (0.95)  --wd X (0)\n"
           "  --clip X           global gradient-norm clip (default 1; 0 = off)\n"
           "  --ema D            EMA decay per step (default 0.9999)\n"
           "  --ema-halflife N   EMA half-life in steps instead (decay 0.5^(1/N); for short runs)\n"
           "  --seed N (0)       --time-limit SEC  stop (and save) after SEC seconds of training\n"
           "Output:\n"
           "  --ckpt-every N (1000)  --sample-every N (1000; 0 = only at the end)\n"
           "  --sample-steps N (50 Euler steps)  --tokenizer PREFIX (decode the preview samples)\n"
           "  --log-every N (10 steps per log.jsonl line)  --progress S (seconds between reports, 5)\n"
           "  --resume           continue the run in --out bit-exactly (same flags and cache)\n"
           "  --device cpu|cuda[:N]  where to train (default cpu). cuda: parameters, AdamW state,\n"
           "                     EMA and activations on the GPU, fp32 (AdamW or Muon); several ranks (one\n"
           "                     GPU each, cuda = GPU LOCAL_RANK) average gradients with NCCL, whose id\n"
           "                     file all ranks must see is $VEL_NCCL_ID_FILE (fresh per run)\n"
           "  --bf16             with --device cuda: bf16 autocast of the matrix products and the\n"
           "                     attention (bf16 operands / q, k, v; fp32 accumulation and softmax; fp32\n"
           "                     master weights, optimizer, EMA, norms, loss and other ops)\n"
           "Writes DIR/config.json, log.jsonl, dit.safetensors, dit.optim.safetensors,\n"
           "dit-ema.safetensors (EMA weights: sample from these), samples-STEP.png, loss.png.\n"
           "Many ranks: mpirun -np W train --model dit ... (Open MPI; --batch is the global batch).\n");
}

static int list_presets(void) {
    printf("%-6s %5s %6s %5s %5s %16s %16s\n", "preset", "depth", "width", "heads", "patch",
           "32x16x16/1000", "4x8x8/10");
    for (int i = 0; DIT_PRESET_NAMES[i]; i++) {
        ldit_config a = {.in_channels = 32, .input_size = 16, .num_classes = 1000};
        dit_preset(DIT_PRESET_NAMES[i], &a);
        ldit_config b = a;
        b.in_channels = 4, b.input_size = 8, b.num_classes = 10;
        printf("%-6s %5d %6d %5d %5d %16lld %16lld\n", DIT_PRESET_NAMES[i], a.depth, a.hidden,
               a.heads, a.patch, (long long)ldit_param_count(&a), (long long)ldit_param_count(&b));
    }
    return 0;
}

// Upper bounds where memory follows from the number (a typo fails here, not
// after allocating gigabytes); the model's own limits are ldit_config_validate's.
enum { DIT_MAX_BATCH = 1 << 16, DIT_MAX_WIDTH = 1 << 16, DIT_MAX_HEADS = 1024, DIT_MAX_PATCH = 64,
       DIT_MAX_CLASSES = 1 << 20 };
#define DIT_MAX_STEPS ((int64_t)1 << 40)

// 0 ok, 1 help printed, 3 presets listed, 2 usage error. ovr[0..3]: which of
// --depth/--width/--heads/--patch were given.
static int parse(int argc, char **argv, dit_opts *o, int *ovr) {
    memset(o, 0, sizeof *o);
    o->preset = "tiny";
    o->fm = dit_fm_defaults();
    o->batch = 64; o->steps = 10000; o->lr = 2e-4; o->beta1 = 0.9; o->beta2 = 0.95;
    o->clip = 1.0; o->ema = 0.9999;
    o->ckpt_every = 1000; o->sample_every = 1000; o->log_every = 10; o->sample_steps = 50;
    o->progress_s = 5;
    o->cfg.num_classes = -1;
    // Choice lists: TIMES in dit_time_mode order; FLIPS -> flip -1, 1, 0; OPTS -> adamw, muon.
    static const char *const TIMES[] = {"uniform", "logit-normal", NULL}, *const FLIPS[] = {"auto", "on", "off", NULL},
                             *const OPTS[] = {"adamw", "muon", NULL};
    int time = o->fm.time, flip = 0, opt = 0, list = 0, help_asked = 0, operands = 0;
    int dims[4] = {0, 0, 0, 0};   // depth, width, heads, patch overrides (0: not given)
    const flag_spec F[] = {
        FLAG_STR_("store", &o->store), FLAG_STR_("out", &o->out), FLAG_STR_("preset", &o->preset),
        FLAG_INT_("depth", &dims[0], 1, 256), FLAG_INT_("width", &dims[1], 1, DIT_MAX_WIDTH),
        FLAG_INT_("heads", &dims[2], 1, DIT_MAX_HEADS), FLAG_INT_("patch", &dims[3], 1, DIT_MAX_PATCH),
        FLAG_BOOL_("qk-norm", &o->cfg.qk_norm), FLAG_INT_("num-classes", &o->cfg.num_classes, 1, DIT_MAX_CLASSES),
        FLAG_BOOL_("list-presets", &list), FLAG_CHOICE_("time", &time, TIMES),
        FLAG_F32_("label-drop", &o->fm.label_drop, 0, 1, 0), FLAG_F32_("cos-weight", &o->fm.cos_weight, 0, INFINITY, 0),
        FLAG_CHOICE_("flip", &flip, FLIPS), FLAG_INT_("batch", &o->batch, 1, DIT_MAX_BATCH),
        FLAG_I64_("steps", &o->steps, 1, DIT_MAX_STEPS), FLAG_F64_("lr", &o->lr, 0, INFINITY, FLAG_OPEN_LO),
        FLAG_I64_("warmup", &o->warmup, 0, DIT_MAX_STEPS), FLAG_CHOICE_("optimizer", &opt, OPTS),
        FLAG_F64_("beta1", &o->beta1, 0, 1, FLAG_OPEN_HI), FLAG_F64_("beta2", &o->beta2, 0, 1, FLAG_OPEN_HI),
        FLAG_F64_("wd", &o->wd, 0, INFINITY, 0), FLAG_F64_("clip", &o->clip, 0, INFINITY, 0),
        FLAG_F64_("ema", &o->ema, 0, 1, FLAG_OPEN_HI), FLAG_F64_("ema-halflife", &o->ema_halflife, 0, INFINITY, 0),
        FLAG_U64_("seed", &o->seed), FLAG_F64_("time-limit", &o->time_limit_s, 0, INFINITY, 0),
        FLAG_I64_("ckpt-every", &o->ckpt_every, 1, DIT_MAX_STEPS),
        FLAG_I64_("sample-every", &o->sample_every, 0, DIT_MAX_STEPS),
        FLAG_INT_("sample-steps", &o->sample_steps, 1, 10000), FLAG_STR_("tokenizer", &o->tokenizer),
        FLAG_I64_("log-every", &o->log_every, 1, DIT_MAX_STEPS),
        FLAG_F64_("progress", &o->progress_s, 0, INFINITY, FLAG_OPEN_LO), FLAG_BOOL_("resume", &o->resume),
        FLAG_STR_("device", &o->device), FLAG_BOOL_("bf16", &o->bf16)};
    if (flag_parse("train", argc, argv, F, FLAG_COUNT(F), &help_asked, &operands)) return 2;
    if (help_asked) return 1;
    if (list) return 3;
    if (operands < argc) { fprintf(stderr, "train: unexpected argument '%s'\n", argv[operands]); return 2; }
    o->fm.time = (dit_time_mode)time;
    o->flip = flip == 0 ? -1 : flip == 1 ? 1 : 0;
    o->optimizer = opt ? OPTIM_MUON : OPTIM_ADAMW;
    if (dit_preset(o->preset, &o->cfg)) {
        fprintf(stderr, "train: unknown --preset '%s' (see --list-presets)\n", o->preset);
        return 2;
    }
    for (int i = 0; i < 4; i++) ovr[i] = dims[i] > 0;
    if (ovr[0]) o->cfg.depth = dims[0];
    if (ovr[1]) o->cfg.hidden = dims[1];
    if (ovr[2]) o->cfg.heads = dims[2];
    if (ovr[3]) o->cfg.patch = dims[3];
    if (!o->store || !o->out) { fprintf(stderr, "train: --store DIR and --out DIR are required\n"); return 2; }
    if (o->ema_halflife > 0) o->ema = pow(0.5, 1.0 / o->ema_halflife);
    return 0;
}

static int exists(const char *path) { struct stat s; return stat(path, &s) == 0; }

// The largest label + 1 over the cache (labels only, in chunks); -1 when a
// record has no label. Returns 0 or a store code.
static int scan_labels(store *s, const uint64_t *idx, size_t n, int *max1) {
    int32_t lab[4096];
    *max1 = 0;
    for (size_t i0 = 0; i0 < n; i0 += 4096) {
        size_t k = n - i0 < 4096 ? n - i0 : 4096;
        int e = store_read_batch(s, NULL, NULL, lab, idx + i0, NULL, k);
        if (e) return e;
        for (size_t i = 0; i < k; i++) {
            if (lab[i] < 0) { *max1 = -1; return 0; }
            if (lab[i] + 1 > *max1) *max1 = lab[i] + 1;
        }
    }
    return 0;
}

typedef struct {
    dit_opts o;
    dist_comm *comm;
    int rank, world;
    store *st;
    const store_meta *sm;
    uint64_t *indices;
    size_t nidx;
    ldit *m;
    dit_trainer *tr;
    optim *opt;
    ema *ema;
    loader *ld;
    float *z;
    dit_meta meta;
    device_kind dev;
    dit_mirror mirror;   // host copy for checkpoints of a GPU run
    float *dlv;          // (3) device: loss values for the NCCL all-reduce
    FILE *log;
    char prefix[1100], path[1200];
} run_t;

static void run_close(run_t *r) {
    loader_destroy(&r->ld);
    dit_mirror_free(&r->mirror);
    device_free((void **)&r->dlv);
    if (r->log) fclose(r->log);
    free(r->z);
    free(r->indices);
    dit_meta_free(&r->meta);
    ema_destroy(&r->ema);
    optim_destroy(&r->opt);
    dit_trainer_destroy(&r->tr);
    ldit_destroy(&r->m);
    store_close(&r->st);
    dist_finalize(&r->comm);
}

// Opens the cache and checks everything that can be wrong with the inputs,
// before anything is written. 0, 1 (runtime) or 2 (input error).
static int open_inputs(run_t *r, const int *ovr) {
    dit_opts *o = &r->o;
    if (!exists(o->store)) {
        fprintf(stderr, "train: no latent cache at %s (run encode first)\n", o->store);
        return 2;
    }
    int e = store_open(&r->st, o->store, NULL, NULL, NULL);
    if (e) {
        fprintf(stderr, "train: cannot open the latent cache %s: %s (%s)\n", o->store, vel_strerror(e),
                vel_error_detail());
        return 2;
    }
    r->sm = store_get_meta(r->st);
    if (!r->sm->has_stats) {
        fprintf(stderr, "train: the cache %s has no latent statistics (finish `encode`, or run it with --stats)\n",
                o->store);
        return 2;
    }
    if (r->sm->shape[1] != r->sm->shape[2]) {
        fprintf(stderr, "train: the cache holds %lldx%lld latents; LightningDiT needs square ones\n",
                (long long)r->sm->shape[1], (long long)r->sm->shape[2]);
        return 2;
    }
    if ((e = store_list_indices(r->st, &r->indices, &r->nidx))) {
        fprintf(stderr, "train: listing %s: %s (%s)\n", o->store, vel_strerror(e), vel_error_detail());
        return vel_exit_code(e);   // a damaged cache: 2; EIO and the like: 1
    }
    if ((int64_t)r->nidx < o->batch) {
        fprintf(stderr, "train: the cache holds %zu records, fewer than --batch %d\n", r->nidx, o->batch);
        return 2;
    }
    int max1 = 0;
    if ((e = scan_labels(r->st, r->indices, r->nidx, &max1))) {
        fprintf(stderr, "train: reading labels: %s (%s)\n", vel_strerror(e), vel_error_detail());
        return vel_exit_code(e);
    }
    if (max1 < 0) { fprintf(stderr, "train: the cache has unlabelled records; class conditioning needs labels\n"); return 2; }
    if (o->cfg.num_classes < 0) o->cfg.num_classes = max1;
    if (o->cfg.num_classes < max1) {
        fprintf(stderr, "train: --num-classes %d, but the cache has label %d\n", o->cfg.num_classes, max1 - 1);
        return 2;
    }
    o->cfg.in_channels = (int)r->sm->shape[0];
    o->cfg.input_size = (int)r->sm->shape[1];
    if (ldit_config_validate(&o->cfg)) {
        const char *why = vel_error_detail();
        fprintf(stderr, "train: preset %s%s on %lldx%lldx%lld latents: %s\n", o->preset,
                (ovr[0] || ovr[1] || ovr[2] || ovr[3]) ? " (with overrides)" : "",
                (long long)r->sm->shape[0], (long long)r->sm->shape[1], (long long)r->sm->shape[2], why);
        return 2;
    }
    if (o->flip < 0) o->flip = r->sm->has_flip;
    if (o->flip && !r->sm->has_flip) { fprintf(stderr, "train: --flip on, but the cache has no flipped latents\n"); return 2; }
    if (o->batch % r->world) {
        fprintf(stderr, "train: --batch %d is not a multiple of the world size %d\n", o->batch, r->world);
        return 2;
    }
    if (o->tokenizer) {   // checked now, not at the first preview after hours
        char wp[1200], hash[17] = "";
        snprintf(wp, sizeof wp, "%s.safetensors", o->tokenizer);
        if (ckpt_file_hash(wp, hash) || strcmp(hash, r->sm->tokenizer_hash)) {
            fprintf(stderr, "train: --tokenizer %s: %s (the cache was encoded by %s)\n", wp,
                    hash[0] ? "another tokenizer than the cache's" : "cannot read it", r->sm->tokenizer_hash);
            return 2;
        }
    }
    snprintf(r->prefix, sizeof r->prefix, "%s/dit", o->out);
    snprintf(r->path, sizeof r->path, "%s.safetensors", r->prefix);
    dit_meta_build(&r->meta, o, r->sm);
    if (o->resume) {
        if (!exists(r->path)) { fprintf(stderr, "train: --resume: no checkpoint %s\n", r->path); return 2; }
        if (dit_meta_check(r->path, &r->meta)) return 2;
    } else if (exists(r->path)) {
        fprintf(stderr, "train: %s already holds a run (use --resume, or another --out)\n", o->out);
        return 2;
    }
    return 0;
}

// --device: cpu, or cuda when usable for this run (a GPU present); the CUDA
// context becomes this thread's. 0 or 2 (printed).
static int open_device(run_t *r) {
    const dit_opts *o = &r->o;
    r->dev = DEVICE_CPU;
    if (!o->device) {
        if (o->bf16) { fprintf(stderr, "train: --bf16 is for --device cuda (the CPU path is fp32)\n"); return 2; }
        return 0;
    }
    int index, e = device_parse(o->device, &r->dev, &index);
    if (e) {
        fprintf(stderr, "train: --device '%s': %s\n", o->device, vel_strerror(e));
        return 2;
    }
    if (r->dev == DEVICE_CPU) {
        if (o->bf16) { fprintf(stderr, "train: --bf16 is for --device cuda (the CPU path is fp32)\n"); return 2; }
        return 0;
    }
    char msg[512];
    if (device_activate(r->dev, index, msg, sizeof msg)) {   // no CUDA build / no GPU: says which
        fprintf(stderr, "train: %s\n", msg);
        return 2;
    }
    if (o->bf16 && (e = device_autocast_bf16(1))) {
        fprintf(stderr, "train: --bf16: %s\n", vel_errmsg(e));
        return 1;
    }
    return 0;
}

// Averages this rank's gradients and loss values over the ranks: Open MPI on
// host memory, NCCL on the GPU (the loss values go through a small device
// buffer there). 0 or a dist / device code.
static int allreduce_step(run_t *r, float *lv) {
    int e = dist_allreduce_avg(r->comm, r->m->pt.grads, r->m->pt.total);
    if (e || r->dev != DEVICE_CUDA) return e ? e : dist_allreduce_avg(r->comm, lv, 3);
    if (!r->dlv && (e = device_alloc(DEVICE_CUDA, (void **)&r->dlv, 3 * sizeof(float)))) return e;
    if (!(e = device_copy(r->dlv, lv, 3 * sizeof(float))) && !(e = dist_allreduce_avg(r->comm, r->dlv, 3)))
        e = device_copy(lv, r->dlv, 3 * sizeof(float));
    return e;
}

// Builds model, optimizer and EMA; loads the checkpoint on --resume.
static int build(run_t *r, int64_t *start) {
    dit_opts *o = &r->o;
    int B = o->batch / r->world;
    optim_config oc = optim_defaults(o->optimizer);
    oc.beta1 = o->beta1, oc.beta2 = o->beta2, oc.weight_decay = o->wd, oc.eps = 1e-8;
    // On the GPU the model moves first, so optimizer state and EMA are created there.
    int e = ldit_create(&r->m, &o->cfg, B);
    if (e) {
        fprintf(stderr, "train: building the model: %s\n", vel_errmsg(e));
        return 1;
    }
    ldit_init_params(r->m, o->seed);
    if (r->dev == DEVICE_CUDA &&
        ((e = ldit_to_device(r->m, DEVICE_CUDA)) || (e = dit_mirror_create(&r->mirror, &r->m->pt, &oc)))) {
        fprintf(stderr, "train: placing the model on the GPU: %s\n", vel_errmsg(e));
        return 1;
    }
    if (dit_trainer_create(&r->tr, r->m, &o->fm, B) || optim_create(&r->opt, &r->m->pt, &oc) ||
        !(r->z = malloc(sizeof(float) * (size_t)B * (size_t)r->tr->numel)) || ema_create(&r->ema, &r->m->pt)) {
        fprintf(stderr, "train: out of memory building the model\n");
        return 1;
    }
    *start = 0;
    if (o->resume) {
        ckpt_state cs;
        const int gpu = r->dev == DEVICE_CUDA;
        e = gpu ? ckpt_load(r->prefix, &r->mirror.pt, r->mirror.opt, r->mirror.ema, &cs)
                : ckpt_load(r->prefix, &r->m->pt, r->opt, r->ema, &cs);
        if (e) {
            // The detail usually names the file already; the prefix only when it does not.
            if (strstr(vel_error_detail(), r->prefix)) fprintf(stderr, "train: --resume: %s\n", vel_errmsg(e));
            else fprintf(stderr, "train: --resume: %s: %s\n", r->prefix, vel_errmsg(e));
            return 2;
        }
        if (gpu && (e = dit_mirror_push(&r->mirror, &r->m->pt, r->opt, r->ema))) {
            fprintf(stderr, "train: --resume: copying the checkpoint to the GPU: %s\n", vel_errmsg(e));
            return 1;
        }
        if (cs.rng_seed != o->seed) {
            fprintf(stderr, "train: --resume: checkpoint seed %llu differs from --seed %llu\n",
                    (unsigned long long)cs.rng_seed, (unsigned long long)o->seed);
            return 2;
        }
        *start = (int64_t)cs.step;
        if (*start > o->steps) {
            fprintf(stderr, "train: --resume: checkpoint is at step %lld, past --steps %lld\n",
                    (long long)*start, (long long)o->steps);
            return 2;
        }
    }
    return 0;
}

static int save(run_t *r, int64_t step) {
    ckpt_state cs = {.step = (uint64_t)step, .rng_seed = r->o.seed, .rng_offset = (uint64_t)step};
    // A GPU run saves its host mirror, refreshed here (checkpoints read host memory).
    const int gpu = r->dev == DEVICE_CUDA;
    int e = gpu ? dit_mirror_pull(&r->mirror, &r->m->pt, r->opt, r->ema) : 0;
    const param_table *pt = gpu ? &r->mirror.pt : &r->m->pt;
    const optim *opt = gpu ? r->mirror.opt : r->opt;
    const ema *em = gpu ? r->mirror.ema : r->ema;
    if (!e) e = ckpt_save(r->prefix, pt, opt, em, &cs, r->meta.kv, r->meta.n);
    if (!e) {
        char p[1200];
        snprintf(p, sizeof p, "%s/dit-ema.safetensors", r->o.out);
        e = ckpt_save_ema_weights(p, pt, em, DT_F32, r->meta.kv, r->meta.n);
    }
    if (e) fprintf(stderr, "\ntrain: saving the checkpoint in %s: %s (%s)\n", r->o.out, vel_strerror(e), vel_error_detail());
    return e ? 1 : 0;
}

static int preview(run_t *r, int64_t step) {
    char p[1200];
    snprintf(p, sizeof p, "%s/samples-%08lld.png", r->o.out, (long long)step);
    int e = dit_preview(p, r->m, r->ema, &r->o, r->sm);
    int d = nn_sync();   // a GPU failure while sampling
    if (d) fprintf(stderr, "train: preview on the GPU: %s\n", vel_errmsg(d));
    return e || d;
}

static void order_fn(int64_t *order, int64_t n, uint64_t seed, int64_t epoch) {
    dist_epoch_order(order, n, seed, epoch);
}

// The training loop from step `start`. 0 or 1.
static int train_loop(run_t *r, int64_t start) {
    dit_opts *o = &r->o;
    loader_opts lo = {.global_batch = o->batch, .rank = r->rank, .world = r->world, .seed = o->seed,
                      .start_step = start, .flip = o->flip, .order = order_fn};
    int e = loader_create(&r->ld, r->st, r->indices, (int64_t)r->nidx, &lo);
    if (e) { fprintf(stderr, "train: loader: %s\n", vel_strerror(e)); return 1; }
    lr_schedule sched = {.lr = o->lr, .decay = LR_CONSTANT, .warmup = o->warmup};
    int tty = isatty(STDOUT_FILENO), lead = r->rank == 0;
    double t0 = vel_now(), last_report = t0, sum[4] = {0};
    int64_t nsum = 0, step = start;
    float gnorm = 0;
    while (step < o->steps) {
        const loader_batch *b = NULL;
        if ((e = loader_next(r->ld, &b))) {
            fprintf(stderr, "\ntrain: reading the cache: %s (%s)\n", vel_strerror(e), vel_error_detail());
            return 1;
        }
        CHECK(b->step == step);
        int B = b->B;
        dit_draw_latents(r->z, b->mu, b->sigma, r->tr->numel, B, o->seed, b->pos0);
        store_normalise(r->z, r->z, r->sm, B);
        dit_draw_step(r->tr, B, o->seed, b->pos0);
        dit_losses L;   // gradients zero here: committed so, cleared by each update below
        if ((e = dit_loss_backward(r->tr, r->z, b->labels, B, &L))) {
            fprintf(stderr, "\ntrain: step %lld: %s\n", (long long)step, vel_strerror(e));
            return 1;
        }
        if ((e = nn_sync())) {   // the GPU's sticky op error (0 at once on the CPU)
            fprintf(stderr, "\ntrain: step %lld on the GPU: %s\n", (long long)step, vel_errmsg(e));
            return 1;
        }
        float lv[3] = {(float)L.loss, (float)L.mse, (float)L.cos};
        if (r->world > 1) {
            if ((e = allreduce_step(r, lv))) {
                fprintf(stderr, "\ntrain: all-reduce: %s (%s)\n", vel_strerror(e), vel_error_detail());
                return 1;
            }
        }
        if (!isfinite(lv[0])) {
            fprintf(stderr, "\ntrain: loss is not finite at step %lld (lr too high?)\n", (long long)step);
            return 1;
        }
        gnorm = clip_grad_norm(&r->m->pt, (float)o->clip);
        double lr = lr_at(&sched, step);
        optim_step_ema_zero(r->opt, &r->m->pt, lr, r->ema, o->ema, 1);   // + EMA, grads cleared
        if ((e = nn_sync())) {
            fprintf(stderr, "\ntrain: step %lld update on the GPU: %s\n", (long long)step, vel_errmsg(e));
            return 1;
        }
        step++;
        sum[0] += lv[0], sum[1] += lv[1], sum[2] += lv[2], sum[3] += gnorm;
        nsum++;
        double now = vel_now(), el = now - t0;
        double ips = (double)(step - start) * o->batch / (el > 0 ? el : 1e-9);
        int stop = o->time_limit_s > 0 && el >= o->time_limit_s;
        if (lead && (step % o->log_every == 0 || step == o->steps || stop)) {
            loader_stats ls;
            loader_get_stats(r->ld, &ls);
            fprintf(r->log, "{\"step\":%lld,\"loss\":%.6g,\"mse\":%.6g,\"cos\":%.6g,\"grad_norm\":%.6g,"
                            "\"lr\":%.6g,\"images_per_s\":%.2f,\"loader_wait_s\":%.3f,\"time_s\":%.2f}\n",
                    (long long)step, sum[0] / nsum, sum[1] / nsum, sum[2] / nsum, sum[3] / nsum, lr, ips,
                    ls.wait_s, el);
            fflush(r->log);
            sum[0] = sum[1] = sum[2] = sum[3] = 0;
            nsum = 0;
        }
        if (lead && (now - last_report >= o->progress_s || step == o->steps || stop)) {
            double eta = (double)(o->steps - step) * o->batch / (ips > 0 ? ips : 1e-9);
            if (o->time_limit_s > 0 && o->time_limit_s - el < eta) eta = o->time_limit_s - el;
            printf("%s[train dit] step %lld/%lld loss %.4f (mse %.4f cos %.4f) %.1f img/s ETA %.0f s%s",
                   tty ? "\r" : "", (long long)step, (long long)o->steps, lv[0], lv[1], lv[2], ips, eta,
                   tty ? "   " : "\n");
            fflush(stdout);
            last_report = now;
        }
        int last = step == o->steps || stop;
        if (lead && (step % o->ckpt_every == 0 || last) && save(r, step)) return 1;
        if (lead && ((o->sample_every && step % o->sample_every == 0) || last) && preview(r, step)) return 1;
        if (stop) {
            if (lead) printf("%s[train dit] --time-limit %.0f s reached at step %lld\n", tty ? "\n" : "",
                             o->time_limit_s, (long long)step);
            break;
        }
    }
    if (lead && tty) printf("\n");
    loader_stats ls;
    loader_get_stats(r->ld, &ls);
    double el = vel_now() - t0;
    if (lead) {
        printf("[train dit] %lld steps in %.1f s; loader: read %.2f s for %lld latents (%.0f latents/s), "
               "step waited %.3f s in total\n", (long long)(step - start), el, ls.read_s,
               (long long)ls.latents, ls.read_s > 0 ? (double)ls.latents / ls.read_s : 0.0, ls.wait_s);
        char png[1200];
        snprintf(png, sizeof png, "%s/loss.png", o->out);
        snprintf(r->path, sizeof r->path, "%s/log.jsonl", o->out);
        if (dit_plot_loss(png, r->path)) return 1;
    }
    return 0;
}

int train_dit_main(int argc, char **argv) {
    run_t r;
    memset(&r, 0, sizeof r);
    int ovr[4] = {0, 0, 0, 0};
    int rc = parse(argc, argv, &r.o, ovr);
    if (rc == 1) { help(); return 0; }
    if (rc == 3) return list_presets();
    if (rc) return 2;
    dist_env env;
    if ((rc = dist_env_read(&env))) {
        fprintf(stderr, "train: rank variables: %s (%s)\n", vel_strerror(rc), vel_error_detail());
        return 2;
    }
    // The device first: NCCL (ranks on GPUs) runs on this thread's CUDA context.
    if ((rc = open_device(&r))) { device_release(); return rc; }
    dist_opts dop = {.backend = env.world == 1 ? DIST_NONE : r.dev == DEVICE_CUDA ? DIST_NCCL : DIST_MPI,
                     .cuda_ctx = nn_cuda_ctx()};
    if ((rc = dist_init(&r.comm, &dop))) {
        fprintf(stderr, "train: joining the job: %s (%s)\n", vel_strerror(rc), vel_error_detail());
        device_release();
        return rc == DIST_EENV ? 2 : 1;
    }
    r.rank = dist_rank(r.comm), r.world = dist_world(r.comm);
    int64_t start = 0;
    if ((rc = open_inputs(&r, ovr)) || (rc = build(&r, &start))) goto done;
    if (r.world > 1 && !r.o.resume && (rc = dist_broadcast(r.comm, r.m->pt.values, r.m->pt.total, 0))) {
        fprintf(stderr, "train: broadcast: %s\n", vel_strerror(rc));
        rc = 1;
        goto done;
    }
    if (r.rank == 0) {
        char p[1200];
        if (mkdir(r.o.out, 0777) && errno != EEXIST) {
            fprintf(stderr, "train: cannot create %s: %s\n", r.o.out, strerror(errno));
            rc = 1;
            goto done;
        }
        snprintf(p, sizeof p, "%s/config.json", r.o.out);
        if (dit_write_config(p, &r.o, r.sm, r.world, r.m->pt.total, (int64_t)r.nidx)) { rc = 1; goto done; }
        snprintf(p, sizeof p, "%s/log.jsonl", r.o.out);
        if (r.o.resume && dit_log_truncate(p, start)) { rc = 1; goto done; }
        if (!(r.log = fopen(p, r.o.resume ? "a" : "w"))) {
            fprintf(stderr, "train: cannot write %s: %s\n", p, strerror(errno));
            rc = 1;
            goto done;
        }
        printf("[train dit] preset %s: depth %d width %d heads %d patch %d on %dx%dx%d latents, %d classes: "
               "%lld parameters; %zu records, batch %d over %d rank%s; %s from step %lld\n",
               r.o.preset, r.o.cfg.depth, r.o.cfg.hidden, r.o.cfg.heads, r.o.cfg.patch, r.o.cfg.in_channels,
               r.o.cfg.input_size, r.o.cfg.input_size, r.o.cfg.num_classes, (long long)r.m->pt.total, r.nidx,
               r.o.batch, r.world, r.world > 1 ? "s" : "", r.o.resume ? "resuming" : "starting", (long long)start);
        fflush(stdout);
    }
    rc = train_loop(&r, start);
done:
    run_close(&r);
    device_release();
    return rc;
}
