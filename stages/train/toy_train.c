// toy_train.c: `train --model toy-tokenizer` and `train --model toy-flow`,
// the 2D toy's training loops (docs/FORMULAS.md section 2, issue 6).
//   toy-tokenizer: fresh points from the class-A mixture each step, KL or VE
//     regulariser, Adam (nn/optim.h) with lr_ref / sqrt(max(it/512, 1))
//     (nn/schedule.h LR_INV_SQRT) or, with --lr-schedule, a cosine decay to 0
//     at --iters or a constant rate (both models).
//   toy-flow: latents from a store (mu, sigma of the training points), a
//     fresh z = mu + sigma * eps each step, normalised by the store's stats
//     (store_normalise, the one place), flow matching with t ~ U(0, 1);
//     t enters the model raw or as Fourier features (--time-embed); t
//     sampling uniform / logit-normal / late (--time); optional EMA of the
//     saved weights (--ema) and snapshots (--save-every).
// Each writes into --out: config.json (resolved flags), log.jsonl (one line
// per --log-every steps), the checkpoint (safetensors), and a progress line
// on stderr. --device cuda: parameters, Adam state, activations (and the
// flow's EMA) live on the GPU and every op runs there (the op API); the
// batches are drawn on the host from the same RNG streams as on the CPU and
// copied up each step; checkpoints are written from a host copy, in the same
// format. Not here: the networks (models/toy_tok.h, models/toy_flow.h), data (data/toy_gmm.h).
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/base.h"
#include "core/mt19937.h"
#include "data/toy_gmm.h"
#include "models/toy_ckpt.h"
#include "models/toy_flow.h"
#include "models/toy_tok.h"
#include "nn/backend.h"
#include "nn/device.h"
#include "nn/ema.h"
#include "nn/optim.h"
#include "nn/schedule.h"
#include "stages/common/flags.h"
#include "stages/common/progress.h"
#include "stages/train/train.h"
#include "store/store.h"

typedef struct {
    const char *out, *store;
    const char *device;   // --device text (NULL: cpu)
    int depth, width, batch, iters, log_every, seed, save_every;
    float lr, beta1, beta2;
    double ema;   // toy-flow: EMA decay of the saved weights (0: off)
    toy_tok_cfg tok;
    lr_decay decay;      // --lr-schedule (nn/schedule.h's lr_decay_parse)
    int time_mode;   // index into TIME_MODES
    toy_time_embed time_embed;
    int time_freqs;
} train_opts;

static const char STAGE[] = "train";
// Upper bounds where memory follows from the number (the paper's toy is
// 8 x 512, batch 4096): a width of 1e8 used to allocate gigabytes first.
enum { TRAIN_TOY_MAX_WIDTH = 4096, TRAIN_TOY_MAX_BATCH = 1 << 16 };

static int write_json(const char *path, cJSON *j) {
    char *s = cJSON_Print(j);
    FILE *f = fopen(path, "w");
    int rc = (!s || !f || fputs(s, f) < 0) ? -1 : 0;
    if (f && fclose(f)) rc = -1;
    free(s);
    return rc;
}

// t sampling of the flow: uniform (the paper), logit-normal(0, 1), late:
// t = 1 - (1-u)^2, density 1 / (2 sqrt(1-t)) (more weight near the data end).
static const char *const TIME_MODES[] = {"uniform", "logit-normal", "late", NULL};
static const char *const VE_FORMS[] = {"inv-var", "neg-var", "neg-logstd", NULL};

// The learning rate of step it (0-based): inv-sqrt lr_ref / sqrt(max(it/512, 1))
// (the default, independent of --iters); cosine lr_ref (1 + cos(pi it / iters)) / 2,
// which reaches 0 at it = iters, i.e. just after the last step; constant lr_ref.
static lr_schedule toy_schedule(const train_opts *o) {
    return (lr_schedule){.lr = o->lr, .decay = o->decay, .t_ref = TOY_LR_T_REF,
                         .total = o->iters, .min_ratio = 0.0};
}

#define LR_SCHEDULE_HELP \
    "  --lr-schedule S      inv-sqrt (or inv_sqrt): lr_ref/sqrt(max(it/512,1)) (default);\n" \
    "                       cosine: lr_ref (1+cos(pi it/iters))/2, decays to 0 at --iters;\n" \
    "                       constant: lr_ref\n"

