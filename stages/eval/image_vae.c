// image_vae.c: `eval --model vae`, the tokenizer's reconstruction metrics on
// the Fashion-MNIST test split and the latent robustness probe (issue 5):
//   - PSNR and SSIM (SPEC 5) of decode(mu) against the originals;
//   - mean sigma, the per-channel latent spread std_c of mu over the
//     evaluated images, and sigma relative to that spread (mean over
//     channels of mean(sigma_c) / std_c);
//   - for each probe scale s: PSNR/SSIM of decode(mu + s * eps * std_c),
//     eps ~ N(0, I) from Philox (seeded), i.e. how gracefully the decoder
//     handles latents off the encoder's means.
// Writes DIR/report.json and DIR/report.md; prints the table.
//   - with --classifier: the Frechet distance (nn/frechet.h) between the
//     pooled features of the project's own Fashion-MNIST classifier on the
//     originals and on the reconstructions (and on each probe scale); these
//     are classifier-feature distances, not Inception FID.
//   - with --photos: PSNR/SSIM on the photo bank's 32x32 crops (data/photos.h)
//     converted to gray (601 luma), since the Fashion-MNIST tokenizer is
//     1-channel: natural-image texture it never saw in training.
// Not here: an RGB tokenizer's colour photo PSNR.
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "data/idx.h"
#include "data/image_io.h"
#include "data/photos.h"
#include "models/classifier.h"
#include "nn/frechet.h"
#include "models/vae.h"
#include "nn/base.h"
#include "nn/philox.h"
#include "nn/safetensors.h"
#include "stages/eval/eval.h"
#include "stages/eval/metrics_image.h"

#define MAX_SCALES 16

static void help(void) {
    printf("usage: eval --model vae --ckpt PREFIX --out DIR [options]\n"
           "Reconstruction metrics of a trained VAE tokenizer on Fashion-MNIST test images.\n"
           "  --ckpt PREFIX   weights PREFIX.safetensors (train --model vae writes DIR/vae)\n"
           "  --config NAME   f4c4 (default), f4c8, f8c4: must match the checkpoint\n"
           "  --n N           test images to evaluate (default 256, first N)\n"
           "  --batch N       (default 16)\n"
           "  --scales LIST   robustness probe scales, comma separated (default 0.5,1,2)\n"
           "  --seed N        probe noise seed (default 0)\n"
           "  --photos        also PSNR/SSIM on the photo bank crops (gray), needs scripts/photos.sh\n"
           "  --classifier F  classifier weights (train --model classifier) for the Frechet\n"
           "                  distance on its features (omitted when not given)\n"
           "  --data DIR      Fashion-MNIST folder (default %s)\n"
           "Writes DIR/report.json, DIR/report.md.\n", FMNIST_DEFAULT_DIR);
}

typedef struct { double psnr, ssim, frechet; } recon_score;

// Classifier features of B images into feats (B, 64) when cl is not NULL.
static void add_feats(classifier *cl, float *feats, const float *x, int B) {
    if (!cl) return;
    classifier_forward(cl, x, B);
    memcpy(feats, classifier_features(cl), sizeof(float) * (size_t)B * CLASSIFIER_FEAT_DIM);
}

