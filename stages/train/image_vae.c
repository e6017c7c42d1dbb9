// image_vae.c: `train --model vae`, the image tokenizer on Fashion-MNIST
// (default, 1 channel) or on the colour photo bank (--dataset photos, 3
// channels; data/photos.h: split by photo, random 32x32 crops + flips)
// (SPEC section 3): L1 reconstruction + beta*KL (--reg kl) or the VE terms
// (--reg ve), Adam (0.5, 0.9); optionally LDM's PatchGAN hinge discriminator
// (--disc-weight > 0, models/patchgan.h). Writes into --out: config.json,
// log.jsonl (one line per logged step), vae.safetensors +
// vae.optim.safetensors (exact resume with --resume; metadata vae.config,
// vae.reg, vae.in_ch, vae.dataset), disc.safetensors + disc.optim.safetensors
// with the GAN, recon.png (test images over their reconstructions through mu),
// heldout.json for the photos (PSNR/SSIM through mu of the held-out photos'
// fixed 32x32 tiles and a small robustness probe) and a last line with
// throughput: CPU seconds per 1000 training images and the step's GFLOP/s
// (its share of sgemm is measured by bench/bench_vae).
// Not here: the batch order (data/batcher.h), the held-out scores
// (metrics/vae_recon.h) and the probe's latents (models/vae_probe.h).
//
// GAN step (LDM's LPIPSWithDiscriminator without LPIPS; models/vae_gan.h),
// from --disc-start on:
//   generator: loss = rec + reg + d_weight * g_loss, g_loss = -mean(D(xrec)),
//     d_weight = disc_weight * clamp(||dRec/dW|| / (||dG/dW|| + 1e-4), 0, 1e4)
//     with W = decoder.conv_out.weight (the gradient of the regulariser does
//     not reach W, so dRec/dW is the L1 term's); computed as two backward
//     passes combined: grads = G_rec + d_weight * G_gan.
//   discriminator: 0.5*(mean(relu(1 - D(x))) + mean(relu(1 + D(xrec)))),
//     its own Adam (0.5, 0.9) at --disc-lr; D sees real and fake as two
//     batches (two BatchNorm batches), as LDM's two calls.
// Differences from LDM: the discriminator step reuses the generator step's
// reconstruction (LDM's Lightning loop re-runs the autoencoder after the
// generator update), and before --disc-start neither the discriminator nor
// its BatchNorm running statistics move (LDM multiplies by 0 but still runs).
//
// Determinism: the batch of step s and its noise depend only on (seed, s):
// a Philox-drawn permutation per epoch (photos: Philox crops at offset s)
// and Philox normals at offset s, so a resumed run continues bit-identically.
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "core/base.h"
#include "data/batcher.h"
#include "data/idx.h"
#include "data/image_io.h"
#include "data/photo_tiles.h"
#include "data/photos.h"
#include "metrics/vae_recon.h"
#include "models/vae.h"
#include "models/vae_probe.h"
#include "models/vae_trainer.h"
#include "stages/common/flags.h"
#include "stages/common/progress.h"
#include "stages/common/recon_grid.h"
#include "stages/train/train.h"

typedef struct {
    const char *out, *config, *data_dir;
    int batch, steps, log_every, ckpt_every, resume;
    double lr;
    uint64_t seed;
    vae_loss_cfg loss;
    int photos, photo_base;          // --dataset photos, --photo-base
    double disc_weight, disc_lr;     // disc_lr 0: = lr
    int disc_start, disc_ndf, disc_layers;
} vae_opts;

static const char STAGE[] = "train";
// Bound: the batch's activations (and the discriminator's) are held at once.
enum { TRAIN_VAE_MAX_BATCH = 4096 };