#define TOY_DEVICE_HELP \
    "  --device cpu|cuda[:N]  where to train (default cpu). cuda: weights, Adam state and\n" \
    "                       activations on the GPU (fp32, cuBLAS); batches drawn on the host\n" \
    "                       as on the CPU and copied up; same files as a CPU run\n" \
    "  --threads N          CPU threads (default OMP_NUM_THREADS, else all cores)\n"

static void help_tok(void) {
    printf("usage: train --model toy-tokenizer --out DIR [options]\n"
           "Trains the 2D toy tokenizer (encoder 2 -> mu, logvar; decoder 2 -> 2) on fresh\n"
           "points of the class-A mixture each step. Writes DIR/config.json, DIR/log.jsonl,\n"
           "DIR/tokenizer.safetensors.\n"
           "  --reg kl|ve          regulariser (default kl)\n"
           "  --kl-weight W        KL weight beta (default 1e-6)\n"
           "  --lambda-ve L        VE weight (default 1e-3)\n"
           "  --lambda-reg L       magnitude regulariser weight (default 1)\n"
           "  --tau T              magnitude threshold (default 1)\n"
           "  --delta D            VE delta (default 1e-6)\n"
           "  --ve-form F          inv-var (iii, default) | neg-var (i) | neg-logstd (ii)\n"
           "  --reg-form F         global (RMS, default) | elem (element-wise)\n"
           "  --depth N --width N  hidden layers and width (default 4 x 128; paper 8 x 512)\n"
           "  --batch N --iters N  (default 1024, 4000)\n"
           "  --lr X               lr_ref of lr_ref/sqrt(max(it/512,1)) (default 4e-3)\n"
           LR_SCHEDULE_HELP
           "  --seed N             init, data and noise seed (default 0)\n"
           "  --log-every N        (default 100)\n" TOY_DEVICE_HELP);
}

static void help_flow(void) {
    printf("usage: train --model toy-flow --store DIR --out DIR [options]\n"
           "Trains the 2D toy flow model (z_t, t) -> v by flow matching on z = mu + sigma*eps\n"
           "drawn afresh each step from the store's moments, normalised by the store's stats.\n"
           "Writes DIR/config.json, DIR/log.jsonl, DIR/flow.safetensors.\n"
           "  --depth N --width N  (default 4 x 128; paper 8 x 512)\n"
           "  --batch N --iters N  (default 1024, 10000)\n"
           "  --lr X               lr_ref (default 4e-3)\n"
           LR_SCHEDULE_HELP
           "  --time uniform|logit-normal|late   t sampling (default uniform, as the paper;\n"
           "                       logit-normal(0,1); late: t = 1-(1-u)^2, more steps near t = 1)\n"
           "  --time-embed raw|fourier      time input: t itself (default) or K sin/cos pairs\n"
           "                       sin(w_k t), cos(w_k t), w_k = 1000 * 10000^(-k/K)\n"
           "                       (recorded in the checkpoint; sample builds the same model)\n"
           "  --time-freqs K       Fourier frequencies (default %d, 1..%d)\n"
           "  --ema B              save an exponential moving average of the weights,\n"
           "                       ema += (1-B) (w - ema) after every step, from the initial\n"
           "                       weights (e.g. 0.999; default 0: the raw weights); the raw\n"
           "                       final weights then also go to DIR/flow-noema.safetensors\n"
           "  --save-every N       also write DIR/flow-itN.safetensors every N steps (under\n"
           "                       inv-sqrt the schedule does not depend on --iters, so a\n"
           "                       snapshot is the model a run of N iterations gives; not\n"
           "                       so under cosine; default 0: off)\n"
           "  --seed N             (default 0)\n"
           "  --log-every N        (default 100)\n" TOY_DEVICE_HELP, TOY_FOURIER_DEFAULT, TOY_FOURIER_MAX);
}

