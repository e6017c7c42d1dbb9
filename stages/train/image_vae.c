// image_vae.c: `train --model vae`, the image tokenizer on Fashion-MNIST
// (SPEC section 3): L1 reconstruction + beta*KL (--reg kl) or the VE terms
// (--reg ve), Adam (0.5, 0.9). Writes into --out: config.json, log.jsonl (one
// line per logged step), vae.safetensors + vae.optim.safetensors (exact
// resume with --resume), recon.png (test images over their reconstructions
// through mu) and a last line with throughput: CPU seconds per 1000 training
// images and the step's share of a measured sgemm rate.
// Not here: the PatchGAN discriminator (not implemented yet), encode/decode.
//
// Determinism: the batch of step s and its noise depend only on (seed, s):
// a Philox-drawn permutation per epoch and Philox normals at offset s, so a
// resumed run continues bit-identically.
#include <cblas.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "data/idx.h"
#include "data/image_io.h"
#include "models/vae.h"
#include "nn/base.h"
#include "nn/checkpoint.h"
#include "nn/optim.h"
#include "nn/philox.h"
#include "stages/train/train.h"

typedef struct {
    const char *out, *config, *data_dir;
    int batch, steps, log_every, ckpt_every, resume;
    double lr;
    uint64_t seed;
    vae_loss_cfg loss;
} vae_opts;

static void help(void) {
    printf("usage: train --model vae --out DIR [options]\n"
           "Trains the conv VAE tokenizer on Fashion-MNIST (train split, 32x32, [-1,1]).\n"
           "  --config NAME      f4c4 (default), f4c8, f8c4\n"
           "  --reg kl|ve        regulariser (default kl)\n"
           "  --beta X           KL weight (default 1e-6, LDM/VA-VAE)\n"
           "  --lambda-ve X      VE weight (default 1e-3)      --delta X  (default 1e-6)\n"
           "  --ve-form inv|negvar|neglogstd   VE term form (default inv, the paper's (iii))\n"
           "  --mag none|elem|global           magnitude regulariser (default global)\n"
           "  --lambda-reg X     (default 1.0)  --tau X  (default 3.0)\n"
           "  --batch N (16)  --steps N (1000)  --lr X (1e-4)  --seed N (0)\n"
           "  --log-every N (10)  --ckpt-every N (500)  --resume (continue from DIR/vae)\n"
           "  --data DIR         Fashion-MNIST folder (default %s)\n"
           "Writes DIR/config.json, DIR/log.jsonl, DIR/vae.safetensors, DIR/vae.optim.safetensors,\n"
           "DIR/recon.png.\n", FMNIST_DEFAULT_DIR);
}