int eval_vae_main(int argc, char **argv) {
    const char *ckpt = NULL, *out = NULL, *config = "f4c4", *data_dir = NULL;
    const char *scales_s = "0.5,1,2", *cls_path = NULL;
    int n = 256, batch = 16, use_photos = 0;
    uint64_t seed = 0;
    static const struct option L[] = {
        {"model", 1, 0, 'm'}, {"ckpt", 1, 0, 'k'}, {"out", 1, 0, 'o'}, {"config", 1, 0, 'c'},
        {"n", 1, 0, 'n'}, {"batch", 1, 0, 'b'}, {"scales", 1, 0, 's'}, {"seed", 1, 0, 'S'},
        {"data", 1, 0, 'D'}, {"classifier", 1, 0, 'C'}, {"photos", 0, 0, 'P'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", L, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'm': break;
        case 'h': help(); return 0;
        case 'k': ckpt = optarg; break;
        case 'o': out = optarg; break;
        case 'c': config = optarg; break;
        case 'D': data_dir = optarg; break;
        case 'C': cls_path = optarg; break;
        case 'P': use_photos = 1; break;
        case 's': scales_s = optarg; break;
        case 'n': n = (int)strtol(optarg, &end, 10); break;
        case 'b': batch = (int)strtol(optarg, &end, 10); break;
        case 'S': seed = strtoull(optarg, &end, 10); break;
        default: fprintf(stderr, "eval: unknown or incomplete option (see --help)\n"); return 2;
        }
        if (end && *end) { fprintf(stderr, "eval: bad number '%s'\n", optarg); return 2; }
    }
    if (!ckpt || !out) { fprintf(stderr, "eval: --ckpt PREFIX and --out DIR are required\n"); return 2; }
    if (n < 2 || batch < 1) { fprintf(stderr, "eval: --n >= 2 and --batch >= 1\n"); return 2; }
    double scales[MAX_SCALES];
    int nscales = 0;
    for (const char *p = scales_s; *p && nscales < MAX_SCALES;) {
        char *end;
        scales[nscales] = strtod(p, &end);
        if (end == p || scales[nscales] < 0) {
            fprintf(stderr, "eval: bad --scales '%s'\n", scales_s);
            return 2;
        }
        nscales++;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') { fprintf(stderr, "eval: bad --scales '%s'\n", scales_s); return 2; }
    }
    vae_config vc;
    if (vae_config_preset(config, 1, &vc)) {
        fprintf(stderr, "eval: unknown --config '%s'\n", config);
        return 2;
    }
    if (mkdir(out, 0755) && errno != EEXIST) {
        fprintf(stderr, "eval: cannot create %s: %s\n", out, strerror(errno));
        return 1;
    }
    char msg[512];
    fmnist *test = NULL;
    if (fmnist_load(data_dir, "test", &test, msg, sizeof msg)) {
        fprintf(stderr, "eval: %s\n", msg);
        return 1;
    }
    if (n > test->n) n = (int)test->n;
    vae *m = NULL;
    classifier *cl = NULL;
    float *f_orig = NULL, *f_rec = NULL;
    int rc = 0;
    if (vae_create(&m, &vc, batch, 0)) { fprintf(stderr, "eval: out of memory\n"); rc = 1; goto done; }
    char path[1200];
    st_err err;
    int e;
    if (cls_path) {
        f_orig = malloc(sizeof(float) * (size_t)n * CLASSIFIER_FEAT_DIM);
        f_rec = malloc(sizeof(float) * (size_t)n * CLASSIFIER_FEAT_DIM);
        if (!f_orig || !f_rec || classifier_create(&cl, batch, 0)) {
            fprintf(stderr, "eval: out of memory\n");
            rc = 1;
            goto done;
        }
        if ((e = st_load_params(cls_path, &cl->pt, &err))) {
            fprintf(stderr, "eval: %s: %s (%s)\n", cls_path, ckpt_strerror(e), err.msg);
            rc = 1;
            goto done;
        }
    }
    snprintf(path, sizeof path, "%s.safetensors", ckpt);
    e = st_load_params(path, &m->pt, &err);
    if (e) {
        fprintf(stderr, "eval: %s: %s (%s)\n", path, ckpt_strerror(e), err.msg);
        rc = 1;
        goto done;
    }
    int zc = vc.z_channels, zs = m->zside, per = zc * zs * zs;
    float *x = malloc(sizeof(float) * (size_t)batch * 1024);
    float *mu = malloc(sizeof(float) * (size_t)n * per), *lv = malloc(sizeof(float) * (size_t)n * per);
    float *z = malloc(sizeof(float) * (size_t)batch * per), *eps = malloc(sizeof(float) * (size_t)batch * per);
    recon_score *sc = calloc((size_t)nscales + 1, sizeof *sc);
    if (!x || !mu || !lv || !z || !eps || !sc) { fprintf(stderr, "eval: out of memory\n"); rc = 1; goto free_bufs; }
    // Pass 1: moments and reconstructions through mu.
    for (int i0 = 0; i0 < n; i0 += batch) {
        int B = n - i0 < batch ? n - i0 : batch;
        fmnist_batch_f32(test, x, NULL, NULL, i0, B);
        vae_encode(m, x, B);
        memcpy(mu + (size_t)i0 * per, m->mu, sizeof(float) * (size_t)B * per);
        memcpy(lv + (size_t)i0 * per, m->logvar, sizeof(float) * (size_t)B * per);
        const float *rec = vae_decode(m, m->mu, B);
        add_feats(cl, f_orig ? f_orig + (size_t)i0 * CLASSIFIER_FEAT_DIM : NULL, x, B);
        add_feats(cl, f_rec ? f_rec + (size_t)i0 * CLASSIFIER_FEAT_DIM : NULL, rec, B);
        for (int b = 0; b < B; b++) {
            sc[0].psnr += image_psnr(rec + b * 1024, x + b * 1024, 1, 32, 32);
            sc[0].ssim += image_ssim(rec + b * 1024, x + b * 1024, 1, 32, 32);
        }
        if (i0 == 0) {
            float *grid = malloc(sizeof(float) * 2 * (size_t)B * 1024);
            if (grid) {
                memcpy(grid, x, sizeof(float) * (size_t)B * 1024);
                memcpy(grid + (size_t)B * 1024, rec, sizeof(float) * (size_t)B * 1024);
                snprintf(path, sizeof path, "%s/recon.png", out);
                if (image_grid_write_png(path, grid, 2 * B, 1, 32, 32, B))
                    fprintf(stderr, "eval: cannot write %s\n", path);
                free(grid);
            }
        }
        fprintf(stderr, "\r[eval vae] reconstruct %d/%d", i0 + B, n);
    }
    fprintf(stderr, "\n");
    sc[0].frechet = NAN;
    if (cl && frechet_distance_f32(&sc[0].frechet, f_orig, n, f_rec, n, CLASSIFIER_FEAT_DIM))
        fprintf(stderr, "eval: Frechet distance failed\n");
    // Latent spread per channel and sigma statistics.
    double stdc[64] = {0}, sigc[64] = {0}, mean_sigma = 0;
    CHECK(zc <= 64);
    for (int ch = 0; ch < zc; ch++) {
        double s = 0, s2 = 0, sg = 0;
        int64_t cnt = 0;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < zs * zs; k++) {
                size_t j = (size_t)i * per + (size_t)ch * zs * zs + k;
                double v = mu[j], l = lv[j];
                l = l < LOGVAR_MIN ? LOGVAR_MIN : l > LOGVAR_MAX ? LOGVAR_MAX : l;
                s += v; s2 += v * v; sg += exp(0.5 * l);
                cnt++;
            }
        double mean = s / cnt;
        stdc[ch] = sqrt(fmax(s2 / cnt - mean * mean, 0.0));
        sigc[ch] = sg / cnt;
        mean_sigma += sigc[ch] / zc;
    }
    double rel = 0;
    for (int ch = 0; ch < zc; ch++) rel += (stdc[ch] > 0 ? sigc[ch] / stdc[ch] : INFINITY) / zc;
    // Pass 2: the robustness probe.
    for (int si = 0; si < nscales; si++) {
        for (int i0 = 0; i0 < n; i0 += batch) {
            int B = n - i0 < batch ? n - i0 : batch;
            fmnist_batch_f32(test, x, NULL, NULL, i0, B);
            philox_normal(eps, (int64_t)B * per, seed, 7, (uint64_t)i0 * per);
            for (int b = 0; b < B; b++)
                for (int ch = 0; ch < zc; ch++)
                    for (int k = 0; k < zs * zs; k++) {
                        size_t j = (size_t)b * per + (size_t)ch * zs * zs + k;
                        z[j] = mu[(size_t)i0 * per + j] + (float)(scales[si] * stdc[ch]) * eps[j];
                    }
            const float *rec = vae_decode(m, z, B);
            add_feats(cl, f_rec ? f_rec + (size_t)i0 * CLASSIFIER_FEAT_DIM : NULL, rec, B);
            for (int b = 0; b < B; b++) {
                sc[si + 1].psnr += image_psnr(rec + b * 1024, x + b * 1024, 1, 32, 32);
                sc[si + 1].ssim += image_ssim(rec + b * 1024, x + b * 1024, 1, 32, 32);
            }
        }
        sc[si + 1].frechet = NAN;
        if (cl && frechet_distance_f32(&sc[si + 1].frechet, f_orig, n, f_rec, n, CLASSIFIER_FEAT_DIM))
            fprintf(stderr, "eval: Frechet distance failed\n");
        fprintf(stderr, "[eval vae] probe s=%g done\n", scales[si]);
    }
    for (int i = 0; i <= nscales; i++) { sc[i].psnr /= n; sc[i].ssim /= n; }
    // Photo bank crops, gray: PSNR/SSIM through mu.
    double ph_psnr = NAN, ph_ssim = NAN;
    int ph_n = 0;
    if (use_photos) {
        photo_bank *pb = NULL;
        if (photos_open(NULL, 128, 32, &pb, msg, sizeof msg)) {
            fprintf(stderr, "eval: --photos: %s\n", msg);
            rc = 1;
            goto free_bufs;
        }
        ph_psnr = ph_ssim = 0;
        ph_n = (int)pb->n;
        for (int i0 = 0; i0 < ph_n; i0 += batch) {
            int B = ph_n - i0 < batch ? ph_n - i0 : batch;
            for (int b = 0; b < B; b++) {
                const float *im = pb->imgs + (size_t)(i0 + b) * 3 * 1024;
                for (int k = 0; k < 1024; k++)
                    x[b * 1024 + k] = 0.299f * im[k] + 0.587f * im[1024 + k] + 0.114f * im[2048 + k];
            }
            vae_encode(m, x, B);
            const float *rec = vae_decode(m, m->mu, B);
            for (int b = 0; b < B; b++) {
                ph_psnr += image_psnr(rec + b * 1024, x + b * 1024, 1, 32, 32);
                ph_ssim += image_ssim(rec + b * 1024, x + b * 1024, 1, 32, 32);
            }
        }
        ph_psnr /= ph_n;
        ph_ssim /= ph_n;
        photos_destroy(&pb);
    }

    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", "vae");
    cJSON_AddStringToObject(j, "ckpt", ckpt);
    cJSON_AddStringToObject(j, "config", vc.name);
    cJSON_AddNumberToObject(j, "n_images", n);
    cJSON_AddStringToObject(j, "split", "fashion-mnist test (first n)");
    cJSON_AddNumberToObject(j, "psnr", sc[0].psnr);
    cJSON_AddNumberToObject(j, "ssim", sc[0].ssim);
    cJSON_AddNumberToObject(j, "mean_sigma", mean_sigma);
    cJSON_AddNumberToObject(j, "sigma_over_latent_std", rel);
    cJSON *lstd = cJSON_AddArrayToObject(j, "latent_std");
    for (int ch = 0; ch < zc; ch++) cJSON_AddItemToArray(lstd, cJSON_CreateNumber(stdc[ch]));
    if (cl) {
        cJSON_AddNumberToObject(j, "frechet_classifier_features", sc[0].frechet);
        cJSON_AddStringToObject(j, "frechet_note",
                                "Frechet distance on the project's Fashion-MNIST classifier features (64-d), not Inception FID");
        cJSON_AddStringToObject(j, "classifier", cls_path);
    } else {
        cJSON_AddNullToObject(j, "frechet_classifier_features");
        cJSON_AddStringToObject(j, "frechet_note", "not computed: no --classifier given");
    }
    if (use_photos) {
        cJSON *ph = cJSON_AddObjectToObject(j, "photo_bank_gray");
        cJSON_AddNumberToObject(ph, "crops", ph_n);
        cJSON_AddNumberToObject(ph, "psnr", ph_psnr);
        cJSON_AddNumberToObject(ph, "ssim", ph_ssim);
    }
    cJSON *pr = cJSON_AddArrayToObject(j, "robustness");
    for (int si = 0; si < nscales; si++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "scale", scales[si]);
        cJSON_AddNumberToObject(o, "psnr", sc[si + 1].psnr);
        cJSON_AddNumberToObject(o, "ssim", sc[si + 1].ssim);
        if (cl) cJSON_AddNumberToObject(o, "frechet_classifier_features", sc[si + 1].frechet);
        cJSON_AddItemToArray(pr, o);
    }
    char *s = cJSON_Print(j);
    snprintf(path, sizeof path, "%s/report.json", out);
    FILE *f = fopen(path, "w");
    if (f) { fputs(s, f); fputc('\n', f); fclose(f); }
    else { fprintf(stderr, "eval: cannot write %s\n", path); rc = 1; }
    free(s);
    cJSON_Delete(j);
    snprintf(path, sizeof path, "%s/report.md", out);
    f = fopen(path, "w");
    FILE *outs[2] = {stdout, f};
    for (int k = 0; k < 2; k++) {
        if (!outs[k]) continue;
        fprintf(outs[k], "# VAE tokenizer %s (%s)\n\n", ckpt, vc.name);
        fprintf(outs[k], "Fashion-MNIST test, first %d images, reconstruction through mu.\n\n", n);
        fprintf(outs[k], "| PSNR | SSIM | Frechet (classifier feats) | mean sigma | sigma / latent std |\n"
                         "|---|---|---|---|---|\n");
        fprintf(outs[k], "| %.3f | %.4f | %.4g | %.4g | %.4g |\n\n", sc[0].psnr, sc[0].ssim, sc[0].frechet,
                mean_sigma, rel);
        fprintf(outs[k], "Robustness probe decode(mu + s*eps*latent_std):\n\n| s | PSNR | SSIM | Frechet |\n"
                         "|---|---|---|---|\n");
        for (int si = 0; si < nscales; si++)
            fprintf(outs[k], "| %g | %.3f | %.4f | %.4g |\n", scales[si], sc[si + 1].psnr, sc[si + 1].ssim,
                    sc[si + 1].frechet);
        fprintf(outs[k], "\nFrechet distances use the project's own Fashion-MNIST classifier features "
                         "(64-d), not Inception; nan = no --classifier.\n");
        if (use_photos)
            fprintf(outs[k], "\nPhoto bank (%d crops 32x32, gray): PSNR %.3f, SSIM %.4f\n", ph_n, ph_psnr,
                    ph_ssim);
    }
    if (f) fclose(f);
free_bufs:
    free(x); free(mu); free(lv); free(z); free(eps); free(sc);
done:
    free(f_orig); free(f_rec);
    classifier_destroy(&cl);
    vae_destroy(&m);
    fmnist_destroy(&test);
    return rc;
}