static void help(void) {
    printf("usage: train --model vae --out DIR [options]\n"
           "Trains the conv VAE tokenizer on Fashion-MNIST (train split, 32x32, [-1,1]) or on\n"
           "the colour photo bank.\n"
           "  --dataset NAME     fashion-mnist (default, 1 channel) or photos (3 channels: random\n"
           "                     32x32 crops + flips of the training photos reduced to --photo-base;\n"
           "                     every 4th photo by name is held out, see data/photos.h)\n"
           "  --photo-base N     side the photos are reduced to before cropping (default 128)\n"
           "  --config NAME      f4c4 (default), f4c8, f8c4\n"
           "  --reg kl|ve        regulariser (default kl)\n"
           "  --recon-reduction sum|mean   L1 reconstruction reduction (default sum: LDM's, summed\n"
           "                     over C*H*W per image, batch mean, so --beta means what it does in\n"
           "                     LDM; mean: over all pixels, the old convention, --beta then weighs\n"
           "                     the KL C*H*W times more). The KL is summed per image, batch mean,\n"
           "                     under both; --lambda-ve/--lambda-reg weigh their per-element means\n"
           "                     against the per-pixel mean L1 under both (docs/FORMULAS.md 1)\n"
           "  --beta X           KL weight (default 1e-6, LDM/VA-VAE)\n"
           "  --lambda-ve X      VE weight (default 1e-3)      --delta X  (default 1e-6)\n"
           "  --ve-form inv|negvar|neglogstd   VE term form (default inv, the paper's (iii))\n"
           "  --mag none|elem|global           magnitude regulariser (default global)\n"
           "  --lambda-reg X     (default 1.0)  --tau X  (default 3.0)\n"
           "  --batch N (16)  --steps N (1000)  --lr X (1e-4)  --seed N (0)\n"
           "  --log-every N (10)  --ckpt-every N (500)  --resume (continue from DIR/vae)\n"
           "  --disc-weight X    PatchGAN hinge discriminator weight (default 0 = off; LDM 0.5)\n"
           "  --disc-start N     step from which the GAN losses are used (default 0)\n"
           "  --disc-lr X        discriminator Adam (0.5, 0.9) learning rate (default = --lr)\n"
           "  --disc-ndf N (64)  --disc-layers N (3)   discriminator width and depth\n"
           "  --data DIR         Fashion-MNIST folder (default %s)\n"
           DEVICE_HELP
           "Writes DIR/config.json, DIR/log.jsonl, DIR/vae.safetensors, DIR/vae.optim.safetensors,\n"
           "DIR/recon.png; with the GAN DIR/disc.safetensors, DIR/disc.optim.safetensors; with\n"
           "--dataset photos DIR/heldout.json (held-out photo tiles: PSNR/SSIM through mu, probe).\n",
           FMNIST_DEFAULT_DIR);
}

static const char *const VE_NAMES[] = {"inv", "negvar", "neglogstd", NULL};
static const char *const MAG_NAMES[] = {"none", "elem", "global", NULL};
static const char *const RECON_NAMES[] = {"sum", "mean", NULL};   // vae_recon order

