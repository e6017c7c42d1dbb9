// image_vae.c: `encode --model vae`, Fashion-MNIST images -> the LMDB latent
// store: per image the posterior mu and sigma = exp(0.5*clamp(logvar)) of the
// image and of its horizontal flip, and the label; then (when asked, or when
// this process covered the whole split) the per-channel latent mean and std
// from a seeded subset (store_compute_stats, the one normalisation).
// Resumable and splittable: only the indices of [--first, --end) missing
// from the store are encoded, so several processes may fill one store by
// index ranges and an interrupted run continues where it stopped. Records
// that another process wrote meanwhile are kept as they are (STORE_EXISTING_
// SKIP), not verified: encodings made with other batch sizes may differ in
// the last bits (GEMM blocking), which verification would call a mismatch
// (tests/models/test_vae_stages.c found exactly that with overlapping ranges).
// The images follow the checkpoint (models/vae_ckpt.h): a 1-channel
// tokenizer encodes Fashion-MNIST, a 3-channel (RGB) one the photo bank's
// fixed-grid 32x32 tiles (data/photos.h) of the train or test photos, the
// label being the photo's index in the bank.
// Not here: the image-folder (ImageNet layout) datasets (stages/encode/vae_folder.c).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "data/augment.h"
#include "data/idx.h"
#include "data/photo_tiles.h"
#include "data/photos.h"
#include "models/vae.h"
#include "models/vae_ckpt.h"
#include "nn/checkpoint.h"
#include "nn/safetensors.h"
#include "stages/common/flags.h"
#include "stages/common/progress.h"
#include "stages/encode/encode.h"
#include "store/store.h"

static const char STAGE[] = "encode";
// Bounds: the batch's images and moments are held at once; the statistics
// subset is read into memory.
enum { ENCODE_MAX_BATCH = 1024, ENCODE_MAX_STATS_N = 10000000 };

static void help(void) {
    printf("usage: encode --model vae --ckpt PREFIX --store DIR [options]\n"
           "Encodes images into the latent store (mu, sigma, label, flipped variant): Fashion-MNIST\n"
           "for a 1-channel tokenizer, the photo bank's 32x32 tiles (label = photo index) for a\n"
           "3-channel one (channels read from the checkpoint's weights).\n"
           "  --ckpt PREFIX    tokenizer weights PREFIX.safetensors\n"
           "  --config NAME    f4c4, f4c8, f8c4: only needed when the checkpoint has no vae.config\n"
           "                   metadata (default then f4c4); must match it otherwise\n"
           "  --split S        train (default) or test (photos: the held-out photos, data/photos.h)\n"
           "  --photo-base N   RGB: side the photos are reduced to before tiling (default 128)\n"
           "  --first N --end N  index range to encode (default the whole split)\n"
           "  --batch N        (default 32)\n"
           "  --stats          compute the latent statistics after encoding (default: only\n"
           "                   when this process covered the whole split)\n"
           "  --stats-n N      subset size for the statistics (default 10000)  --seed N (0)\n"
           "  --data DIR       Fashion-MNIST folder (default %s)\n" DEVICE_HELP, FMNIST_DEFAULT_DIR);
}

