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
// being the plain reconstruction), one line per report (stages/common/plot_lines.h).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/base.h"
#include "data/idx.h"
#include "data/image_io.h"
#include "data/photo_tiles.h"
#include "data/photos.h"
#include "metrics/frechet.h"
#include "metrics/vae_recon.h"
#include "models/classifier.h"
#include "models/vae.h"
#include "models/vae_ckpt.h"
#include "models/vae_probe.h"
#include "nn/safetensors.h"
#include "stages/common/flags.h"
#include "stages/common/progress.h"
#include "stages/common/recon_grid.h"
#include "stages/eval/eval.h"
#include "stages/eval/plot_robustness.h"


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

// DIR/recon.png: the B originals (C, 32, 32) over their reconstructions.
static void write_recon_png(const char *dir, const float *orig, const float *rec, int B, int C) {
    char path[1200];
    snprintf(path, sizeof path, "%s/recon.png", dir);
    if (recon_grid_png(path, orig, rec, B, C, "EVAL: RECONSTRUCTION THROUGH MU"))
        fprintf(stderr, "eval: cannot write %s\n", path);
}

// Classifier features of B images into feats (B, 64) when cl is not NULL.
static void add_feats(classifier *cl, float *feats, const float *x, int B) {
    if (!cl) return;
    classifier_forward(cl, x, B);
    memcpy(feats, classifier_features(cl), sizeof(float) * (size_t)B * CLASSIFIER_FEAT_DIM);
}

// What eval does with each batch of reconstructions (metrics/vae_recon.h).
typedef struct {
    classifier *cl;            // NULL: no Frechet distance
    float *f_orig, *f_rec;     // (n, 64) features of the originals, of the current reconstructions
    const char *out;           // recon.png of the first batch (pass 1 only; NULL after)
    int64_t n;
    int C;
} eval_ctx;

static void on_batch(void *ctx, const float *orig, const float *rec, int64_t i0, int B) {
    eval_ctx *c = ctx;
    const size_t fo = (size_t)i0 * CLASSIFIER_FEAT_DIM;
    if (c->out) {   // pass 1: features of the originals, the picture, progress
        add_feats(c->cl, c->f_orig ? c->f_orig + fo : NULL, orig, B);
        if (i0 == 0) write_recon_png(c->out, orig, rec, B, c->C);
        fprintf(stderr, "%s[eval vae] reconstruct %lld/%lld%s", progress_start(stderr), (long long)(i0 + B),
                (long long)c->n, progress_end(stderr));
    }
    add_feats(c->cl, c->f_rec ? c->f_rec + fo : NULL, rec, B);
}

// The Frechet distance between the originals' and the reconstructions'
// features (NAN without a classifier).
static double frechet_of(const eval_ctx *c) {
    double f = NAN;
    if (c->cl && frechet_distance_f32(&f, c->f_orig, c->n, c->f_rec, c->n, CLASSIFIER_FEAT_DIM))
        fprintf(stderr, "eval: Frechet distance failed\n");
    return f;
}