static int parse(int argc, char **argv, vae_opts *o) {
    memset(o, 0, sizeof *o);
    o->config = "f4c4";
    o->batch = 16; o->steps = 1000; o->log_every = 10; o->ckpt_every = 500;
    o->lr = 1e-4;
    o->photo_base = 128;
    o->disc_ndf = 64;
    o->disc_layers = 3;
    o->loss = (vae_loss_cfg){.reg = VAE_REG_KL, .beta = 1e-6f, .ve = VE_INV_VAR,
                             .lambda_ve = 1e-3f, .delta = 1e-6f, .mag = VAE_MAG_GLOBAL,
                             .lambda_reg = 1.0f, .tau = 3.0f};
    static const char *const DATASETS[] = {"fashion-mnist", "photos", NULL}, *const REGS[] = {"kl", "ve", NULL};
    int reg = VAE_REG_KL, ve = VE_INV_VAR, mag = VAE_MAG_GLOBAL, recon = VAE_RECON_SUM, help_asked;
    const flag_spec F[] = {
        FLAG_STR_("out", &o->out), FLAG_STR_("config", &o->config), FLAG_CHOICE_("reg", &reg, REGS),
        FLAG_CHOICE_("recon-reduction", &recon, RECON_NAMES),
        FLAG_F32_("beta", &o->loss.beta, 0, INFINITY, 0), FLAG_F32_("lambda-ve", &o->loss.lambda_ve, 0, INFINITY, 0),
        FLAG_F32_("delta", &o->loss.delta, 0, INFINITY, 0), FLAG_CHOICE_("ve-form", &ve, VE_NAMES),
        FLAG_CHOICE_("mag", &mag, MAG_NAMES), FLAG_F32_("lambda-reg", &o->loss.lambda_reg, 0, INFINITY, 0),
        FLAG_F32_("tau", &o->loss.tau, -INFINITY, INFINITY, 0), FLAG_INT_("batch", &o->batch, 1, TRAIN_VAE_MAX_BATCH),
        FLAG_INT_("steps", &o->steps, 0, INT_MAX), FLAG_F64_("lr", &o->lr, 0, INFINITY, FLAG_OPEN_LO),
        FLAG_U64_("seed", &o->seed), FLAG_INT_("log-every", &o->log_every, 1, INT_MAX),
        FLAG_INT_("ckpt-every", &o->ckpt_every, 1, INT_MAX), FLAG_BOOL_("resume", &o->resume),
        FLAG_STR_("data", &o->data_dir), FLAG_CHOICE_("dataset", &o->photos, DATASETS),
        FLAG_INT_("photo-base", &o->photo_base, 32, 4096), FLAG_F64_("disc-weight", &o->disc_weight, 0, INFINITY, 0),
        FLAG_INT_("disc-start", &o->disc_start, 0, INT_MAX), FLAG_F64_("disc-lr", &o->disc_lr, 0, INFINITY, 0),
        FLAG_INT_("disc-ndf", &o->disc_ndf, 1, 4096), FLAG_INT_("disc-layers", &o->disc_layers, 1, 3), FLAG_DEVICE_};
    if (flag_parse(STAGE, argc, argv, F, FLAG_COUNT(F), &help_asked, NULL)) return 2;
    if (help_asked) return 1;
    o->loss.reg = (vae_reg)reg;
    o->loss.ve = (ve_kind)ve;      // VE_NAMES is in ve_kind order
    o->loss.mag = (vae_mag)mag;    // MAG_NAMES in vae_mag order
    o->loss.recon = (vae_recon)recon;
    if (!o->out) { fprintf(stderr, "train: --out DIR is required\n"); return 2; }
    if (o->photo_base % 32) {
        fprintf(stderr, "train: --photo-base must be a multiple of 32 in 32..4096\n");
        return 2;
    }
    if (o->photos && o->data_dir) {
        fprintf(stderr, "train: --data is the Fashion-MNIST folder; the photos come from %s\n",
                PHOTOS_DEFAULT_DIR);
        return 2;
    }
    return 0;
}