static int parse(int argc, char **argv, vae_opts *o) {
    memset(o, 0, sizeof *o);
    o->config = "f4c4";
    o->batch = 16; o->steps = 1000; o->log_every = 10; o->ckpt_every = 500;
    o->lr = 1e-4;
    o->loss = (vae_loss_cfg){.reg = VAE_REG_KL, .beta = 1e-6f, .ve = VE_INV_VAR,
                             .lambda_ve = 1e-3f, .delta = 1e-6f, .mag = VAE_MAG_GLOBAL,
                             .lambda_reg = 1.0f, .tau = 3.0f};
    static const struct option L[] = {
        {"model", 1, 0, 'm'}, {"out", 1, 0, 'o'}, {"config", 1, 0, 'c'}, {"reg", 1, 0, 'r'},
        {"beta", 1, 0, 'b'}, {"lambda-ve", 1, 0, 'v'}, {"delta", 1, 0, 'd'},
        {"ve-form", 1, 0, 'f'}, {"mag", 1, 0, 'g'}, {"lambda-reg", 1, 0, 'l'},
        {"tau", 1, 0, 't'}, {"batch", 1, 0, 'B'}, {"steps", 1, 0, 'S'}, {"lr", 1, 0, 'L'},
        {"seed", 1, 0, 's'}, {"log-every", 1, 0, 'E'}, {"ckpt-every", 1, 0, 'C'},
        {"resume", 0, 0, 'R'}, {"data", 1, 0, 'D'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", L, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'm': break;
        case 'h': return 1;
        case 'o': o->out = optarg; break;
        case 'c': o->config = optarg; break;
        case 'D': o->data_dir = optarg; break;
        case 'R': o->resume = 1; break;
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
        case 'b': o->loss.beta = strtof(optarg, &end); break;
        case 'v': o->loss.lambda_ve = strtof(optarg, &end); break;
        case 'd': o->loss.delta = strtof(optarg, &end); break;
        case 'l': o->loss.lambda_reg = strtof(optarg, &end); break;
        case 't': o->loss.tau = strtof(optarg, &end); break;
        case 'L': o->lr = strtod(optarg, &end); break;
        case 'B': o->batch = (int)strtol(optarg, &end, 10); break;
        case 'S': o->steps = (int)strtol(optarg, &end, 10); break;
        case 'E': o->log_every = (int)strtol(optarg, &end, 10); break;
        case 'C': o->ckpt_every = (int)strtol(optarg, &end, 10); break;
        case 's': o->seed = strtoull(optarg, &end, 10); break;
        default:
            fprintf(stderr, "train: unknown or incomplete option '%s' (see --help)\n", argv[optind - 1]);
            return 2;
        }
        if (end && *end) {
            fprintf(stderr, "train: bad number '%s'\n", optarg);
            return 2;
        }
    }
    if (!o->out) { fprintf(stderr, "train: --out DIR is required\n"); return 2; }
    if (o->batch < 1 || o->steps < 0 || o->log_every < 1 || o->ckpt_every < 1 || !(o->lr > 0) ||
        o->loss.beta < 0 || o->loss.lambda_ve < 0 || o->loss.lambda_reg < 0 || o->loss.delta < 0) {
        fprintf(stderr, "train: batch/log-every/ckpt-every >= 1, steps >= 0, lr > 0, weights >= 0\n");
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
    cJSON_AddStringToObject(j, "data", o->data_dir ? o->data_dir : FMNIST_DEFAULT_DIR);
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
    cJSON_AddStringToObject(j, "discriminator", "none (not implemented)");
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

int train_vae_main(int argc, char **argv) {
    vae_opts o;
    int rc = parse(argc, argv, &o);
    if (rc == 1) { help(); return 0; }
    if (rc) return 2;
    vae_config vc;
    if (vae_config_preset(o.config, 1, &vc)) {
        fprintf(stderr, "train: unknown --config '%s' (f4c4, f4c8, f8c4)\n", o.config);
        return 2;
    }
    if (mkdir(o.out, 0755) && errno != EEXIST) {
        fprintf(stderr, "train: cannot create %s: %s\n", o.out, strerror(errno));
        return 1;
    }
    char msg[512];
    fmnist *train = NULL, *test = NULL;
    if ((rc = fmnist_load(o.data_dir, "train", &train, msg, sizeof msg)) ||
        (rc = fmnist_load(o.data_dir, "test", &test, msg, sizeof msg))) {
        fprintf(stderr, "train: %s\n", msg);
        fmnist_destroy(&train);
        return 1;
    }
    vae *m = NULL;
    optim *opt = NULL;
    FILE *log = NULL;
    batcher bt = {.n = train->n, .epoch = -1};
    bt.perm = malloc(sizeof(int64_t) * (size_t)train->n);
    bt.u = malloc(sizeof(float) * (size_t)train->n);
    int B = o.batch, zs = vae_latent_side(&vc);
    int64_t nz = (int64_t)B * vc.z_channels * zs * zs;
    float *x = malloc(sizeof(float) * (size_t)B * 1024), *eps = malloc(sizeof(float) * (size_t)nz);
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)B);
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
    char prefix[1100];
    snprintf(prefix, sizeof prefix, "%s/vae", o.out);
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

    double gemm = sgemm_rate(), flops_step = 3.0 * vae_forward_flops(m, B);
    double wall0 = vel_now();
    clock_t cpu0 = clock();
    vae_loss_parts acc = {0};
    int nacc = 0;
    for (int64_t s = start; s < o.steps; s++) {
        batch_indices(&bt, o.seed, s, B, idx);
        fmnist_batch_f32(train, x, NULL, idx, 0, B);
        philox_normal(eps, nz, o.seed, 2, (uint64_t)s * (uint64_t)nz);
        param_zero_grads(&m->pt);
        vae_loss_parts lp;
        vae_train_step(m, x, eps, B, &o.loss, &lp, NULL);
        if (!isfinite(lp.total)) {
            fprintf(stderr, "\ntrain: loss is not finite at step %lld (lr too high?)\n", (long long)s);
            rc = 1;
            goto done;
        }
        optim_step(opt, &m->pt, o.lr);
        acc.total += lp.total; acc.rec_l1 += lp.rec_l1; acc.kl += lp.kl; acc.ve += lp.ve;
        acc.mag += lp.mag; acc.mean_sigma += lp.mean_sigma;
        nacc++;
        if ((s + 1) % o.log_every == 0 || s + 1 == o.steps) {
            double wall = vel_now() - wall0, cpu = (double)(clock() - cpu0) / CLOCKS_PER_SEC;
            double imgs = (double)(s + 1 - start) * B;
            fprintf(log,
                    "{\"step\":%lld,\"loss\":%.6g,\"l1\":%.6g,\"kl\":%.6g,\"ve\":%.6g,\"mag\":%.6g,"
                    "\"mean_sigma\":%.6g,\"lr\":%g,\"wall_s\":%.3f,\"cpu_s\":%.3f}\n",
                    (long long)(s + 1), acc.total / nacc, acc.rec_l1 / nacc, acc.kl / nacc,
                    acc.ve / nacc, acc.mag / nacc, acc.mean_sigma / nacc, o.lr, wall, cpu);
            fflush(log);
            fprintf(stderr, "\r[train vae] step %lld/%d loss %.4f l1 %.4f sigma %.3g  %.1f img/s   ",
                    (long long)(s + 1), o.steps, acc.total / nacc, acc.rec_l1 / nacc,
                    acc.mean_sigma / nacc, imgs / wall);
            memset(&acc, 0, sizeof acc);
            nacc = 0;
        }
        if ((s + 1) % o.ckpt_every == 0 || s + 1 == o.steps) {
            ckpt_state st = {.step = (uint64_t)(s + 1), .rng_seed = o.seed, .rng_offset = (uint64_t)(s + 1)};
            st_kv meta[2] = {{"vae.config", vc.name}, {"vae.reg", o.loss.reg == VAE_REG_KL ? "kl" : "ve"}};
            st_err err;
            int e = ckpt_save(prefix, &m->pt, opt, NULL, &st, meta, 2, &err);
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
        double share = flops_step * (o.steps - start) / wall / gemm;
        fprintf(log, "{\"throughput\":{\"cpu_s_per_1000_img\":%.4g,\"wall_s_per_1000_img\":%.4g,"
                     "\"step_gflops\":%.4g,\"sgemm_gflops\":%.4g,\"share_of_sgemm\":%.4g}}\n",
                1000.0 * cpu / done_imgs, 1000.0 * wall / done_imgs,
                flops_step * (o.steps - start) / wall / 1e9, gemm / 1e9, share);
        fprintf(stderr, "[train vae] %.3g CPU s / 1000 images, %.3g GFLOP/s = %.1f%% of sgemm (%.3g GFLOP/s)\n",
                1000.0 * cpu / done_imgs, flops_step * (o.steps - start) / wall / 1e9, 100 * share,
                gemm / 1e9);
    }
    // Reconstructions through mu of the first B test images: row of originals,
    // row of reconstructions.
    fmnist_batch_f32(test, x, NULL, NULL, 0, B);
    vae_encode(m, x, B);
    const float *rec = vae_decode(m, m->mu, B);
    float *grid = malloc(sizeof(float) * 2 * (size_t)B * 1024);
    if (grid) {
        memcpy(grid, x, sizeof(float) * (size_t)B * 1024);
        memcpy(grid + (size_t)B * 1024, rec, sizeof(float) * (size_t)B * 1024);
        snprintf(path, sizeof path, "%s/recon.png", o.out);
        if (image_grid_write_png(path, grid, 2 * B, 1, 32, 32, B))
            fprintf(stderr, "train: cannot write %s\n", path);
        free(grid);
    }
done:
    if (log) fclose(log);
    optim_destroy(&opt);
    vae_destroy(&m);
    fmnist_destroy(&train);
    fmnist_destroy(&test);
    free(bt.perm); free(bt.u); free(x); free(eps); free(idx);
    return rc;
}