// Parses the flags of both models; returns 0, 1 for --help, 2 on a bad flag.
static int parse(int argc, char **argv, train_opts *o, int flow) {
    *o = (train_opts){.depth = 4, .width = 128, .batch = 1024, .iters = flow ? 10000 : 4000,
                      .log_every = 100, .lr = 4e-3f, .beta1 = 0.9f, .beta2 = 0.99f, .decay = LR_INV_SQRT,
                      .time_embed = TOY_TIME_RAW, .time_freqs = TOY_FOURIER_DEFAULT};
    o->tok = (toy_tok_cfg){.reg = TOY_REG_KL, .kl_weight = 1e-6f, .lambda_ve = 1e-3f,
                           .lambda_reg = 1.0f, .tau = 1.0f, .delta = 1e-6f,
                           .ve_form = VE_INV_VAR, .reg_global = 1};
    static const char *const REGS[] = {"kl", "ve", NULL}, *const REG_FORMS[] = {"global", "elem", NULL};
    static const char *const EMBEDS[] = {"raw", "fourier", NULL};   // toy_time_embed order
    int reg = TOY_REG_KL, ve_form = VE_INV_VAR, reg_form = 0, embed = TOY_TIME_RAW, help_asked;
    const char *sched_name = NULL;
    const flag_spec F[] = {
        FLAG_STR_("out", &o->out), FLAG_STR_("store", &o->store), FLAG_CHOICE_("reg", &reg, REGS),
        FLAG_F32_("kl-weight", &o->tok.kl_weight, 0, INFINITY, 0),
        FLAG_F32_("lambda-ve", &o->tok.lambda_ve, 0, INFINITY, 0),
        FLAG_F32_("lambda-reg", &o->tok.lambda_reg, 0, INFINITY, 0),
        FLAG_F32_("tau", &o->tok.tau, -INFINITY, INFINITY, 0), FLAG_F32_("delta", &o->tok.delta, 0, INFINITY, 0),
        FLAG_CHOICE_("ve-form", &ve_form, VE_FORMS), FLAG_CHOICE_("reg-form", &reg_form, REG_FORMS),
        FLAG_INT_("depth", &o->depth, 0, TOY_MAX_LAYERS - 1), FLAG_INT_("width", &o->width, 1, TRAIN_TOY_MAX_WIDTH),
        FLAG_INT_("batch", &o->batch, 1, TRAIN_TOY_MAX_BATCH), FLAG_INT_("iters", &o->iters, 0, INT_MAX),
        FLAG_F32_("lr", &o->lr, 0, INFINITY, FLAG_OPEN_LO), FLAG_INT_("seed", &o->seed, INT_MIN, INT_MAX),
        FLAG_INT_("log-every", &o->log_every, 1, INT_MAX), FLAG_CHOICE_("time", &o->time_mode, TIME_MODES),
        FLAG_CHOICE_("time-embed", &embed, EMBEDS), FLAG_INT_("time-freqs", &o->time_freqs, 1, TOY_FOURIER_MAX),
        FLAG_INT_("save-every", &o->save_every, 0, INT_MAX), FLAG_F64_("ema", &o->ema, 0, 1, FLAG_OPEN_HI),
        FLAG_STR_("lr-schedule", &sched_name),
        FLAG_STR_("device", &o->device)};
    if (flag_parse(STAGE, argc, argv, F, FLAG_COUNT(F), &help_asked, NULL)) return 2;
    if (help_asked) return 1;
    o->tok.reg = (toy_reg)reg;
    o->tok.ve_form = (ve_kind)ve_form;   // VE_FORMS is in ve_kind order
    o->tok.reg_global = reg_form == 0;
    o->time_embed = (toy_time_embed)embed;
    lr_decay decay;   // nn/schedule.h's names (inv-sqrt and inv_sqrt both accepted)
    if (sched_name && lr_decay_parse(sched_name, &decay)) {
        fprintf(stderr, "train: --lr-schedule must be inv-sqrt, cosine or constant, not '%s'\n", sched_name);
        return 2;
    }
    if (sched_name) o->decay = decay;
    if (!o->out) { fprintf(stderr, "train: --out DIR is required\n"); return 2; }
    if (flow && !o->store) { fprintf(stderr, "train: --store DIR is required for toy-flow\n"); return 2; }
    lr_schedule sc = toy_schedule(o);
    if (o->decay == LR_COSINE && o->iters < 1) {
        fprintf(stderr, "train: --lr-schedule cosine needs --iters >= 1\n");
        return 2;
    }
    const char *why = NULL;
    if (lr_schedule_check(&sc, &why)) { fprintf(stderr, "train: bad learning-rate schedule: %s\n", why); return 2; }
    return 0;
}

