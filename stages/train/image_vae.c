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
// throughput: CPU seconds per 1000 training images and the step's share of a
// measured sgemm rate.
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
#include <cblas.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "data/idx.h"
#include "data/image_io.h"
#include "data/photos.h"
#include "models/patchgan.h"
#include "models/vae_gan.h"
#include "models/vae.h"
#include "core/base.h"
#include "nn/checkpoint.h"
#include "nn/optim.h"
#include "core/philox.h"
#include "metrics/image.h"
#include "stages/common/flags.h"
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
    static const struct option L[] = {
        {"model", 1, 0, 'm'}, {"out", 1, 0, 'o'}, {"config", 1, 0, 'c'}, {"reg", 1, 0, 'r'},
        {"beta", 1, 0, 'b'}, {"lambda-ve", 1, 0, 'v'}, {"delta", 1, 0, 'd'},
        {"ve-form", 1, 0, 'f'}, {"mag", 1, 0, 'g'}, {"lambda-reg", 1, 0, 'l'},
        {"tau", 1, 0, 't'}, {"batch", 1, 0, 'B'}, {"steps", 1, 0, 'S'}, {"lr", 1, 0, 'L'},
        {"seed", 1, 0, 's'}, {"log-every", 1, 0, 'E'}, {"ckpt-every", 1, 0, 'C'},
        {"resume", 0, 0, 'R'}, {"data", 1, 0, 'D'}, {"dataset", 1, 0, 'T'},
        {"photo-base", 1, 0, 'P'}, {"disc-weight", 1, 0, 'W'}, {"disc-start", 1, 0, 'X'},
        {"disc-lr", 1, 0, 'Y'}, {"disc-ndf", 1, 0, 'N'}, {"disc-layers", 1, 0, 'Z'},
        {"device", 1, 0, 'x'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", L, NULL)) != -1) {
        switch (c) {
        case 'm': break;
        case 'h': return 1;
        case 'o': o->out = optarg; break;
        case 'c': o->config = optarg; break;
        case 'D': o->data_dir = optarg; break;
        case 'R': o->resume = 1; break;
        case 'T':
            if (!strcmp(optarg, "fashion-mnist")) o->photos = 0;
            else if (!strcmp(optarg, "photos")) o->photos = 1;
            else { fprintf(stderr, "train: --dataset must be fashion-mnist or photos, not '%s'\n", optarg); return 2; }
            break;
        case 'P': if (flag_int(STAGE, "--photo-base", optarg, 32, 4096, &o->photo_base)) return 2; break;
        case 'W': if (flag_f64(STAGE, "--disc-weight", optarg, 0, INFINITY, 0, &o->disc_weight)) return 2; break;
        case 'X': if (flag_int(STAGE, "--disc-start", optarg, 0, INT_MAX, &o->disc_start)) return 2; break;
        case 'Y': if (flag_f64(STAGE, "--disc-lr", optarg, 0, INFINITY, 0, &o->disc_lr)) return 2; break;
        case 'N': if (flag_int(STAGE, "--disc-ndf", optarg, 1, 4096, &o->disc_ndf)) return 2; break;
        case 'Z': if (flag_int(STAGE, "--disc-layers", optarg, 1, 3, &o->disc_layers)) return 2; break;
        case 'x': if (flag_device_use(STAGE, optarg)) return 2; break;
        case 'r':
            if (!strcmp(optarg, "kl")) o->loss.reg = VAE_REG_KL;
            else if (!strcmp(optarg, "ve")) o->loss.reg = VAE_REG_VE;
            else { fprintf(stderr, "train: --reg must be kl or ve, not '%s'\n", optarg); return 2; }
            break;
        case 'f':
            if (!strcmp(optarg, "inv")) o->loss.ve = VE_INV_VAR;
            else if (!strcmp(optarg, "negvar")) o->loss.ve = VE_NEG_VAR;
            else if (!strcmp(optarg, "neglogstd")) o->loss.ve = VE_NEG_LOGSTD;
            else { fprintf(stderr, "train: bad --ve-form '%s'\n", optarg); return 2; }
            break;
        case 'g':
            if (!strcmp(optarg, "none")) o->loss.mag = VAE_MAG_NONE;
            else if (!strcmp(optarg, "elem")) o->loss.mag = VAE_MAG_ELEM;
            else if (!strcmp(optarg, "global")) o->loss.mag = VAE_MAG_GLOBAL;
            else { fprintf(stderr, "train: bad --mag '%s'\n", optarg); return 2; }
            break;
        case 'b': if (flag_f32(STAGE, "--beta", optarg, 0, INFINITY, 0, &o->loss.beta)) return 2; break;
        case 'v': if (flag_f32(STAGE, "--lambda-ve", optarg, 0, INFINITY, 0, &o->loss.lambda_ve)) return 2; break;
        case 'd': if (flag_f32(STAGE, "--delta", optarg, 0, INFINITY, 0, &o->loss.delta)) return 2; break;
        case 'l': if (flag_f32(STAGE, "--lambda-reg", optarg, 0, INFINITY, 0, &o->loss.lambda_reg)) return 2; break;
        case 't': if (flag_f32(STAGE, "--tau", optarg, -INFINITY, INFINITY, 0, &o->loss.tau)) return 2; break;
        case 'L': if (flag_f64(STAGE, "--lr", optarg, 0, INFINITY, FLAG_OPEN_LO, &o->lr)) return 2; break;
        case 'B': if (flag_int(STAGE, "--batch", optarg, 1, TRAIN_VAE_MAX_BATCH, &o->batch)) return 2; break;
        case 'S': if (flag_int(STAGE, "--steps", optarg, 0, INT_MAX, &o->steps)) return 2; break;
        case 'E': if (flag_int(STAGE, "--log-every", optarg, 1, INT_MAX, &o->log_every)) return 2; break;
        case 'C': if (flag_int(STAGE, "--ckpt-every", optarg, 1, INT_MAX, &o->ckpt_every)) return 2; break;
        case 's': if (flag_u64(STAGE, "--seed", optarg, &o->seed)) return 2; break;
        default:
            fprintf(stderr, "train: unknown or incomplete option '%s' (see --help)\n", argv[optind - 1]);
            return 2;
        }
    }
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

static const char *VE_NAMES[] = {"inv", "negvar", "neglogstd"};
static const char *MAG_NAMES[] = {"none", "elem", "global"};

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

// Indices of step s's batch: epoch e = s*B / n uses a Philox-seeded
// Fisher-Yates permutation (regenerated when the epoch changes).
typedef struct { int64_t n, epoch; int64_t *perm; float *u; } batcher;

static void batch_indices(batcher *b, uint64_t seed, int64_t step, int B, int64_t *idx) {
    for (int k = 0; k < B; k++) {
        int64_t g = step * B + k, e = g / b->n, pos = g % b->n;
        if (e != b->epoch) {
            for (int64_t i = 0; i < b->n; i++) b->perm[i] = i;
            philox_uniform(b->u, b->n, seed, 1, (uint64_t)e * (uint64_t)b->n);
            for (int64_t i = b->n - 1; i > 0; i--) {
                int64_t j = (int64_t)(b->u[i] * (float)(i + 1));
                if (j > i) j = i;
                int64_t t = b->perm[i]; b->perm[i] = b->perm[j]; b->perm[j] = t;
            }
            b->epoch = e;
        }
        idx[k] = b->perm[pos];
    }
}

static double sgemm_rate(void) {
    // Reference throughput of this machine right now: a 512^3 sgemm.
    const int n = 512;
    float *a = xmalloc(sizeof(float) * n * n), *b = xmalloc(sizeof(float) * n * n);
    float *c = xmalloc(sizeof(float) * n * n);
    for (int i = 0; i < n * n; i++) { a[i] = (float)(i % 7) * 0.1f; b[i] = (float)(i % 5) * 0.1f; }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    double t0 = vel_now();
    int reps = 4;
    for (int r = 0; r < reps; r++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    double dt = vel_now() - t0;
    free(a); free(b); free(c);
    return reps * 2.0 * n * n * n / dt;
}

// Held-out photo evaluation (--dataset photos): the fixed 32x32 tiles of the
// test photos at the training base size, reconstructed through mu: PSNR and
// SSIM (metrics/image.h), the same for the training photos' tiles,
// and decode(mu + s*eps*latent_std) for s in 0.5, 1, 2 (latent_std per
// channel over the held-out tiles' mu, eps Philox stream 9 of the seed).
static int photos_heldout_eval(vae *m, const vae_opts *o, const char *path) {
    photo_bank *pb = NULL;
    char msg[512];
    if (photos_open(NULL, o->photo_base, 32, &pb, msg, sizeof msg)) {
        fprintf(stderr, "train: held-out eval: %s\n", msg);
        return 1;
    }
    const int per = 3 * 1024, Bm = m->Bmax, zc = m->cfg.z_channels, zhw = m->zside * m->zside;
    int64_t ntest = 0;
    for (int k = 0; k < pb->nphotos; k++) ntest += photos_is_test(k) ? pb->per_photo : 0;
    float *mu = malloc(sizeof(float) * (size_t)(ntest * zc * zhw));
    float *x = malloc(sizeof(float) * (size_t)Bm * per), *z = malloc(sizeof(float) * (size_t)Bm * zc * zhw);
    int64_t *tidx = malloc(sizeof(int64_t) * (size_t)(ntest ? ntest : 1));
    int64_t *bidx = malloc(sizeof(int64_t) * (size_t)Bm);
    if (!mu || !x || !z || !tidx || !bidx || !ntest) {
        fprintf(stderr, "train: held-out eval: out of memory or no held-out photos\n");
        free(mu); free(x); free(z); free(tidx); free(bidx);
        photos_destroy(&pb);
        return 1;
    }
    double psnr[2] = {0, 0}, ssim[2] = {0, 0};
    int64_t cnt[2] = {0, 0}, t = 0;
    for (int64_t i = 0; i < pb->n; i++)
        if (photos_is_test((int)(i / pb->per_photo))) tidx[t++] = i;
    for (int split = 0; split < 2; split++) {
        // split 0: held-out tiles (and their mu kept), 1: training photos' tiles.
        int64_t i = 0;
        while (i < pb->n) {
            int B = 0;
            int64_t *idx = bidx;
            for (; i < pb->n && B < Bm; i++) {
                int test = photos_is_test((int)(i / pb->per_photo));
                if (test == (split == 0)) idx[B++] = i;
            }
            if (!B) continue;
            for (int b = 0; b < B; b++) memcpy(x + (size_t)b * per, pb->imgs + idx[b] * per, sizeof(float) * per);
            vae_encode(m, x, B);
            if (split == 0)
                memcpy(mu + cnt[0] * zc * zhw, m->mu, sizeof(float) * (size_t)B * zc * zhw);
            const float *rec = vae_decode(m, m->mu, B);
            for (int b = 0; b < B; b++) {
                psnr[split] += image_psnr(rec + (size_t)b * per, x + (size_t)b * per, 3, 32, 32);
                ssim[split] += image_ssim(rec + (size_t)b * per, x + (size_t)b * per, 3, 32, 32);
            }
            cnt[split] += B;
        }
    }
    // Probe on the held-out tiles.
    static const double scales[3] = {0.5, 1, 2};
    double pps[3] = {0}, pss[3] = {0}, stdc[64] = {0};
    for (int c = 0; c < zc && c < 64; c++) {
        double s1 = 0, s2 = 0;
        for (int64_t n = 0; n < ntest; n++)
            for (int k = 0; k < zhw; k++) { double v = mu[(n * zc + c) * zhw + k]; s1 += v; s2 += v * v; }
        double nn = (double)ntest * zhw, mean = s1 / nn;
        stdc[c] = sqrt(fmax(0, s2 / nn - mean * mean));
    }
    for (int si = 0; si < 3; si++) {
        for (int64_t i0 = 0; i0 < ntest; i0 += Bm) {
            int B = (int)(ntest - i0 < Bm ? ntest - i0 : Bm);
            int64_t nz = (int64_t)B * zc * zhw;
            philox_normal(z, nz, o->seed, 9, (uint64_t)(i0 * zc * zhw));
            for (int64_t j = 0; j < nz; j++) {
                int c = (int)((j / zhw) % zc);
                z[j] = mu[i0 * zc * zhw + j] + (float)(scales[si] * stdc[c < 64 ? c : 63]) * z[j];
            }
            const float *rec = vae_decode(m, z, B);
            for (int b = 0; b < B; b++) {
                const float *im = pb->imgs + tidx[i0 + b] * per;
                pps[si] += image_psnr(rec + (size_t)b * per, im, 3, 32, 32);
                pss[si] += image_ssim(rec + (size_t)b * per, im, 3, 32, 32);
            }
        }
    }
    FILE *f = fopen(path, "w");
    int rc = 0;
    if (!f) { fprintf(stderr, "train: cannot write %s\n", path); rc = 1; }
    else {
        fprintf(f, "{\"heldout_photos\":[");
        int first = 1;
        for (int k = 0; k < pb->nphotos; k++)
            if (photos_is_test(k)) { fprintf(f, "%s\"%s\"", first ? "" : ",", pb->names[k]); first = 0; }
        fprintf(f, "],\"base\":%d,\"tile\":32,\"heldout_tiles\":%lld,\"heldout_psnr\":%.4f,"
                   "\"heldout_ssim\":%.5f,\"train_tiles\":%lld,\"train_psnr\":%.4f,\"train_ssim\":%.5f,"
                   "\"probe\":[",
                o->photo_base, (long long)cnt[0], psnr[0] / (double)cnt[0], ssim[0] / (double)cnt[0],
                (long long)cnt[1], cnt[1] ? psnr[1] / (double)cnt[1] : NAN,
                cnt[1] ? ssim[1] / (double)cnt[1] : NAN);
        for (int si = 0; si < 3; si++)
            fprintf(f, "%s{\"scale\":%g,\"psnr\":%.4f,\"ssim\":%.5f}", si ? "," : "", scales[si],
                    pps[si] / (double)ntest, pss[si] / (double)ntest);
        fprintf(f, "],\"latent_std\":[");
        for (int c = 0; c < zc && c < 64; c++) fprintf(f, "%s%.5g", c ? "," : "", stdc[c]);
        fprintf(f, "]}\n");
        if (fclose(f)) rc = 1;
        fprintf(stderr, "[train vae] held-out photo tiles (%lld): PSNR %.3f SSIM %.4f; training photos' "
                        "tiles: PSNR %.3f SSIM %.4f\n",
                (long long)cnt[0], psnr[0] / (double)cnt[0], ssim[0] / (double)cnt[0],
                cnt[1] ? psnr[1] / (double)cnt[1] : NAN, cnt[1] ? ssim[1] / (double)cnt[1] : NAN);
    }
    free(mu); free(x); free(z); free(tidx); free(bidx);
    photos_destroy(&pb);
    return rc;
}

// Multiply-add FLOPs of one discriminator forward on B images (convolutions).
static double disc_forward_flops(const patchgan *d, int B) {
    double f = 0;
    for (int l = 0; l < d->nl; l++) {
        const conv2d_cfg *c = &d->L[l].conv;
        f += 2.0 * B * (double)c->OC * c->C * c->KH * c->KW * conv2d_out_h(c) * conv2d_out_w(c);
    }
    return f;
}

int train_vae_main(int argc, char **argv) {
    vae_opts o;
    int rc = parse(argc, argv, &o);
    if (rc == 1) { help(); return 0; }
    if (rc) return 2;
    const int in_ch = o.photos ? 3 : 1, npix = in_ch * 1024;
    vae_config vc;
    if (vae_config_preset(o.config, in_ch, &vc)) {
        fprintf(stderr, "train: unknown --config '%s' (f4c4, f4c8, f8c4)\n", o.config);
        return 2;
    }
    if (stage_mkdir_p(STAGE, o.out)) return 1;
    char msg[512];
    fmnist *train = NULL, *test = NULL;
    photo_set *ptrain = NULL, *ptest = NULL;
    if (o.photos) {
        if ((rc = photos_open_split(NULL, o.photo_base, PHOTOS_TRAIN, &ptrain, msg, sizeof msg)) ||
            (rc = photos_open_split(NULL, o.photo_base, PHOTOS_TEST, &ptest, msg, sizeof msg))) {
            fprintf(stderr, "train: %s\n", msg);
            photo_set_destroy(&ptrain);
            return 1;
        }
        fprintf(stderr, "[train vae] photos: %d training, %d held out (every %dth by name)\n",
                ptrain->nphotos, ptest->nphotos, PHOTOS_TEST_EVERY);
    } else if ((rc = fmnist_load(o.data_dir, "train", &train, msg, sizeof msg)) ||
               (rc = fmnist_load(o.data_dir, "test", &test, msg, sizeof msg))) {
        fprintf(stderr, "train: %s\n", msg);
        fmnist_destroy(&train);
        return 1;
    }
    vae *m = NULL;
    optim *opt = NULL, *dopt = NULL;
    patchgan *disc = NULL;
    FILE *log = NULL;
    const int gan = o.disc_weight > 0;
    const double disc_lr = o.disc_lr > 0 ? o.disc_lr : o.lr;
    int64_t ntrain = train ? train->n : 1;
    batcher bt = {.n = ntrain, .epoch = -1};
    bt.perm = malloc(sizeof(int64_t) * (size_t)ntrain);
    bt.u = malloc(sizeof(float) * (size_t)ntrain);
    int B = o.batch, zs = vae_latent_side(&vc);
    int64_t nz = (int64_t)B * vc.z_channels * zs * zs;
    float *x = malloc(sizeof(float) * (size_t)B * npix), *eps = malloc(sizeof(float) * (size_t)nz);
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)B);
    vae_gan *vg = NULL;
    if (!bt.perm || !bt.u || !x || !eps || !idx || vae_create(&m, &vc, B, 1)) {
        fprintf(stderr, "train: out of memory\n");
        rc = 1;
        goto done;
    }
    vae_init_params(m, o.seed);
    optim_config oc = optim_defaults(OPTIM_ADAM);
    oc.beta1 = 0.5;
    oc.beta2 = 0.9;
    if (optim_create(&opt, &m->pt, &oc)) { fprintf(stderr, "train: out of memory\n"); rc = 1; goto done; }
    if (gan) {
        patchgan_config dc = {.in_ch = in_ch, .ndf = o.disc_ndf, .n_layers = o.disc_layers};
        if (patchgan_create(&disc, &dc, B, 32, 32) || optim_create(&dopt, &disc->pt, &oc)) {
            fprintf(stderr, "train: cannot build the discriminator (out of memory?)\n");
            rc = 1;
            goto done;
        }
        patchgan_init_params(disc, o.seed);
        if (vae_gan_create(&vg, m, disc)) {
            fprintf(stderr, "train: out of memory\n");
            rc = 1;
            goto done;
        }
    }
    char prefix[1100], dprefix[1100];
    snprintf(prefix, sizeof prefix, "%s/vae", o.out);
    snprintf(dprefix, sizeof dprefix, "%s/disc", o.out);
    int64_t start = 0;
    if (o.resume) {
        ckpt_state st;
        st_err err;
        int e = ckpt_load(prefix, &m->pt, opt, NULL, &st, &err);
        if (e) {
            fprintf(stderr, "train: --resume: %s: %s (%s)\n", prefix, ckpt_strerror(e), err.msg);
            rc = 1;
            goto done;
        }
        if (st.rng_seed != o.seed) {
            fprintf(stderr, "train: --resume: checkpoint seed %llu differs from --seed %llu\n",
                    (unsigned long long)st.rng_seed, (unsigned long long)o.seed);
            rc = 2;
            goto done;
        }
        start = (int64_t)st.step;
        if (gan) {
            ckpt_state ds;
            e = ckpt_load(dprefix, &disc->pt, dopt, NULL, &ds, &err);
            if (e) {
                fprintf(stderr, "train: --resume with --disc-weight: %s: %s (%s)\n", dprefix,
                        ckpt_strerror(e), err.msg);
                rc = 1;
                goto done;
            }
            if (ds.step != st.step) {
                fprintf(stderr, "train: --resume: discriminator at step %llu, autoencoder at %llu\n",
                        (unsigned long long)ds.step, (unsigned long long)st.step);
                rc = 1;
                goto done;
            }
        }
        fprintf(stderr, "[train vae] resumed at step %lld\n", (long long)start);
    }
    if (write_config(&o, &vc, m->pt.total)) {
        fprintf(stderr, "train: cannot write %s/config.json\n", o.out);
        rc = 1;
        goto done;
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/log.jsonl", o.out);
    log = fopen(path, o.resume ? "a" : "w");
    if (!log) { fprintf(stderr, "train: cannot write %s: %s\n", path, strerror(errno)); rc = 1; goto done; }

    double gemm = sgemm_rate(), flops_vae = 3.0 * vae_forward_flops(m, B), flops_done = 0;
    // With the GAN on: + decoder and encoder backward again (~2 forwards) and
    // the discriminator's 3 forwards, one input-only backward and two full ones.
    double flops_gan = gan ? 2.0 * vae_forward_flops(m, B) + 8.0 * disc_forward_flops(disc, B) : 0;
    double wall0 = vel_now();
    clock_t cpu0 = clock();
    vae_loss_parts acc = {0};
    double g_acc = 0, d_acc = 0, w_acc = 0, lr_acc = 0, lf_acc = 0;
    int nacc = 0, ngan = 0;
    char sname[16];
    snprintf(sname, sizeof sname, "%d", in_ch);
    for (int64_t s = start; s < o.steps; s++) {
        if (o.photos) {
            photos_random_crops(x, ptrain, 32, B, o.seed, (uint64_t)s);
        } else {
            batch_indices(&bt, o.seed, s, B, idx);
            fmnist_batch_f32(train, x, NULL, idx, 0, B);
        }
        philox_normal(eps, nz, o.seed, 2, (uint64_t)s * (uint64_t)nz);
        vae_loss_parts lp;
        vae_gan_parts gp;
        const int gan_now = gan && s >= o.disc_start;
        if (gan_now) {
            vae_gan_generator_step(vg, x, eps, B, &o.loss, o.disc_weight, &lp, &gp);
        } else {
            param_zero_grads(&m->pt);
            vae_train_step(m, x, eps, B, &o.loss, &lp, NULL);
        }
        if (!isfinite(lp.total)) {
            fprintf(stderr, "\ntrain: loss is not finite at step %lld (lr too high?)\n", (long long)s);
            rc = 1;
            goto done;
        }
        flops_done += flops_vae;
        optim_step(opt, &m->pt, o.lr);
        if (gan_now) {
            vae_gan_discriminator_step(vg, x, B, &gp);
            optim_step(dopt, &disc->pt, disc_lr);
            g_acc += gp.g_loss; d_acc += gp.d_loss; w_acc += gp.d_weight;
            lr_acc += gp.logits_real; lf_acc += gp.logits_fake;
            ngan++;
            lp.total += gp.d_weight * gp.g_loss;
            flops_done += flops_gan;
        }
        acc.total += lp.total; acc.rec_l1 += lp.rec_l1; acc.kl += lp.kl; acc.ve += lp.ve;
        acc.mag += lp.mag; acc.mean_sigma += lp.mean_sigma;
        nacc++;
        if ((s + 1) % o.log_every == 0 || s + 1 == o.steps) {
            double wall = vel_now() - wall0, cpu = (double)(clock() - cpu0) / CLOCKS_PER_SEC;
            double imgs = (double)(s + 1 - start) * B;
            fprintf(log,
                    "{\"step\":%lld,\"loss\":%.6g,\"l1\":%.6g,\"kl\":%.6g,\"ve\":%.6g,\"mag\":%.6g,"
                    "\"mean_sigma\":%.6g,\"lr\":%g,",
                    (long long)(s + 1), acc.total / nacc, acc.rec_l1 / nacc, acc.kl / nacc,
                    acc.ve / nacc, acc.mag / nacc, acc.mean_sigma / nacc, o.lr);
            if (ngan)
                fprintf(log, "\"g_loss\":%.6g,\"d_loss\":%.6g,\"d_weight\":%.6g,\"logits_real\":%.6g,"
                             "\"logits_fake\":%.6g,",
                        g_acc / ngan, d_acc / ngan, w_acc / ngan, lr_acc / ngan, lf_acc / ngan);
            fprintf(log, "\"wall_s\":%.3f,\"cpu_s\":%.3f}\n", wall, cpu);
            fflush(log);
            fprintf(stderr, "\r[train vae] step %lld/%d loss %.4f l1 %.4f sigma %.3g",
                    (long long)(s + 1), o.steps, acc.total / nacc, acc.rec_l1 / nacc,
                    acc.mean_sigma / nacc);
            if (ngan) fprintf(stderr, " g %.3f d %.3f w %.3g", g_acc / ngan, d_acc / ngan, w_acc / ngan);
            fprintf(stderr, "  %.1f img/s   ", imgs / wall);
            memset(&acc, 0, sizeof acc);
            nacc = ngan = 0;
            g_acc = d_acc = w_acc = lr_acc = lf_acc = 0;
        }
        if ((s + 1) % o.ckpt_every == 0 || s + 1 == o.steps) {
            ckpt_state st = {.step = (uint64_t)(s + 1), .rng_seed = o.seed, .rng_offset = (uint64_t)(s + 1)};
            st_kv meta[4] = {{"vae.config", vc.name}, {"vae.reg", o.loss.reg == VAE_REG_KL ? "kl" : "ve"},
                             {"vae.in_ch", sname}, {"vae.dataset", o.photos ? "photos" : "fashion-mnist"}};
            st_err err;
            int e = ckpt_save(prefix, &m->pt, opt, NULL, &st, meta, 4, &err);
            if (!e && gan) {
                st_kv dmeta[1] = {{"model", "patchgan"}};
                e = ckpt_save(dprefix, &disc->pt, dopt, NULL, &st, dmeta, 1, &err);
            }
            if (e) {
                fprintf(stderr, "\ntrain: saving %s: %s (%s)\n", prefix, ckpt_strerror(e), err.msg);
                rc = 1;
                goto done;
            }
        }
    }
    fprintf(stderr, "\n");
    double wall = vel_now() - wall0, cpu = (double)(clock() - cpu0) / CLOCKS_PER_SEC;
    int64_t done_imgs = (int64_t)(o.steps - start) * B;
    if (done_imgs > 0) {
        double share = flops_done / wall / gemm;
        fprintf(log, "{\"throughput\":{\"cpu_s_per_1000_img\":%.4g,\"wall_s_per_1000_img\":%.4g,"
                     "\"step_gflops\":%.4g,\"sgemm_gflops\":%.4g,\"share_of_sgemm\":%.4g}}\n",
                1000.0 * cpu / done_imgs, 1000.0 * wall / done_imgs,
                flops_done / wall / 1e9, gemm / 1e9, share);
        fprintf(stderr, "[train vae] %.3g CPU s / 1000 images, %.3g GFLOP/s = %.1f%% of sgemm (%.3g GFLOP/s)\n",
                1000.0 * cpu / done_imgs, flops_done / wall / 1e9, 100 * share, gemm / 1e9);
    }
    // Reconstructions through mu of B test images: row of originals, row of
    // reconstructions (photos: random crops of the held-out photos).
    if (o.photos) photos_random_crops(x, ptest, 32, B, o.seed, 0);
    else fmnist_batch_f32(test, x, NULL, NULL, 0, B);
    vae_encode(m, x, B);
    const float *rec = vae_decode(m, m->mu, B);
    float *grid = malloc(sizeof(float) * 2 * (size_t)B * npix);
    if (grid) {
        memcpy(grid, x, sizeof(float) * (size_t)B * npix);
        memcpy(grid + (size_t)B * npix, rec, sizeof(float) * (size_t)B * npix);
        snprintf(path, sizeof path, "%s/recon.png", o.out);
        if (image_grid_write_png(path, grid, 2 * B, in_ch, 32, 32, B))
            fprintf(stderr, "train: cannot write %s\n", path);
        free(grid);
    }
    if (o.photos) {
        snprintf(path, sizeof path, "%s/heldout.json", o.out);
        if (photos_heldout_eval(m, &o, path)) rc = 1;
    }
done:
    if (log) fclose(log);
    optim_destroy(&opt);
    optim_destroy(&dopt);
    vae_gan_destroy(&vg);
    patchgan_destroy(&disc);
    vae_destroy(&m);
    fmnist_destroy(&train);
    fmnist_destroy(&test);
    photo_set_destroy(&ptrain);
    photo_set_destroy(&ptest);
    free(bt.perm); free(bt.u); free(x); free(eps); free(idx);
    return rc;
}
