// image_vae.c: `eval --model vae`, the tokenizer's reconstruction metrics and
// the latent robustness probe (issue 5). The test images follow the
// checkpoint (models/vae_ckpt.h: preset from its metadata, image channels
// from its weights): a 1-channel tokenizer is evaluated on the Fashion-MNIST
// test split, a 3-channel (RGB) one on the photo bank's held-out crops in
// colour (data/photos.h). On those images:
//   - PSNR and SSIM (SPEC 5) of decode(mu) against the originals;
//   - mean sigma, the per-channel latent spread std_c of mu over the
//     evaluated images, and sigma relative to that spread (mean over
//     channels of mean(sigma_c) / std_c);
//   - for each probe scale s: PSNR/SSIM of decode(mu + s * eps * std_c),
//     eps ~ N(0, I) from Philox (seeded), i.e. how gracefully the decoder
//     handles latents off the encoder's means.
// Writes DIR/report.json and DIR/report.md; prints the table.
//   - with --classifier: the Frechet distance (metrics/frechet.h) between the
//     pooled features of the project's own Fashion-MNIST classifier on the
//     originals and on the reconstructions (and on each probe scale); these
//     are classifier-feature distances, not Inception FID.
//     (1-channel tokenizers only: the classifier reads Fashion-MNIST.)
//   - with --photos, 1-channel tokenizers: PSNR/SSIM on all the photo bank's
//     32x32 crops converted to gray (601 luma): natural-image texture the
//     Fashion-MNIST tokenizer never saw in training.
// Second mode, --plot-robustness OUT.png REPORT.json...: the robustness
// curves of several eval reports in one figure (PSNR and Frechet vs s, s = 0
// being the plain reconstruction), one line per report (stages/eval/plot_lines.h).
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
#include "models/vae.h"
#include "models/vae_ckpt.h"
#include "core/base.h"
#include "metrics/frechet.h"
#include "core/philox.h"
#include "nn/safetensors.h"
#include "stages/common/flags.h"
#include "stages/eval/eval.h"
#include "metrics/image.h"
#include "stages/eval/plot_lines.h"

#define MAX_SCALES 16
#define MAX_REPORTS 6

static const char STAGE[] = "eval";
// Bounds: the --n test images (and their reconstructions) are held at once.
enum { EVAL_MAX_N = 100000, EVAL_MAX_BATCH = 1024 };

static void help(void) {
    printf("usage: eval --model vae --ckpt PREFIX --out DIR [options]\n"
           "       eval --model vae --plot-robustness OUT.png [--labels A,B,..] REPORT.json...\n"
           "Reconstruction metrics of a trained VAE tokenizer: on Fashion-MNIST test images for a\n"
           "1-channel tokenizer, on the photo bank's held-out photos (32x32 tiles, colour) for a\n"
           "3-channel one (channels read from the checkpoint's weights).\n"
           "  --ckpt PREFIX   weights PREFIX.safetensors (train --model vae writes DIR/vae)\n"
           "  --config NAME   f4c4, f4c8, f8c4: only needed when the checkpoint has no\n"
           "                  vae.config metadata (default then f4c4); must match it otherwise\n"
           "  --n N           test images to evaluate (default 256, first N)\n"
           "  --batch N       (default 16)\n"
           "  --scales LIST   robustness probe scales, comma separated (default 0.5,1,2)\n"
           "  --seed N        probe noise seed (default 0)\n"
           "  --photos        1-channel tokenizer: also PSNR/SSIM on all photo bank crops in gray\n"
           "                  (needs scripts/photos.sh)\n"
           "  --photo-base N  RGB tokenizer: side the held-out photos are reduced to before\n"
           "                  cutting 32x32 tiles (default 128, as train --photo-base)\n"
           "  --classifier F  classifier weights (train --model classifier) for the Frechet\n"
           "                  distance on its features (1-channel only; omitted when not given)\n"
           "  --data DIR      Fashion-MNIST folder (default %s)\n"
           DEVICE_HELP
           "Writes DIR/report.json, DIR/report.md, DIR/recon.png (originals row, reconstructions\n"
           "row).\n"
           "--plot-robustness OUT.png REPORT.json...: draws PSNR and classifier-feature Frechet vs\n"
           "probe scale s (s = 0: reconstruction through mu) of up to %d eval reports, one line\n"
           "each, labelled by --labels or by the reports' reg/config.\n", FMNIST_DEFAULT_DIR, MAX_REPORTS);
}