// --device: cpu, or cuda when this build has CUDA and a GPU is there (its
// context becomes this thread's). 0, or 2 after printing why.
static int open_device(const train_opts *o, device_kind *kind) {
    *kind = DEVICE_CPU;
    if (!o->device) return 0;
    int index;
    if (flag_device(STAGE, o->device, kind, &index)) return 2;
    char msg[512];
    if (*kind == DEVICE_CUDA && device_activate(*kind, index, msg, sizeof msg)) {   // says what is missing
        fprintf(stderr, "train: %s\n", msg);   // msg names the flag
        return 2;
    }
    return 0;
}

// After a non-finite loss: a GPU failure (err, from the model) or divergence.
static void report_bad_loss(int err, int it) {
    if (err) fprintf(stderr, "\ntrain: on the GPU at iteration %d: %s\n", it, vel_errmsg(err));
    else fprintf(stderr, "\ntrain: loss is not finite at iteration %d (lr too high?)\n", it);
}

static cJSON *config_json(const train_opts *o, const char *model) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", model);
    cJSON_AddNumberToObject(j, "depth", o->depth);
    cJSON_AddNumberToObject(j, "width", o->width);
    cJSON_AddNumberToObject(j, "batch", o->batch);
    cJSON_AddNumberToObject(j, "iters", o->iters);
    cJSON_AddNumberToObject(j, "lr_ref", o->lr);
    cJSON_AddNumberToObject(j, "beta1", o->beta1);
    cJSON_AddNumberToObject(j, "beta2", o->beta2);
    cJSON_AddNumberToObject(j, "seed", o->seed);
    if (o->device && strcmp(o->device, "cpu")) cJSON_AddStringToObject(j, "device", o->device);
    static const char *const FORMULA[] = {"lr_ref", "lr_ref/sqrt(max(it/512,1))", "lr_ref*(1+cos(pi*it/iters))/2"};
    cJSON_AddStringToObject(j, "lr_schedule", FORMULA[o->decay]);
    if (o->save_every) cJSON_AddNumberToObject(j, "save_every", o->save_every);
    if (o->ema > 0) cJSON_AddNumberToObject(j, "ema", o->ema);
    if (!strcmp(model, "toy-tokenizer")) {
        cJSON_AddStringToObject(j, "reg", o->tok.reg == TOY_REG_KL ? "kl" : "ve");
        if (o->tok.reg == TOY_REG_KL) {
            cJSON_AddNumberToObject(j, "kl_weight", o->tok.kl_weight);
        } else {
            cJSON_AddNumberToObject(j, "lambda_ve", o->tok.lambda_ve);
            cJSON_AddNumberToObject(j, "lambda_reg", o->tok.lambda_reg);
            cJSON_AddNumberToObject(j, "tau", o->tok.tau);
            cJSON_AddNumberToObject(j, "delta", o->tok.delta);
            cJSON_AddStringToObject(j, "ve_form", VE_FORMS[o->tok.ve_form]);
            cJSON_AddStringToObject(j, "reg_form", o->tok.reg_global ? "global" : "elem");
        }
    } else {
        cJSON_AddStringToObject(j, "store", o->store);
        cJSON_AddStringToObject(j, "time", TIME_MODES[o->time_mode]);
        cJSON_AddStringToObject(j, "time_embed", toy_time_embed_name(o->time_embed));
        if (o->time_embed == TOY_TIME_FOURIER) cJSON_AddNumberToObject(j, "time_freqs", o->time_freqs);
    }
    return j;
}