static int write_config(const vae_opts *o, const vae_config *vc, int64_t nparams) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", "vae");
    cJSON_AddStringToObject(j, "config", vc->name);
    cJSON_AddNumberToObject(j, "ch", vc->ch);
    cJSON_AddNumberToObject(j, "nlevels", vc->nlevels);
    cJSON_AddNumberToObject(j, "num_res_blocks", vc->num_res_blocks);
    cJSON_AddNumberToObject(j, "z_channels", vc->z_channels);
    cJSON_AddNumberToObject(j, "parameters", (double)nparams);
    cJSON_AddNumberToObject(j, "in_ch", vc->in_ch);
    cJSON_AddStringToObject(j, "dataset", o->photos ? "photos" : "fashion-mnist");
    if (o->photos) {
        cJSON_AddStringToObject(j, "data", PHOTOS_DEFAULT_DIR);
        cJSON_AddNumberToObject(j, "photo_base", o->photo_base);
        cJSON_AddNumberToObject(j, "photo_test_every", PHOTOS_TEST_EVERY);
    } else {
        cJSON_AddStringToObject(j, "data", o->data_dir ? o->data_dir : FMNIST_DEFAULT_DIR);
    }
    cJSON_AddStringToObject(j, "reg", o->loss.reg == VAE_REG_KL ? "kl" : "ve");
    cJSON_AddStringToObject(j, "recon_reduction", RECON_NAMES[o->loss.recon]);
    if (o->loss.reg == VAE_REG_KL) {
        cJSON_AddNumberToObject(j, "beta", o->loss.beta);
    } else {
        cJSON_AddStringToObject(j, "ve_form", VE_NAMES[o->loss.ve]);
        cJSON_AddNumberToObject(j, "lambda_ve", o->loss.lambda_ve);
        cJSON_AddNumberToObject(j, "delta", o->loss.delta);
        cJSON_AddStringToObject(j, "mag", MAG_NAMES[o->loss.mag]);
        cJSON_AddNumberToObject(j, "lambda_reg", o->loss.lambda_reg);
        cJSON_AddNumberToObject(j, "tau", o->loss.tau);
    }
    cJSON_AddNumberToObject(j, "batch", o->batch);
    cJSON_AddNumberToObject(j, "steps", o->steps);
    cJSON_AddNumberToObject(j, "lr", o->lr);
    cJSON_AddNumberToObject(j, "adam_beta1", 0.5);
    cJSON_AddNumberToObject(j, "adam_beta2", 0.9);
    cJSON_AddNumberToObject(j, "seed", (double)o->seed);
    if (o->disc_weight > 0) {
        cJSON *d = cJSON_AddObjectToObject(j, "discriminator");
        cJSON_AddStringToObject(d, "kind", "patchgan-hinge");
        cJSON_AddNumberToObject(d, "ndf", o->disc_ndf);
        cJSON_AddNumberToObject(d, "n_layers", o->disc_layers);
        cJSON_AddNumberToObject(d, "weight", o->disc_weight);
        cJSON_AddNumberToObject(d, "start", o->disc_start);
        cJSON_AddNumberToObject(d, "lr", o->disc_lr > 0 ? o->disc_lr : o->lr);
    } else {
        cJSON_AddStringToObject(j, "discriminator", "none");
    }
    char *s = cJSON_Print(j);
    char path[1200];
    snprintf(path, sizeof path, "%s/config.json", o->out);
    FILE *f = fopen(path, "w");
    int rc = f ? 0 : -1;
    if (f) { fputs(s, f); fputc('\n', f); if (fclose(f)) rc = -1; }
    fprintf(stderr, "[train vae] config %s\n", s);
    free(s);
    cJSON_Delete(j);
    return rc;
}