int eval_vae_main(int argc, char **argv) {
    const char *ckpt = NULL, *out = NULL, *config = NULL, *data_dir = NULL;
    const char *scales_s = "0.5,1,2", *cls_path = NULL, *plot_out = NULL, *labels = NULL;
    int n = 256, batch = 16, use_photos = 0, photo_base = 128;
    uint64_t seed = 0;
    const flag_spec F[] = {
        FLAG_STR_("ckpt", &ckpt), FLAG_STR_("out", &out), FLAG_STR_("config", &config),
        FLAG_INT_("n", &n, 2, EVAL_MAX_N), FLAG_INT_("batch", &batch, 1, EVAL_MAX_BATCH),
        FLAG_STR_("scales", &scales_s), FLAG_U64_("seed", &seed), FLAG_STR_("data", &data_dir),
        FLAG_STR_("classifier", &cls_path), FLAG_BOOL_("photos", &use_photos),
        FLAG_INT_("photo-base", &photo_base, 32, 4096), FLAG_STR_("plot-robustness", &plot_out),
        FLAG_STR_("labels", &labels), FLAG_DEVICE_};
    int help_asked, ops;
    if (flag_parse(STAGE, argc, argv, F, FLAG_COUNT(F), &help_asked, &ops)) return 2;
    if (help_asked) { help(); return 0; }
    if (plot_out) return plot_robustness(plot_out, labels, argv + ops, argc - ops);
    if (ops < argc) { fprintf(stderr, "eval: unexpected argument '%s' (see --help)\n", argv[ops]); return 2; }
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
    char path[1200];
    snprintf(path, sizeof path, "%s.safetensors", ckpt);
    vae_config vc;
    int e = vae_config_from_ckpt(path, config, &vc);
    if (e) { fprintf(stderr, "eval: %s\n", vel_errmsg(e)); return vel_exit_code(e); }
    const char *reg_name = "?";
    {
        st_file *sf = NULL;
        if (!st_open(&sf, path)) {
            const char *r = st_meta_get(sf, "vae.reg");
            reg_name = r && !strcmp(r, "kl") ? "kl" : r && !strcmp(r, "ve") ? "ve" : "?";
            st_close(&sf);
        }
    }
    const int C = vc.in_ch, R = vc.resolution;
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
        int lrc = fmnist_load(data_dir, "test", &test);
        if (lrc) { fprintf(stderr, "eval: %s\n", vel_errmsg(lrc)); return vel_exit_code(lrc); }
        if (n > test->n) n = (int)test->n;
        imgs = malloc(sizeof(float) * (size_t)n * 1024);
        if (imgs) fmnist_batch_f32(test, imgs, NULL, NULL, 0, n);
        fmnist_destroy(&test);
        if (!imgs) { fprintf(stderr, "eval: out of memory\n"); return 1; }
        snprintf(split, sizeof split, "fashion-mnist test (first n)");
    } else {
        photo_tiles tiles;
        int prc = photo_tiles_load(NULL, photo_base, 32, PHOTOS_TEST, &tiles);
        if (prc || tiles.n < 2) {
            fprintf(stderr, "eval: %s\n", tiles.n ? "photo bank: fewer than 2 held-out tiles" : vel_errmsg(prc));
            photo_tiles_free(&tiles);
            return 1;
        }
        if (n > tiles.n) n = (int)tiles.n;
        imgs = tiles.imgs;   // taken over
        tiles.imgs = NULL;
        photo_tiles_free(&tiles);
        snprintf(split, sizeof split, "photo bank held-out photos (every %dth), %dx%d -> 32x32 tiles, colour (first n)",
                 PHOTOS_TEST_EVERY, photo_base, photo_base);
    }
    vae *m = NULL;
    eval_ctx ec = {.out = out, .n = n, .C = C};
    int rc = 0;
    if (vae_create(&m, &vc, batch, 0)) { fprintf(stderr, "eval: out of memory\n"); rc = 1; goto done; }
    if (cls_path) {
        ec.f_orig = malloc(sizeof(float) * (size_t)n * CLASSIFIER_FEAT_DIM);
        ec.f_rec = malloc(sizeof(float) * (size_t)n * CLASSIFIER_FEAT_DIM);
        if (!ec.f_orig || !ec.f_rec || classifier_create(&ec.cl, batch, 0)) {
            fprintf(stderr, "eval: out of memory\n");
            rc = 1;
            goto done;
        }
        if ((e = st_load_params(cls_path, &ec.cl->pt))) {   // malformed: 2; EIO and the like: 1
            fprintf(stderr, "eval: %s: %s (%s)\n", cls_path, vel_strerror(e), vel_error_detail());
            rc = vel_exit_code(e);
            goto done;
        }
    }
    e = st_load_params(path, &m->pt);
    if (e) {
        fprintf(stderr, "eval: %s: %s (%s)\n", path, vel_strerror(e), vel_error_detail());
        rc = vel_exit_code(e);
        goto done;
    }
    int zc = vc.z_channels, zs = m->zside, per = zc * zs * zs;
    CHECK(zc <= 64);
    float *mu = malloc(sizeof(float) * (size_t)n * per), *lv = malloc(sizeof(float) * (size_t)n * per);
    float *z = malloc(sizeof(float) * (size_t)batch * per), *gray = NULL;
    recon_score *sc = calloc((size_t)nscales + 1, sizeof *sc);
    if (!mu || !lv || !z || !sc) { fprintf(stderr, "eval: out of memory\n"); rc = 1; goto free_bufs; }
    // Pass 1: moments and reconstructions through mu.
    vae_recon_sums sums = {0};
    vae_recon_eval(m, imgs, n, mu, lv, on_batch, &ec, &sums);
    if (ec.out) fprintf(stderr, "%s", progress_done(stderr));
    sc[0] = (recon_score){sums.psnr / n, sums.ssim / n, frechet_of(&ec)};
    ec.out = NULL;
    // Latent spread per channel and sigma statistics.
    double stdc[64] = {0}, sigc[64] = {0}, mean_sigma = 0, rel = 0;
    vae_latent_std(mu, n, zc, zs * zs, stdc);
    vae_latent_mean_sigma(lv, n, zc, zs * zs, sigc);
    for (int ch = 0; ch < zc; ch++) mean_sigma += sigc[ch] / zc;
    for (int ch = 0; ch < zc; ch++) rel += (stdc[ch] > 0 ? sigc[ch] / stdc[ch] : INFINITY) / zc;
    // Pass 2: the robustness probe (eps stream 7).
    for (int si = 0; si < nscales; si++) {
        sums = (vae_recon_sums){0};
        vae_probe_eval(m, imgs, mu, n, scales[si], stdc, seed, 7, z, on_batch, &ec, &sums);
        sc[si + 1] = (recon_score){sums.psnr / n, sums.ssim / n, frechet_of(&ec)};
        fprintf(stderr, "[eval vae] probe s=%g done\n", scales[si]);
    }
    // Photo bank crops, gray (1-channel tokenizers): PSNR/SSIM through mu.
    double ph_psnr = NAN, ph_ssim = NAN;
    int ph_n = 0;
    if (use_photos) {
        photo_tiles all;
        int prc = photo_tiles_load(NULL, 128, 32, PHOTOS_ALL, &all);
        if (prc) {
            fprintf(stderr, "eval: --photos: %s\n", vel_errmsg(prc));
            rc = 1;
            goto free_bufs;
        }
        ph_n = (int)all.n;
        if ((gray = malloc(sizeof(float) * (size_t)ph_n * 1024))) photo_tiles_gray(&all, gray);
        photo_tiles_free(&all);
        if (!gray) { fprintf(stderr, "eval: out of memory\n"); rc = 1; goto free_bufs; }
        sums = (vae_recon_sums){0};
        vae_recon_eval(m, gray, ph_n, NULL, NULL, NULL, NULL, &sums);
        ph_psnr = sums.psnr / ph_n;
        ph_ssim = sums.ssim / ph_n;
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
    if (ec.cl) {
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
        if (ec.cl) cJSON_AddNumberToObject(o, "frechet_classifier_features", sc[si + 1].frechet);
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
    free(mu); free(lv); free(z); free(gray); free(sc);
done:
    free(ec.f_orig); free(ec.f_rec); free(imgs);
    classifier_destroy(&ec.cl);
    vae_destroy(&m);
    return rc;
}