static FILE *open_run(const train_opts *o, const char *model) {
    if (stage_mkdir_p(STAGE, o->out)) return NULL;
    char path[1200];
    snprintf(path, sizeof path, "%s/config.json", o->out);
    cJSON *j = config_json(o, model);
    int rc = write_json(path, j);
    char *s = cJSON_PrintUnformatted(j);
    fprintf(stderr, "[train %s] config %s\n", model, s);
    free(s);
    cJSON_Delete(j);
    if (rc) { fprintf(stderr, "train: cannot write %s\n", path); return NULL; }
    snprintf(path, sizeof path, "%s/log.jsonl", o->out);
    FILE *log = fopen(path, "w");
    if (!log) fprintf(stderr, "train: cannot write %s: %s\n", path, strerror(errno));
    return log;
}

int train_toy_tokenizer_main(int argc, char **argv) {
    train_opts o;
    int rc = parse(argc, argv, &o, 0);
    if (rc == 1) { help_tok(); return 0; }
    if (rc) return 2;
    device_kind dev;
    if ((rc = open_device(&o, &dev))) return rc;
    FILE *log = open_run(&o, "toy-tokenizer");
    if (!log) { device_release(); return 1; }
    toy_gmm *g = NULL;
    toy_tok *t = NULL, *host = NULL;   // host: the copy a GPU run saves
    optim *opt = NULL;
    optim_config oc = optim_defaults(OPTIM_ADAM);
    oc.beta1 = o.beta1, oc.beta2 = o.beta2, oc.eps = 1e-8;
    lr_schedule sched = toy_schedule(&o);
    float *x = malloc(sizeof(float) * 2 * o.batch), *eps = malloc(sizeof(float) * 2 * o.batch);
    if (!x || !eps || toy_gmm_build(&g, "A") || toy_tok_create(&t, o.depth, o.width, o.batch)) {
        fprintf(stderr, "train: out of memory\n");
        rc = 1;
        goto done;
    }
    toy_tok_init(t, (uint32_t)o.seed);
    // On the GPU the model moves first, so the Adam state is created there.
    int e = dev == DEVICE_CUDA ? toy_tok_to_device(t, dev) : 0;
    if (!e && dev == DEVICE_CUDA) e = toy_tok_create(&host, o.depth, o.width, 1);
    if (e) {
        fprintf(stderr, "train: placing the model on the GPU: %s\n", vel_errmsg(e));
        rc = 1;
        goto done;
    }
    if ((e = optim_create(&opt, &t->pt, &oc))) {
        fprintf(stderr, "train: creating the optimizer: %s\n", vel_errmsg(e));
        rc = 1;
        goto done;
    }
    mt19937 data_rng, noise_rng;
    mt_seed(&data_rng, 1000u + (uint32_t)o.seed);
    mt_seed(&noise_rng, 2000u + (uint32_t)o.seed);
    double t0 = vel_now();
    toy_tok_losses acc = {0};
    int nacc = 0;
    for (int it = 0; it < o.iters; it++) {
        toy_gmm_sample(g, &data_rng, x, o.batch);
        for (int i = 0; i < 2 * o.batch; i++) eps[i] = (float)mt_randn(&noise_rng);
        toy_tok_losses L = toy_tok_loss_backward(t, &o.tok, x, eps, o.batch);
        if (!isfinite(L.total)) {
            report_bad_loss(t->err, it);
            rc = 1;
            goto done;
        }
        double lr = lr_at(&sched, it);
        optim_step(opt, &t->pt, lr);
        acc.total += L.total, acc.rec += L.rec, acc.kl += L.kl, acc.ve += L.ve, acc.reg += L.reg;
        nacc++;
        if ((it + 1) % o.log_every == 0 || it + 1 == o.iters) {
            double ms, rms;
            if ((e = toy_tok_latent_stats(t, o.batch, &ms, &rms))) {
                fprintf(stderr, "\ntrain: reading the latents back from the GPU: %s\n", vel_errmsg(e));
                rc = 1;
                goto done;
            }
            fprintf(log, "{\"it\":%d,\"lr\":%.6g,\"loss\":%.6g,\"rec\":%.6g,\"kl\":%.6g,\"ve\":%.6g,"
                         "\"reg\":%.6g,\"mean_sigma\":%.6g,\"rms_mu\":%.6g}\n",
                    it + 1, lr, acc.total / nacc, acc.rec / nacc, acc.kl / nacc, acc.ve / nacc,
                    acc.reg / nacc, ms, rms);
            fflush(log);
            double el = vel_now() - t0;
            fprintf(stderr, "%s[train toy-tokenizer] it %d/%d loss %.4g rec %.4g %.0f it/s%s", progress_start(stderr),
                    it + 1, o.iters, acc.total / nacc, acc.rec / nacc, (it + 1) / (el > 0 ? el : 1e-9),
                    progress_end(stderr));
            acc = (toy_tok_losses){0};
            nacc = 0;
        }
    }
    fprintf(stderr, "%s", progress_done(stderr));
    // a GPU run: the last step's failures, then its weights into the host copy
    if (dev == DEVICE_CUDA && ((e = nn_sync()) ||
                               (e = device_copy(host->pt.values, t->pt.values, sizeof(float) * (size_t)t->pt.total)))) {
        fprintf(stderr, "train: on the GPU: %s\n", vel_errmsg(e));
        rc = 1;
        goto done;
    }
    char path[1200], num[6][32];
    snprintf(path, sizeof path, "%s/tokenizer.safetensors", o.out);
    snprintf(num[0], 32, "%g", o.tok.kl_weight);
    snprintf(num[1], 32, "%g", o.tok.lambda_ve);
    snprintf(num[2], 32, "%g", o.tok.lambda_reg);
    snprintf(num[3], 32, "%g", o.tok.tau);
    snprintf(num[4], 32, "%g", o.tok.delta);
    snprintf(num[5], 32, "%d", o.iters);
    st_kv kv[] = {{"reg", o.tok.reg == TOY_REG_KL ? "kl" : "ve"}, {"kl_weight", num[0]},
                   {"lambda_ve", num[1]}, {"lambda_reg", num[2]}, {"tau", num[3]},
                   {"delta", num[4]}, {"iters", num[5]}, {"ve_form", VE_FORMS[o.tok.ve_form]},
                   {"reg_form", o.tok.reg_global ? "global" : "elem"}};
    int se = toy_ckpt_save(path, host ? &host->pt : &t->pt, "toy-tokenizer", o.depth, o.width, kv, 9);
    if (se) {
        fprintf(stderr, "train: cannot save checkpoint: %s\n", vel_errmsg(se));
        rc = 1;
        goto done;
    }
    fprintf(stderr, "[train toy-tokenizer] wrote %s (%.1f s)\n", path, vel_now() - t0);
done:
    fclose(log);
    free(x);
    free(eps);
    optim_destroy(&opt);
    toy_tok_destroy(&t);
    toy_tok_destroy(&host);
    toy_gmm_destroy(&g);
    device_release();
    return rc;
}