// Held-out photo report (--dataset photos): the fixed 32x32 tiles of the
// test photos at the training base size, reconstructed through mu (PSNR and
// SSIM), the same for the training photos' tiles, and the robustness probe
// decode(mu + s*eps*latent_std) for s in 0.5, 1, 2 on the held-out tiles
// (latent_std per channel over their mu, eps Philox stream 9 of the seed).
static int write_heldout(vae *m, const vae_opts *o, const char *path) {
    photo_tiles test = {0}, train = {0};
    int prc = photo_tiles_load(NULL, o->photo_base, 32, PHOTOS_TEST, &test);
    if (!prc) prc = photo_tiles_load(NULL, o->photo_base, 32, PHOTOS_TRAIN, &train);
    if (prc) {
        fprintf(stderr, "train: held-out eval: %s\n", vel_errmsg(prc));
        photo_tiles_free(&test);
        return 1;
    }
    const int zc = m->cfg.z_channels, hw = m->zside * m->zside;
    float *mu = malloc(sizeof(float) * (size_t)(test.n * zc * hw));
    float *z = malloc(sizeof(float) * (size_t)m->Bmax * zc * hw);
    double *stdc = malloc(sizeof(double) * (size_t)zc);
    if (!mu || !z || !stdc) {
        fprintf(stderr, "train: held-out eval: out of memory\n");
        free(mu); free(z); free(stdc);
        photo_tiles_free(&test); photo_tiles_free(&train);
        return 1;
    }
    vae_recon_sums held = {0}, tr = {0}, probe[3] = {{0}};
    vae_recon_eval(m, test.imgs, test.n, mu, NULL, NULL, NULL, &held);
    vae_recon_eval(m, train.imgs, train.n, NULL, NULL, NULL, NULL, &tr);
    vae_latent_std(mu, test.n, zc, hw, stdc);
    static const double scales[3] = {0.5, 1, 2};
    for (int si = 0; si < 3; si++)
        vae_probe_eval(m, test.imgs, mu, test.n, scales[si], stdc, o->seed, 9, z, NULL, NULL, &probe[si]);
    const double ntest = (double)held.n, ntr = (double)tr.n;
    FILE *f = fopen(path, "w");
    int rc = 0;
    if (!f) { fprintf(stderr, "train: cannot write %s\n", path); rc = 1; }
    else {
        fprintf(f, "{\"heldout_photos\":[");
        int first = 1;
        for (int k = 0; k < test.nphotos; k++)
            if (photos_is_test(k)) { fprintf(f, "%s\"%s\"", first ? "" : ",", test.names[k]); first = 0; }
        fprintf(f, "],\"base\":%d,\"tile\":32,\"heldout_tiles\":%lld,\"heldout_psnr\":%.4f,"
                   "\"heldout_ssim\":%.5f,\"train_tiles\":%lld,\"train_psnr\":%.4f,\"train_ssim\":%.5f,"
                   "\"probe\":[",
                o->photo_base, (long long)held.n, held.psnr / ntest, held.ssim / ntest, (long long)tr.n,
                tr.n ? tr.psnr / ntr : NAN, tr.n ? tr.ssim / ntr : NAN);
        for (int si = 0; si < 3; si++)
            fprintf(f, "%s{\"scale\":%g,\"psnr\":%.4f,\"ssim\":%.5f}", si ? "," : "", scales[si],
                    probe[si].psnr / ntest, probe[si].ssim / ntest);
        fprintf(f, "],\"latent_std\":[");
        for (int c = 0; c < zc && c < 64; c++) fprintf(f, "%s%.5g", c ? "," : "", stdc[c]);
        fprintf(f, "]}\n");
        if (fclose(f)) rc = 1;
        fprintf(stderr, "[train vae] held-out photo tiles (%lld): PSNR %.3f SSIM %.4f; training photos' "
                        "tiles: PSNR %.3f SSIM %.4f\n",
                (long long)held.n, held.psnr / ntest, held.ssim / ntest, tr.n ? tr.psnr / ntr : NAN,
                tr.n ? tr.ssim / ntr : NAN);
    }
    free(mu); free(z); free(stdc);
    photo_tiles_free(&test); photo_tiles_free(&train);
    return rc;
}

// What one run holds; run_open fills it, run_close frees whatever is set.
typedef struct {
    vae_trainer *t;
    fmnist *train, *test;    // Fashion-MNIST, or
    photo_set *ptrain, *ptest;   // the photo bank's splits
    data_batcher bt;
    float *x;                // (B, C, 32, 32)
    int64_t *idx;            // (B)
    FILE *log;
    char prefix[1100], dprefix[1100];
} vae_run;

static void run_close(vae_run *r) {
    if (r->log) fclose(r->log);
    vae_trainer_destroy(&r->t);
    fmnist_destroy(&r->train);
    fmnist_destroy(&r->test);
    photo_set_destroy(&r->ptrain);
    photo_set_destroy(&r->ptest);
    data_batcher_free(&r->bt);
    free(r->x); free(r->idx);
}

