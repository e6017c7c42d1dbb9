// image_score.c: see image_score.h.
#include "stages/eval/image_score.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "data/idx.h"
#include "data/image_folder.h"

enum { CHUNK = 256 };   // images converted to NCHW at a time

int image_features(featnet *f, const uint8_t *u8, int64_t n, int H, int W, int C, float *pool,
                   float *logits, float *spatial) {
    int D, K, Ds;
    featnet_dims(f, &D, &K, &Ds);
    size_t per = (size_t)H * W * C;
    uint8_t *nchw = malloc(per * CHUNK);
    if (!nchw) return VEL_ENOMEM;
    int rc = 0;
    for (int64_t i0 = 0; i0 < n && !rc; i0 += CHUNK) {
        int B = (int)(n - i0 < CHUNK ? n - i0 : CHUNK);
        // the bus and the .npz hold images channels last; networks take NCHW
        for (int b = 0; b < B; b++)
            for (int c = 0; c < C; c++)
                for (int p = 0; p < H * W; p++)
                    nchw[(size_t)b * per + (size_t)c * H * W + p] = u8[(size_t)(i0 + b) * per + (size_t)p * C + c];
        rc = featnet_run(f, nchw, B, C, H, W, pool ? pool + i0 * D : NULL, logits ? logits + i0 * K : NULL,
                         spatial ? spatial + i0 * Ds : NULL);
    }
    free(nchw);
    return rc;
}

// Features of n images of (side, side, C) fetched by get() a chunk at a
// time, then their statistics written to path.
typedef int (*image_get_fn)(void *ctx, int64_t i, uint8_t *hwc);

static int refstats_of(featnet *f, int64_t n, int side, int C, image_get_fn get, void *ctx, int64_t keep_feats,
                       const char *path) {
    int D, K, Ds;
    featnet_dims(f, &D, &K, &Ds);
    size_t per = (size_t)side * side * C;
    float *pool = malloc(sizeof(float) * (size_t)(n * D)), *sp = malloc(sizeof(float) * (size_t)(n * Ds));
    uint8_t *chunk = malloc(per * CHUNK);
    refstats *r = NULL;
    int rc = !pool || !sp || !chunk ? VEL_ENOMEM : 0;
    for (int64_t i0 = 0; i0 < n && !rc; i0 += CHUNK) {
        int B = (int)(n - i0 < CHUNK ? n - i0 : CHUNK);
        for (int b = 0; b < B && !rc; b++) rc = get(ctx, i0 + b, chunk + (size_t)b * per);
        if (!rc) rc = image_features(f, chunk, B, side, side, C, pool + i0 * D, NULL, sp + i0 * Ds);
    }
    if (!rc) rc = refstats_from_features(&r, featnet_name(f), featnet_hash_str(f), pool, n, D, sp, Ds, keep_feats);
    if (!rc) rc = refstats_save(path, r);
    refstats_destroy(&r);
    free(pool);
    free(sp);
    free(chunk);
    return rc;
}

static int get_fmnist(void *ctx, int64_t i, uint8_t *hwc) {
    const fmnist *ds = ctx;   // (n, 32, 32) gray: NHWC with C = 1 is the same bytes
    memcpy(hwc, ds->pix + i * FMNIST_SIDE * FMNIST_SIDE, FMNIST_SIDE * FMNIST_SIDE);
    return 0;
}

int image_refstats_fmnist(featnet *f, const char *data_dir, int64_t n_ref, int64_t keep_feats,
                          const char *path) {
    fmnist *ds = NULL;
    int rc = fmnist_load(data_dir, "train", &ds);
    if (rc) return rc;
    int64_t n = n_ref > 0 && n_ref < ds->n ? n_ref : ds->n;
    rc = refstats_of(f, n, FMNIST_SIDE, 1, get_fmnist, ds, keep_feats, path);
    fmnist_destroy(&ds);
    return rc;
}

typedef struct { const image_folder *fo; int side, C; } folder_ctx;

static int get_folder(void *ctx, int64_t i, uint8_t *hwc) {
    const folder_ctx *c = ctx;
    return image_folder_load_u8(c->fo, i, c->side, c->C, hwc, NULL);
}

int image_refstats_folder(featnet *f, const char *root, int side, int64_t n_ref, int64_t keep_feats,
                          const char *path) {
    image_folder *fo = NULL;
    int rc = image_folder_open(root, &fo);
    if (rc) return rc;
    // The classifier takes gray images, Inception RGB (featnet.h).
    folder_ctx c = {fo, side, featnet_channels(f)};
    int64_t n = n_ref > 0 && n_ref < fo->n ? n_ref : fo->n;
    rc = n < 2 ? vel_fail(DATA_EEMPTY, "%s: %lld image(s); statistics need 2 or more", root, (long long)n)
               : refstats_of(f, n, side, c.C, get_folder, &c, keep_feats, path);
    image_folder_destroy(&fo);
    return rc;
}

int image_score(image_scores *out, featnet *f, const refstats *ref, const uint8_t *u8, int64_t n,
                int H, int W, int C) {
    int D, K, Ds;
    featnet_dims(f, &D, &K, &Ds);
    float *pool = malloc(sizeof(float) * (size_t)(n * D)), *lg = malloc(sizeof(float) * (size_t)(n * K));
    float *sp = ref->Ds > 0 ? malloc(sizeof(float) * (size_t)(n * Ds)) : NULL;
    int rc = (!pool || !lg || (ref->Ds > 0 && !sp)) ? VEL_ENOMEM : 0;
    if (!rc) rc = image_features(f, u8, n, H, W, C, pool, lg, sp);
    if (!rc) rc = evaluate_features(out, ref, pool, n, D, lg, K, sp, sp ? Ds : 0);
    free(pool); free(lg); free(sp);
    return rc;
}