// Saves the weights w (the model's raw ones, or an EMA of them; on the host
// or the GPU, where the model lives) through host, a host model of the same
// architecture, so every run writes its checkpoints the same way.
static int flow_save_weights(const char *path, toy_flow *host, const float *w, const st_kv *kv, int nkv) {
    int e = device_copy(host->pt.values, w, sizeof(float) * (size_t)host->pt.total);
    return e ? e : toy_flow_save(path, host, kv, nkv);
}

static int train_toy_flow(const train_opts *op, device_kind dev);

int train_toy_flow_main(int argc, char **argv) {
    train_opts o;
    int rc = parse(argc, argv, &o, 1);
    if (rc == 1) { help_flow(); return 0; }
    if (rc) return 2;
    device_kind dev;
    if ((rc = open_device(&o, &dev))) return rc;
    rc = train_toy_flow(&o, dev);
    device_release();
    return rc;
}

static int train_toy_flow(const train_opts *op, device_kind dev) {
    const train_opts o = *op;
    int rc, e;
    store *st = NULL;
    int64_t shape[3] = {2, 1, 1};
    rc = store_open(&st, o.store, NULL, NULL, NULL);
    if (rc) {
        fprintf(stderr, "train: cannot open store %s: %s (%s)\n", o.store, vel_strerror(rc),
                vel_error_detail());
        return vel_exit_code(rc);
    }
    const store_meta *meta = store_get_meta(st);
    if (meta->shape[0] != shape[0] || meta->shape[1] != 1 || meta->shape[2] != 1) {
        fprintf(stderr, "train: store %s holds latents of shape (%lld,%lld,%lld); the toy flow needs (2,1,1)\n",
                o.store, (long long)meta->shape[0], (long long)meta->shape[1], (long long)meta->shape[2]);
        store_close(&st);
        return 1;
    }
    if (!meta->has_stats) {
        fprintf(stderr, "train: store %s has no latent statistics (run encode to the end)\n", o.store);
        store_close(&st);
        return 1;
    }
    uint64_t N = 0;
    if ((rc = store_count(st, &N)) || N == 0) {
        fprintf(stderr, "train: store %s is empty or unreadable\n", o.store);
        store_close(&st);
        return 1;
    }
    FILE *log = open_run(&o, "toy-flow");
    if (!log) { store_close(&st); return 1; }
    float *mu = malloc(sizeof(float) * 2 * N), *sg = malloc(sizeof(float) * 2 * N);
    uint64_t *idx = malloc(sizeof(uint64_t) * N);
    float *z = malloc(sizeof(float) * 2 * o.batch), *x0 = malloc(sizeof(float) * 2 * o.batch);
    float *tt = malloc(sizeof(float) * o.batch);
    toy_flow *f = NULL, *host = NULL;   // host: the copy checkpoints are written from
    ema *gema = NULL;    // --ema on the GPU: nn/ema.h's shadow on the device
    float *ema = NULL;   // --ema on the CPU: the EMA weights (after gema: it hides the type)
    optim *opt = NULL;
    optim_config oc = optim_defaults(OPTIM_ADAM);
    oc.beta1 = o.beta1, oc.beta2 = o.beta2, oc.eps = 1e-8;
    lr_schedule sched = toy_schedule(&o);
    rc = 1;
    if (!mu || !sg || !idx || !z || !x0 || !tt || toy_flow_create(&f, o.depth, o.width, o.batch, o.time_embed, o.time_freqs) ||
        toy_flow_create(&host, o.depth, o.width, 1, o.time_embed, o.time_freqs)) {
        fprintf(stderr, "train: out of memory\n");
        goto done;
    }
    for (uint64_t i = 0; i < N; i++) idx[i] = i;
    e = store_read_batch(st, mu, sg, NULL, idx, NULL, N);
    if (e) {
        fprintf(stderr, "train: reading store %s: %s (%s)\n", o.store, vel_strerror(e), vel_error_detail());
        goto done;
    }
    toy_flow_init(f, (uint32_t)o.seed);
    // On the GPU the model moves first, so Adam state and EMA are created there.
    if (dev == DEVICE_CUDA && (e = toy_flow_to_device(f, dev))) {
        fprintf(stderr, "train: placing the model on the GPU: %s\n", vel_errmsg(e));
        goto done;
    }
    if ((e = optim_create(&opt, &f->pt, &oc))) {
        fprintf(stderr, "train: creating the optimizer: %s\n", vel_errmsg(e));
        goto done;
    }
    if (o.ema > 0 && dev == DEVICE_CUDA && (e = ema_create(&gema, &f->pt))) {
        fprintf(stderr, "train: creating the EMA on the GPU: %s\n", vel_errmsg(e));
        goto done;
    }
    if (o.ema > 0 && dev == DEVICE_CPU) {
        ema = malloc(sizeof(float) * f->pt.total);
        if (!ema) { fprintf(stderr, "train: out of memory\n"); goto done; }
        memcpy(ema, f->pt.values, sizeof(float) * f->pt.total);
    }
    // the weights a checkpoint holds: the EMA's when there is one
    const float *saved = gema ? gema->shadow : ema;
    mt19937 rng;
    mt_seed(&rng, 3000u + (uint32_t)o.seed);
    double t0 = vel_now(), acc = 0;
    int nacc = 0;
    for (int it = 0; it < o.iters; it++) {
        for (int i = 0; i < o.batch; i++) {
            uint64_t k = (uint64_t)(mt_random_sample(&rng) * (double)N);
            if (k >= N) k = N - 1;
            for (int d = 0; d < 2; d++) z[2 * i + d] = mu[2 * k + d] + sg[2 * k + d] * (float)mt_randn(&rng);
            for (int d = 0; d < 2; d++) x0[2 * i + d] = (float)mt_randn(&rng);
            double u;
            if (o.time_mode == 1) u = 1.0 / (1.0 + exp(-mt_randn(&rng)));
            else if (o.time_mode == 2) u = 1.0 - pow(1.0 - mt_random_sample(&rng), 2.0);
            else u = mt_random_sample(&rng);
            tt[i] = (float)u;
        }
        store_normalise(z, z, meta, o.batch);
        double l = toy_flow_loss_backward(f, z, x0, tt, o.batch);
        if (!isfinite(l)) {
            report_bad_loss(f->err, it);
            goto done;
        }
        double lr = lr_at(&sched, it);
        optim_step(opt, &f->pt, lr);
        if (ema) {
            float a = (float)(1.0 - o.ema);
            for (int64_t i = 0; i < f->pt.total; i++) ema[i] += a * (f->pt.values[i] - ema[i]);
        }
        // the GPU's EMA is nn/ema.h's shadow d + w (1 - d) in fp32: the same
        // average as the CPU's ema += (1-d)(w - ema) up to rounding (the CPU
        // keeps its formula so its runs stay bit-identical to earlier ones)
        if (gema) ema_update(gema, &f->pt, o.ema);
        acc += l;
        nacc++;
        if (o.save_every > 0 && (it + 1) % o.save_every == 0 && it + 1 < o.iters) {
            char sp[1200], sn[32];
            snprintf(sp, sizeof sp, "%s/flow-it%d.safetensors", o.out, it + 1);
            snprintf(sn, sizeof sn, "%d", it + 1);
            st_kv skv[] = {{"tokenizer_hash", meta->tokenizer_hash}, {"iters", sn},
                            {"time", TIME_MODES[o.time_mode]}};
            int se = flow_save_weights(sp, host, saved ? saved : f->pt.values, skv, 3);
            if (se) {
                fprintf(stderr, "\ntrain: cannot save snapshot: %s\n", vel_errmsg(se));
                goto done;
            }
        }
        if ((it + 1) % o.log_every == 0 || it + 1 == o.iters) {
            fprintf(log, "{\"it\":%d,\"lr\":%.6g,\"loss\":%.6g}\n", it + 1, lr, acc / nacc);
            fflush(log);
            double el = vel_now() - t0;
            fprintf(stderr, "%s[train toy-flow] it %d/%d loss %.4g %.0f it/s%s", progress_start(stderr), it + 1, o.iters,
                    acc / nacc, (it + 1) / (el > 0 ? el : 1e-9), progress_end(stderr));
            acc = 0;
            nacc = 0;
        }
    }
    fprintf(stderr, "%s", progress_done(stderr));
    if (dev == DEVICE_CUDA && (e = nn_sync())) {   // the last step's failures
        fprintf(stderr, "train: on the GPU: %s\n", vel_errmsg(e));
        goto done;
    }
    char path[1200], n1[32];
    snprintf(path, sizeof path, "%s/flow.safetensors", o.out);
    snprintf(n1, sizeof n1, "%d", o.iters);
    st_kv kv[] = {{"tokenizer_hash", meta->tokenizer_hash}, {"iters", n1},
                   {"time", TIME_MODES[o.time_mode]}};
    if (saved) {
        snprintf(path, sizeof path, "%s/flow-noema.safetensors", o.out);
        int se = flow_save_weights(path, host, f->pt.values, kv, 3);
        if (se) {
            fprintf(stderr, "train: cannot save checkpoint: %s\n", vel_errmsg(se));
            goto done;
        }
        snprintf(path, sizeof path, "%s/flow.safetensors", o.out);
    }
    int se = flow_save_weights(path, host, saved ? saved : f->pt.values, kv, 3);
    if (se) {
        fprintf(stderr, "train: cannot save checkpoint: %s\n", vel_errmsg(se));
        goto done;
    }
    fprintf(stderr, "[train toy-flow] wrote %s (%.1f s)\n", path, vel_now() - t0);
    rc = 0;
done:
    fclose(log);
    free(mu); free(sg); free(idx); free(z); free(x0); free(tt);
    free(ema);
    ema_destroy(&gema);
    optim_destroy(&opt);
    toy_flow_destroy(&f);
    toy_flow_destroy(&host);
    store_close(&st);
    return rc;
}