// Data, model, optimizers (and the discriminator). 0 or an exit code.
static int run_open(vae_run *r, const vae_opts *o, const vae_config *vc) {
    int lrc;
    if (o->photos) {
        int prc = photos_open_split(NULL, o->photo_base, PHOTOS_TRAIN, &r->ptrain);
        if (!prc) prc = photos_open_split(NULL, o->photo_base, PHOTOS_TEST, &r->ptest);
        if (prc) {
            fprintf(stderr, "train: %s\n", vel_errmsg(prc));
            return 1;
        }
        fprintf(stderr, "[train vae] photos: %d training, %d held out (every %dth by name)\n",
                r->ptrain->nphotos, r->ptest->nphotos, PHOTOS_TEST_EVERY);
    } else if ((lrc = fmnist_load(o->data_dir, "train", &r->train)) ||
               (lrc = fmnist_load(o->data_dir, "test", &r->test))) {
        fprintf(stderr, "train: %s\n", vel_errmsg(lrc));
        return vel_exit_code(lrc);   // missing or bad data: 2
    }
    const vae_trainer_cfg tc = {.loss = o->loss, .lr = o->lr, .disc_weight = o->disc_weight, .disc_lr = o->disc_lr,
                                .disc_start = o->disc_start, .disc_ndf = o->disc_ndf,
                                .disc_layers = o->disc_layers, .seed = o->seed};
    r->x = malloc(sizeof(float) * (size_t)o->batch * vc->in_ch * 1024);
    r->idx = malloc(sizeof(int64_t) * (size_t)o->batch);
    if (!r->x || !r->idx || data_batcher_init(&r->bt, r->train ? r->train->n : 1) ||
        vae_trainer_create(&r->t, vc, o->batch, &tc)) {
        fprintf(stderr, "train: out of memory (or cannot build the discriminator)\n");
        return 1;
    }
    snprintf(r->prefix, sizeof r->prefix, "%s/vae", o->out);
    snprintf(r->dprefix, sizeof r->dprefix, "%s/disc", o->out);
    return 0;
}

// Step s's batch into r->x: Fashion-MNIST in the batcher's order, or random
// crops of the training photos.
static void run_batch(vae_run *r, const vae_opts *o, int64_t s) {
    if (o->photos) {
        photos_random_crops(r->x, r->ptrain, 32, o->batch, o->seed, (uint64_t)s);
    } else {
        data_batcher_indices(&r->bt, o->seed, s, o->batch, r->idx);
        fmnist_batch_f32(r->train, r->x, NULL, r->idx, 0, o->batch);
    }
}

// Loss parts summed between two log lines.
typedef struct {
    vae_loss_parts sum;
    double g, d, w, lreal, lfake;
    int n, ngan;
} step_acc;

static void acc_add(step_acc *a, const vae_loss_parts *lp, const vae_gan_parts *gp, int gan_now) {
    a->sum.total += lp->total; a->sum.rec_l1 += lp->rec_l1; a->sum.kl += lp->kl; a->sum.ve += lp->ve;
    a->sum.mag += lp->mag; a->sum.mean_sigma += lp->mean_sigma;
    a->n++;
    if (gan_now) {
        a->g += gp->g_loss; a->d += gp->d_loss; a->w += gp->d_weight;
        a->lreal += gp->logits_real; a->lfake += gp->logits_fake;
        a->ngan++;
    }
}

