// image_score.c: see image_score.h.
#include "stages/eval/image_score.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "data/idx.h"

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

int image_refstats_fmnist(featnet *f, const char *data_dir, int64_t n_ref, int64_t keep_feats,
                          const char *path) {
    fmnist *ds = NULL;
    int rc = fmnist_load(data_dir, "train", &ds);
    if (rc) return rc;
    int64_t n = n_ref > 0 && n_ref < ds->n ? n_ref : ds->n;
    int D, K, Ds;
    featnet_dims(f, &D, &K, &Ds);
    float *pool = malloc(sizeof(float) * (size_t)(n * D)), *sp = malloc(sizeof(float) * (size_t)(n * Ds));
    refstats *r = NULL;
    if (!pool || !sp) rc = VEL_ENOMEM;
    // Fashion-MNIST is (n, 32, 32) gray: NHWC with C = 1 is the same bytes
    if (!rc) rc = image_features(f, ds->pix, n, FMNIST_SIDE, FMNIST_SIDE, 1, pool, NULL, sp);
    if (!rc) rc = refstats_from_features(&r, featnet_name(f), featnet_hash_str(f), pool, n, D, sp, Ds, keep_feats);
    if (!rc) rc = refstats_save(path, r);
    refstats_destroy(&r);
    free(pool);
    free(sp);
    fmnist_destroy(&ds);
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