int encode_vae_main(int argc, char **argv) {
    const char *ckpt = NULL, *spath = NULL, *config = NULL, *split = "train", *data_dir = NULL;
    int64_t first = 0, end = -1, stats_n = 10000;   // end -1: the whole split
    int batch = 32, want_stats = 0, photo_base = 128;
    uint64_t seed = 0;
    const flag_spec F[] = {
        FLAG_STR_("ckpt", &ckpt), FLAG_STR_("store", &spath), FLAG_STR_("config", &config), FLAG_STR_("split", &split),
        FLAG_I64_("first", &first, 0, INT64_MAX), FLAG_I64_("end", &end, 0, INT64_MAX),
        FLAG_INT_("batch", &batch, 1, ENCODE_MAX_BATCH), FLAG_BOOL_("stats", &want_stats),
        FLAG_I64_("stats-n", &stats_n, 1, ENCODE_MAX_STATS_N), FLAG_U64_("seed", &seed), FLAG_STR_("data", &data_dir),
        FLAG_INT_("photo-base", &photo_base, 32, 4096), FLAG_DEVICE_};
    int help_asked;
    if (flag_parse(STAGE, argc, argv, F, FLAG_COUNT(F), &help_asked, NULL)) return 2;
    if (help_asked) { help(); return 0; }
    if (!ckpt || !spath) { fprintf(stderr, "encode: --ckpt PREFIX and --store DIR are required\n"); return 2; }
    if (photo_base % 32) {
        fprintf(stderr, "encode: --photo-base must be a multiple of 32 in 32..4096\n");
        return 2;
    }
    if (strcmp(split, "train") && strcmp(split, "test")) {
        fprintf(stderr, "encode: --split must be train or test, not '%s'\n", split);
        return 2;
    }
    char wpath[1200], hash[17];
    snprintf(wpath, sizeof wpath, "%s.safetensors", ckpt);
    vae_config vc;
    int e = vae_config_from_ckpt(wpath, config, &vc);
    if (e) { fprintf(stderr, "encode: %s\n", vel_errmsg(e)); return vel_exit_code(e); }
    const int C = vc.in_ch, npix = C * 1024;
    if (vc.out_ch != C || vc.resolution != 32) {
        fprintf(stderr, "encode: %s: only 32x32 tokenizers with in_ch == out_ch are supported\n", wpath);
        return 2;
    }
    fmnist *ds = NULL;
    photo_tiles tiles = {0};
    int64_t nsplit;
    if (C == 1) {
        int lrc = fmnist_load(data_dir, split, &ds);
        if (lrc) { fprintf(stderr, "encode: %s\n", vel_errmsg(lrc)); return 2; }
        nsplit = ds->n;
    } else {
        int prc = photo_tiles_load(NULL, photo_base, 32, strcmp(split, "test") ? PHOTOS_TRAIN : PHOTOS_TEST, &tiles);
        if (prc) {
            fprintf(stderr, "encode: %s\n", vel_errmsg(prc));
            return 2;
        }
        nsplit = tiles.n;
    }
    if (end < 0) end = nsplit;
    if (first < 0 || end > nsplit || first > end) {
        fprintf(stderr, "encode: range [%lld, %lld) outside the split's 0..%lld\n", (long long)first, (long long)end,
                (long long)nsplit);
        fmnist_destroy(&ds);
        photo_tiles_free(&tiles);
        return 2;
    }
    if (ckpt_file_hash(wpath, hash)) {   // identifies the tokenizer in __meta__
        fprintf(stderr, "encode: cannot read %s\n", wpath);
        fmnist_destroy(&ds);
        photo_tiles_free(&tiles);
        return 1;
    }
    vae *m = NULL;
    store *st = NULL;
    int rc = 0;
    uint64_t *todo = NULL;
    size_t ntodo = 0;
    int zc = vc.z_channels, zs = vae_latent_side(&vc), per = zc * zs * zs;
    float *x = malloc(sizeof(float) * (size_t)batch * npix), *xf = malloc(sizeof(float) * (size_t)batch * npix);
    float *mu = malloc(sizeof(float) * (size_t)batch * per * 4);
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)batch);
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)batch);
    store_record *recs = malloc(sizeof(store_record) * (size_t)batch);
    if (!x || !xf || !mu || !idx || !lab || !recs || vae_create(&m, &vc, batch, 0)) {
        fprintf(stderr, "encode: out of memory\n");
        rc = 1;
        goto done;
    }
    e = st_load_params(wpath, &m->pt);
    if (e) {   // malformed: 2; EIO and the like: 1
        fprintf(stderr, "encode: %s: %s (%s)\n", wpath, vel_strerror(e), vel_error_detail());
        rc = vel_exit_code(e);
        goto done;
    }
    store_meta meta;
    char dname[64];
    if (C == 1) snprintf(dname, sizeof dname, "fashion-mnist-%s", split);
    else snprintf(dname, sizeof dname, "photos-%s-%d", split, photo_base);
    if (store_meta_init(&meta, hash, zc, zs, zs, true, dname, (uint64_t)nsplit, "vae-v1")) {
        fprintf(stderr, "encode: bad store metadata\n");
        rc = 1;
        goto done;
    }
    store_opts sopts = {.existing = STORE_EXISTING_SKIP};
    if ((e = store_create(&st, spath, &meta, &sopts))) {
        fprintf(stderr, "encode: cannot create store %s: %s (%s)\n", spath, vel_strerror(e), vel_error_detail());
        rc = 1;
        goto done;
    }
    if ((e = store_missing(st, (uint64_t)first, (uint64_t)end, &todo, &ntodo))) {
        fprintf(stderr, "encode: %s: %s (%s)\n", spath, vel_strerror(e), vel_error_detail());
        rc = 1;
        goto done;
    }
    fprintf(stderr, "[encode vae] %zu of %lld images in [%lld, %lld) to encode\n", ntodo, (long long)(end - first),
            (long long)first, (long long)end);
    float *sig = mu + (size_t)batch * per, *muf = sig + (size_t)batch * per, *sigf = muf + (size_t)batch * per;
    for (size_t k0 = 0; k0 < ntodo; k0 += (size_t)batch) {
        int B = (int)(ntodo - k0 < (size_t)batch ? ntodo - k0 : (size_t)batch);
        for (int b = 0; b < B; b++) idx[b] = (int64_t)todo[k0 + b];
        if (C == 1) fmnist_batch_f32(ds, x, lab, idx, 0, B);
        else
            for (int b = 0; b < B; b++) {
                memcpy(x + (size_t)b * npix, tiles.imgs + (size_t)idx[b] * npix, sizeof(float) * (size_t)npix);
                lab[b] = tiles.labels[idx[b]];
            }
        image_hflip(xf, x, B, C, 32, 32);
        float *outs[2][2] = {{mu, sig}, {muf, sigf}};
        const float *ins[2] = {x, xf};
        for (int v = 0; v < 2; v++) {
            vae_encode(m, ins[v], B);
            memcpy(outs[v][0], m->mu, sizeof(float) * (size_t)B * per);
            vae_sigma(outs[v][1], m->logvar, (int64_t)B * per);
        }
        for (int b = 0; b < B; b++)
            recs[b] = (store_record){.index = (uint64_t)idx[b], .label = lab[b],
                                     .mu = mu + (size_t)b * per, .sigma = sig + (size_t)b * per,
                                     .mu_flip = muf + (size_t)b * per, .sigma_flip = sigf + (size_t)b * per};
        store_put_result res;
        if ((e = store_put_batch(st, recs, (size_t)B, &res))) {
            fprintf(stderr, "\nencode: writing %s: %s (%s)\n", spath, vel_strerror(e), vel_error_detail());
            rc = 1;
            goto done;
        }
        fprintf(stderr, "%s[encode vae] %zu/%zu%s", progress_start(stderr), k0 + (size_t)B, ntodo, progress_end(stderr));
    }
    fprintf(stderr, "%s", progress_done(stderr));
    if (want_stats || (first == 0 && end == nsplit)) {
        float mean[STORE_MAX_CHANNELS], sd[STORE_MAX_CHANNELS];
        uint64_t have = 0;
        store_count(st, &have);
        size_t sub = (size_t)(stats_n < (int64_t)have ? stats_n : (int64_t)have);
        if ((e = store_compute_stats(st, mean, sd, sub, seed)) || (e = store_set_stats(st, mean, sd))) {
            fprintf(stderr, "encode: latent statistics: %s (%s)\n", vel_strerror(e), vel_error_detail());
            rc = 1;
            goto done;
        }
        fprintf(stderr, "[encode vae] latent stats over %zu images:", sub);
        for (int ch = 0; ch < zc; ch++) fprintf(stderr, " c%d mean %.4g std %.4g;", ch, mean[ch], sd[ch]);
        fprintf(stderr, "\n");
    }
done:
    free(todo);
    store_close(&st);
    vae_destroy(&m);
    fmnist_destroy(&ds);
    photo_tiles_free(&tiles);
    free(x); free(xf); free(mu); free(idx); free(lab); free(recs);
    return rc;
}