// One log.jsonl line and the progress line for the steps up to s + 1; resets a.
static void acc_flush(step_acc *a, FILE *log, const vae_opts *o, int64_t s, double wall, double cpu,
                      double imgs) {
    const int n = a->n, ng = a->ngan;
    fprintf(log,
            "{\"step\":%lld,\"loss\":%.6g,\"l1\":%.6g,\"kl\":%.6g,\"ve\":%.6g,\"mag\":%.6g,"
            "\"mean_sigma\":%.6g,\"lr\":%g,",
            (long long)(s + 1), a->sum.total / n, a->sum.rec_l1 / n, a->sum.kl / n, a->sum.ve / n,
            a->sum.mag / n, a->sum.mean_sigma / n, o->lr);
    if (ng)
        fprintf(log, "\"g_loss\":%.6g,\"d_loss\":%.6g,\"d_weight\":%.6g,\"logits_real\":%.6g,"
                     "\"logits_fake\":%.6g,",
                a->g / ng, a->d / ng, a->w / ng, a->lreal / ng, a->lfake / ng);
    fprintf(log, "\"wall_s\":%.3f,\"cpu_s\":%.3f}\n", wall, cpu);
    fflush(log);
    fprintf(stderr, "%s[train vae] step %lld/%d loss %.4f l1 %.4f sigma %.3g", progress_start(stderr), (long long)(s + 1), o->steps,
            a->sum.total / n, a->sum.rec_l1 / n, a->sum.mean_sigma / n);
    if (ng) fprintf(stderr, " g %.3f d %.3f w %.3g", a->g / ng, a->d / ng, a->w / ng);
    fprintf(stderr, "  %.1f img/s%s", imgs / wall, progress_end(stderr));
    memset(a, 0, sizeof *a);
}

// --resume must continue the same loss: the checkpoint's vae.recon_reduction
// (absent in checkpoints from before issue 14, which were all "mean") must
// equal --recon-reduction. Returns 0 or exit code 2.
static int resume_reduction_matches(const vae_opts *o, const char *prefix) {
    char path[1200], red[16] = "mean";
    snprintf(path, sizeof path, "%s.safetensors", prefix);
    int e = st_meta_read(path, "vae.recon_reduction", red, sizeof red);
    if ((e && e != VEL_ENOTFOUND) || strcmp(red, RECON_NAMES[o->loss.recon]) == 0) return 0;
    fprintf(stderr, "train: --resume: %s was trained with --recon-reduction %s%s; pass it again "
            "(this run asked for %s)\n", path, red, e ? " (no vae.recon_reduction: before the flag)" : "",
            RECON_NAMES[o->loss.recon]);
    return 2;
}

// DIR/vae (+ DIR/disc) at step `step` (exact resume point).
static int run_save(vae_run *r, const vae_opts *o, const vae_config *vc, int64_t step) {
    char sname[16];
    snprintf(sname, sizeof sname, "%d", vc->in_ch);
    st_kv meta[5] = {{"vae.config", vc->name}, {"vae.reg", o->loss.reg == VAE_REG_KL ? "kl" : "ve"},
                     {"vae.in_ch", sname}, {"vae.dataset", o->photos ? "photos" : "fashion-mnist"},
                     {"vae.recon_reduction", RECON_NAMES[o->loss.recon]}};
    if (!vae_trainer_save(r->t, r->prefix, r->dprefix, step, meta, 5)) return 0;
    fprintf(stderr, "\ntrain: %s\n", vel_error_detail());
    return 1;
}

// DIR/recon.png: B test images over their reconstructions through mu
// (photos: random crops of the held-out photos).
static void write_recon(vae_run *r, const vae_opts *o, int in_ch) {
    const int B = o->batch;
    if (o->photos) photos_random_crops(r->x, r->ptest, 32, B, o->seed, 0);
    else fmnist_batch_f32(r->test, r->x, NULL, NULL, 0, B);
    vae_encode(r->t->m, r->x, B);
    const float *rec = vae_decode(r->t->m, r->t->m->mu, B);
    char path[1200], title[128];
    snprintf(path, sizeof path, "%s/recon.png", o->out);
    snprintf(title, sizeof title, "%s %s, %d STEPS: TEST IMAGES", o->config,
             o->loss.reg == VAE_REG_KL ? "KL" : "VE", o->steps);
    if (recon_grid_png(path, r->x, rec, B, in_ch, title)) fprintf(stderr, "train: cannot write %s\n", path);
}