typedef struct { double psnr, ssim, frechet; } recon_score;

// Classifier features of B images into feats (B, 64) when cl is not NULL.
static void add_feats(classifier *cl, float *feats, const float *x, int B) {
    if (!cl) return;
    classifier_forward(cl, x, B);
    memcpy(feats, classifier_features(cl), sizeof(float) * (size_t)B * CLASSIFIER_FEAT_DIM);
}

// ---- robustness figure ---------------------------------------------------

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && n < (64L << 20) && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1))) {
            if (fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
            else buf[n] = 0;
        }
    }
    fclose(f);
    return buf;
}

static double num_or_nan(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static int plot_robustness(const char *out, const char *labels, char **reports, int nrep) {
    if (nrep < 1 || nrep > MAX_REPORTS) {
        fprintf(stderr, "eval: --plot-robustness takes 1..%d report.json files\n", MAX_REPORTS);
        return 2;
    }
    double xs[MAX_REPORTS][MAX_SCALES + 1], ps[MAX_REPORTS][MAX_SCALES + 1], fs[MAX_REPORTS][MAX_SCALES + 1];
    char names[MAX_REPORTS][64];
    plot_series sp[MAX_REPORTS], sf[MAX_REPORTS];
    const char *lp = labels;
    for (int r = 0; r < nrep; r++) {
        char *text = slurp(reports[r]);
        cJSON *j = text ? cJSON_Parse(text) : NULL;
        free(text);
        const cJSON *rob = j ? cJSON_GetObjectItemCaseSensitive(j, "robustness") : NULL;
        if (!cJSON_IsArray(rob) || !isfinite(num_or_nan(j, "psnr"))) {
            fprintf(stderr, "eval: %s: not an eval --model vae report.json (%s)\n", reports[r],
                    j ? "no psnr / robustness" : "unreadable or not JSON");
            cJSON_Delete(j);
            return 2;
        }
        int n = 0;
        xs[r][n] = 0;
        ps[r][n] = num_or_nan(j, "psnr");
        fs[r][n++] = num_or_nan(j, "frechet_classifier_features");
        const cJSON *e;
        cJSON_ArrayForEach(e, rob) {
            if (n > MAX_SCALES) break;
            xs[r][n] = num_or_nan(e, "scale");
            ps[r][n] = num_or_nan(e, "psnr");
            fs[r][n++] = num_or_nan(e, "frechet_classifier_features");
        }
        if (lp && *lp) {
            const char *c = strchr(lp, ',');
            size_t len = c ? (size_t)(c - lp) : strlen(lp);
            snprintf(names[r], sizeof names[r], "%.*s", (int)(len < 60 ? len : 60), lp);
            lp = c ? c + 1 : lp + len;
        } else {
            const cJSON *reg = cJSON_GetObjectItemCaseSensitive(j, "reg");
            const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(j, "config");
            snprintf(names[r], sizeof names[r], "%s %s", cJSON_IsString(reg) ? reg->valuestring : "?",
                     cJSON_IsString(cfg) ? cfg->valuestring : "");
        }
        sp[r] = (plot_series){names[r], n, xs[r], ps[r]};
        sf[r] = (plot_series){names[r], n, xs[r], fs[r]};
        cJSON_Delete(j);
    }
    toy_canvas c;
    if (toy_canvas_new(&c, 2 * 460, 330, 0, 1, 0, 1)) { fprintf(stderr, "eval: out of memory\n"); return 1; }
    plot_lines_panel(&c, 0, 0, 460, 330, "PSNR (DB) VS S", "S", sp, nrep, 0);
    plot_lines_panel(&c, 460, 0, 460, 330, "FRECHET (CLS FEATS, LOG) VS S", "S", sf, nrep, 1);
    int rc = toy_canvas_write(&c, out);
    toy_canvas_free(&c);
    if (rc) { fprintf(stderr, "eval: cannot write %s\n", out); return 1; }
    fprintf(stderr, "[eval vae] wrote %s\n", out);
    return 0;
}

// ---- test images ----------------------------------------------------------

// The held-out photos' fixed-grid 32x32 tiles (n, 3, 32, 32); *n set.
static int load_photo_test(int base, float **out, int *n, char *msg, int cap) {
    photo_bank *pb = NULL;
    int e = photos_open(NULL, base, 32, &pb, msg, cap);
    if (e) return e;
    int cnt = 0;
    for (int64_t i = 0; i < pb->n; i++) cnt += photos_is_test((int)(i / pb->per_photo));
    float *x = malloc(sizeof(float) * ((size_t)cnt * 3 * 1024 + 1));
    if (!x) { photos_destroy(&pb); snprintf(msg, (size_t)cap, "out of memory"); return VEL_ENOMEM; }
    int k = 0;
    for (int64_t i = 0; i < pb->n; i++)
        if (photos_is_test((int)(i / pb->per_photo)))
            memcpy(x + (size_t)k++ * 3 * 1024, pb->imgs + (size_t)i * 3 * 1024, sizeof(float) * 3 * 1024);
    photos_destroy(&pb);
    if (cnt < 2) { free(x); snprintf(msg, (size_t)cap, "photo bank: fewer than 2 held-out tiles"); return DATA_ENOPHOTOS; }
    *out = x;
    *n = cnt;
    return 0;
}

int eval_vae_main(int argc, char **argv) {
    const char *ckpt = NULL, *out = NULL, *config = NULL, *data_dir = NULL;
    const char *scales_s = "0.5,1,2", *cls_path = NULL, *plot_out = NULL, *labels = NULL;
    int n = 256, batch = 16, use_photos = 0, photo_base = 128;
    uint64_t seed = 0;
    static const struct option L[] = {
        {"model", 1, 0, 'm'}, {"ckpt", 1, 0, 'k'}, {"out", 1, 0, 'o'}, {"config", 1, 0, 'c'},
        {"n", 1, 0, 'n'}, {"batch", 1, 0, 'b'}, {"scales", 1, 0, 's'}, {"seed", 1, 0, 'S'},
        {"data", 1, 0, 'D'}, {"classifier", 1, 0, 'C'}, {"photos", 0, 0, 'P'},
        {"photo-base", 1, 0, 'B'}, {"plot-robustness", 1, 0, 'R'}, {"labels", 1, 0, 'L'},
        {"device", 1, 0, 'x'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", L, NULL)) != -1) {
        switch (c) {
        case 'm': break;
        case 'h': help(); return 0;
        case 'k': ckpt = optarg; break;
        case 'o': out = optarg; break;
        case 'c': config = optarg; break;
        case 'D': data_dir = optarg; break;
        case 'C': cls_path = optarg; break;
        case 'P': use_photos = 1; break;
        case 'R': plot_out = optarg; break;
        case 'L': labels = optarg; break;
        case 's': scales_s = optarg; break;
        case 'n': if (flag_int(STAGE, "--n", optarg, 2, EVAL_MAX_N, &n)) return 2; break;
        case 'b': if (flag_int(STAGE, "--batch", optarg, 1, EVAL_MAX_BATCH, &batch)) return 2; break;
        case 'B': if (flag_int(STAGE, "--photo-base", optarg, 32, 4096, &photo_base)) return 2; break;
        case 'S': if (flag_u64(STAGE, "--seed", optarg, &seed)) return 2; break;
        case 'x': if (flag_device_use(STAGE, optarg)) return 2; break;
        default: fprintf(stderr, "eval: unknown or incomplete option (see --help)\n"); return 2;
        }
    }
    if (plot_out) return plot_robustness(plot_out, labels, argv + optind, argc - optind);
    if (optind < argc) { fprintf(stderr, "eval: unexpected argument '%s' (see --help)\n", argv[optind]); return 2; }
    if (!ckpt || !out) { fprintf(stderr, "eval: --ckpt PREFIX and --out DIR are required\n"); return 2; }
    if (photo_base % 32) {
        fprintf(stderr, "eval: --photo-base must be a multiple of 32 in 32..4096\n");
        return 2;
    }
    double scales[MAX_SCALES];
    int nscales = 0;
    for (const char *p = scales_s; *p;) {
        char *end;
        if (nscales == MAX_SCALES) { fprintf(stderr, "eval: at most %d --scales\n", MAX_SCALES); return 2; }
        scales[nscales] = strtod(p, &end);
        if (end == p || !(scales[nscales] >= 0) || !isfinite(scales[nscales]) || (*end && *end != ',')) {
            fprintf(stderr, "eval: bad --scales '%s'\n", scales_s);
            return 2;
        }
        nscales++;
        p = *end == ',' ? end + 1 : end;
    }
    char msg[512], path[1200];
    snprintf(path, sizeof path, "%s.safetensors", ckpt);
    vae_config vc;
    int e = vae_config_from_ckpt(path, config, &vc, msg, sizeof msg);
    if (e) { fprintf(stderr, "eval: %s\n", msg); return e == VEL_EINVAL ? 2 : 1; }
    const char *reg_name = "?";
    {
        st_file *sf = NULL;
        if (!st_open(&sf, path, NULL)) {
            const char *r = st_meta_get(sf, "vae.reg");
            reg_name = r && !strcmp(r, "kl") ? "kl" : r && !strcmp(r, "ve") ? "ve" : "?";
            st_close(&sf);
        }
    }
    const int C = vc.in_ch, R = vc.resolution, npix = C * R * R;
    if (vc.out_ch != C || R != 32) {
        fprintf(stderr, "eval: %s: only 32x32 tokenizers with in_ch == out_ch are evaluated here\n", path);
        return 2;
    }
    if (C == 3 && (cls_path || use_photos))
        fprintf(stderr, "eval: RGB tokenizer: --classifier and --photos (gray) do not apply, ignored\n");
    if (C == 3) cls_path = NULL, use_photos = 0;
    if (stage_mkdir_p(STAGE, out)) return 1;
    // The test images, all in memory: (n, C, 32, 32).
    float *imgs = NULL;
    char split[160];
    if (C == 1) {
        fmnist *test = NULL;
        if (fmnist_load(data_dir, "test", &test, msg, sizeof msg)) { fprintf(stderr, "eval: %s\n", msg); return 1; }
        if (n > test->n) n = (int)test->n;
        imgs = malloc(sizeof(float) * (size_t)n * 1024);
        if (imgs) fmnist_batch_f32(test, imgs, NULL, NULL, 0, n);
        fmnist_destroy(&test);
        if (!imgs) { fprintf(stderr, "eval: out of memory\n"); return 1; }
        snprintf(split, sizeof split, "fashion-mnist test (first n)");
    } else {
        int have = 0;
        if (load_photo_test(photo_base, &imgs, &have, msg, sizeof msg)) { fprintf(stderr, "eval: %s\n", msg); return 1; }
        if (n > have) n = have;
        snprintf(split, sizeof split, "photo bank held-out photos (every %dth), %dx%d -> 32x32 tiles, colour (first n)",
                 PHOTOS_TEST_EVERY, photo_base, photo_base);
    }
    vae *m = NULL;
    classifier *cl = NULL;
    float *f_orig = NULL, *f_rec = NULL;
    int rc = 0;
    if (vae_create(&m, &vc, batch, 0)) { fprintf(stderr, "eval: out of memory\n"); rc = 1; goto done; }
    st_err err;
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
    e = st_load_params(path, &m->pt, &err);
    if (e) {
        fprintf(stderr, "eval: %s: %s (%s)\n", path, ckpt_strerror(e), err.msg);
        rc = 1;
        goto done;
    }
    int zc = vc.z_channels, zs = m->zside, per = zc * zs * zs;
    float *x = malloc(sizeof(float) * (size_t)batch * npix);
    float *mu = malloc(sizeof(float) * (size_t)n * per), *lv = malloc(sizeof(float) * (size_t)n * per);
    float *z = malloc(sizeof(float) * (size_t)batch * per), *eps = malloc(sizeof(float) * (size_t)batch * per);
    recon_score *sc = calloc((size_t)nscales + 1, sizeof *sc);
    if (!x || !mu || !lv || !z || !eps || !sc) { fprintf(stderr, "eval: out of memory\n"); rc = 1; goto free_bufs; }
    // Pass 1: moments and reconstructions through mu.
    for (int i0 = 0; i0 < n; i0 += batch) {
        int B = n - i0 < batch ? n - i0 : batch;
        const float *xb = imgs + (size_t)i0 * npix;
        vae_encode(m, xb, B);
        memcpy(mu + (size_t)i0 * per, m->mu, sizeof(float) * (size_t)B * per);
        memcpy(lv + (size_t)i0 * per, m->logvar, sizeof(float) * (size_t)B * per);
        const float *rec = vae_decode(m, m->mu, B);
        add_feats(cl, f_orig ? f_orig + (size_t)i0 * CLASSIFIER_FEAT_DIM : NULL, xb, B);
        add_feats(cl, f_rec ? f_rec + (size_t)i0 * CLASSIFIER_FEAT_DIM : NULL, rec, B);
        for (int b = 0; b < B; b++) {
            sc[0].psnr += image_psnr(rec + (size_t)b * npix, xb + (size_t)b * npix, C, R, R);
            sc[0].ssim += image_ssim(rec + (size_t)b * npix, xb + (size_t)b * npix, C, R, R);
        }
        if (i0 == 0) {
            float *grid = malloc(sizeof(float) * 2 * (size_t)B * npix);
            if (grid) {
                memcpy(grid, xb, sizeof(float) * (size_t)B * npix);
                memcpy(grid + (size_t)B * npix, rec, sizeof(float) * (size_t)B * npix);
                snprintf(path, sizeof path, "%s/recon.png", out);
                if (image_grid_write_png(path, grid, 2 * B, C, R, R, B))
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
            const float *xb = imgs + (size_t)i0 * npix;
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
                sc[si + 1].psnr += image_psnr(rec + (size_t)b * npix, xb + (size_t)b * npix, C, R, R);
                sc[si + 1].ssim += image_ssim(rec + (size_t)b * npix, xb + (size_t)b * npix, C, R, R);
            }
        }
        sc[si + 1].frechet = NAN;
        if (cl && frechet_distance_f32(&sc[si + 1].frechet, f_orig, n, f_rec, n, CLASSIFIER_FEAT_DIM))
            fprintf(stderr, "eval: Frechet distance failed\n");
        fprintf(stderr, "[eval vae] probe s=%g done\n", scales[si]);
    }
    for (int i = 0; i <= nscales; i++) { sc[i].psnr /= n; sc[i].ssim /= n; }
    // Photo bank crops, gray (1-channel tokenizers): PSNR/SSIM through mu.
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
    cJSON_AddStringToObject(j, "reg", reg_name);
    cJSON_AddNumberToObject(j, "in_ch", C);
    cJSON_AddNumberToObject(j, "n_images", n);
    cJSON_AddStringToObject(j, "split", split);
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
        cJSON_AddStringToObject(j, "frechet_note", C == 1 ? "not computed: no --classifier given"
                                                          : "not computed: the classifier reads 1-channel Fashion-MNIST");
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
        fprintf(outs[k], "# VAE tokenizer %s (%s, %s, %d channel%s)\n\n", ckpt, vc.name, reg_name, C, C > 1 ? "s" : "");
        fprintf(outs[k], "%s: %d images, reconstruction through mu.\n\n", split, n);
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
                         "(64-d), not Inception; nan = not computed (no --classifier, or an RGB tokenizer).\n");
        if (use_photos)
            fprintf(outs[k], "\nPhoto bank (%d crops 32x32, gray): PSNR %.3f, SSIM %.4f\n", ph_n, ph_psnr,
                    ph_ssim);
    }
    if (f) fclose(f);
free_bufs:
    free(x); free(mu); free(lv); free(z); free(eps); free(sc);
done:
    free(f_orig); free(f_rec); free(imgs);
    classifier_destroy(&cl);
    vae_destroy(&m);
    return rc;
}