int train_vae_main(int argc, char **argv) {
    vae_opts o;
    int rc = parse(argc, argv, &o);
    if (rc == 1) { help(); return 0; }
    if (rc) return 2;
    const int in_ch = o.photos ? 3 : 1, B = o.batch;
    vae_config vc;
    if (vae_config_preset(o.config, in_ch, &vc)) {
        fprintf(stderr, "train: unknown --config '%s' (f4c4, f4c8, f8c4)\n", o.config);
        return 2;
    }
    if (stage_mkdir_p(STAGE, o.out)) return 1;
    vae_run r = {0};
    int64_t start = 0;
    char path[1200];
    snprintf(path, sizeof path, "%s/log.jsonl", o.out);
    if ((rc = run_open(&r, &o, &vc))) goto done;
    if (o.resume) {
        int e = vae_trainer_load(r.t, r.prefix, r.dprefix, &start);
        if (e) {
            fprintf(stderr, "train: %s\n", vel_error_detail());
            rc = e == VEL_EINVAL ? 2 : 1;
            goto done;
        }
        fprintf(stderr, "[train vae] resumed at step %lld\n", (long long)start);
        if ((rc = resume_reduction_matches(&o, r.prefix))) goto done;
    }
    if (write_config(&o, &vc, r.t->m->pt.total)) {
        fprintf(stderr, "train: cannot write %s/config.json\n", o.out);
        rc = 1;
        goto done;
    }
    if (!(r.log = fopen(path, o.resume ? "a" : "w"))) {
        fprintf(stderr, "train: cannot write %s: %s\n", path, strerror(errno));
        rc = 1;
        goto done;
    }
    double flops_done = 0, wall0 = vel_now();
    clock_t cpu0 = clock();
    step_acc acc = {0};
    for (int64_t s = start; s < o.steps; s++) {
        vae_loss_parts lp;
        vae_gan_parts gp;
        int gan_now;
        run_batch(&r, &o, s);
        if (vae_trainer_step(r.t, r.x, s, &lp, &gp, &gan_now)) {
            fprintf(stderr, "\ntrain: loss is not finite at step %lld (lr too high?)\n", (long long)s);
            rc = 1;
            goto done;
        }
        flops_done += vae_trainer_step_flops(r.t, gan_now);
        acc_add(&acc, &lp, &gp, gan_now);
        if ((s + 1) % o.log_every == 0 || s + 1 == o.steps)
            acc_flush(&acc, r.log, &o, s, vel_now() - wall0, (double)(clock() - cpu0) / CLOCKS_PER_SEC,
                      (double)(s + 1 - start) * B);
        if (((s + 1) % o.ckpt_every == 0 || s + 1 == o.steps) && (rc = run_save(&r, &o, &vc, s + 1))) goto done;
    }
    fprintf(stderr, "%s", progress_done(stderr));
    double wall = vel_now() - wall0, cpu = (double)(clock() - cpu0) / CLOCKS_PER_SEC;
    int64_t done_imgs = (int64_t)(o.steps - start) * B;
    if (done_imgs > 0) {
        // The share of the machine's sgemm rate is bench/bench_vae's job
        // (against bare sgemm of the step's own GEMM shapes).
        fprintf(r.log, "{\"throughput\":{\"cpu_s_per_1000_img\":%.4g,\"wall_s_per_1000_img\":%.4g,"
                       "\"step_gflops\":%.4g}}\n",
                1000.0 * cpu / done_imgs, 1000.0 * wall / done_imgs, flops_done / wall / 1e9);
        fprintf(stderr, "[train vae] %.3g CPU s / 1000 images, %.3g GFLOP/s\n", 1000.0 * cpu / done_imgs,
                flops_done / wall / 1e9);
    }
    write_recon(&r, &o, in_ch);
    if (o.photos) {
        snprintf(path, sizeof path, "%s/heldout.json", o.out);
        if (write_heldout(r.t->m, &o, path)) rc = 1;
    }
done:
    run_close(&r);
    return rc;
}
