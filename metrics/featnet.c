// featnet.c: see featnet.h.
#include "metrics/featnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "metrics/refstats.h"
#include "models/classifier.h"
#include "models/inception.h"
#include "nn/safetensors.h"

struct featnet {
    featnet_kind kind;
    int batch;
    inception *inc;
    classifier *cls;
    float *x;            // classifier input (batch, 1, 32, 32)
    uint8_t *rgb;        // inception: gray replicated to 3 channels (batch images)
    size_t rgb_n;
    char hash[17];
};

static int finish(featnet *f) {
    featnet_hash_hex(f->hash, featnet_hash(f->kind == FEATNET_INCEPTION ? inception_params(f->inc)
                                                                        : &f->cls->pt));
    return 0;
}

static int create(featnet **out, featnet_kind kind, int batch) {
    *out = NULL;
    if (batch < 1 || batch > 4096 || (kind != FEATNET_INCEPTION && kind != FEATNET_CLASSIFIER))
        return VEL_EINVAL;
    featnet *f = calloc(1, sizeof *f);
    if (!f) return VEL_ENOMEM;
    f->kind = kind;
    f->batch = batch;
    int rc;
    if (kind == FEATNET_INCEPTION) {
        rc = inception_create(&f->inc, batch);
    } else {
        rc = classifier_create(&f->cls, batch, 0);
        if (!rc && !(f->x = malloc(sizeof(float) * (size_t)batch * 1024))) rc = VEL_ENOMEM;
    }
    if (rc) { featnet_close(&f); return rc; }
    *out = f;
    return 0;
}

int featnet_open(featnet **out, featnet_kind kind, const char *weights, int batch) {
    int rc = create(out, kind, batch);
    if (rc) return vel_fail(rc, "feature network for batches of %d", batch);
    featnet *f = *out;
    if (kind == FEATNET_INCEPTION) {
        rc = inception_load(f->inc, weights);
    } else if ((rc = st_load_params(weights, &f->cls->pt))) {
        char d[512];   // a copy: vel_fail rewrites the detail buffer it would read
        snprintf(d, sizeof d, "%s", vel_error_detail());
        rc = vel_fail(rc, "%s; expected `train --model classifier` weights", d);
    }
    if (rc) { featnet_close(out); return rc; }
    return finish(f);
}

int featnet_open_random_inception(featnet **out, uint64_t seed, int batch) {
    int rc = create(out, FEATNET_INCEPTION, batch);
    if (rc) return rc;
    inception_random_weights((*out)->inc, seed);
    return finish(*out);
}

void featnet_close(featnet **pf) {
    if (!pf || !*pf) return;
    featnet *f = *pf;
    inception_destroy(&f->inc);
    classifier_destroy(&f->cls);
    free(f->x);
    free(f->rgb);
    free(f);
    *pf = NULL;
}

const char *featnet_name(const featnet *f) {
    return f->kind == FEATNET_INCEPTION ? INCEPTION_NET_NAME : FEATNET_CLASSIFIER_NAME;
}
const char *featnet_hash_str(const featnet *f) { return f->hash; }
const char *featnet_label(const featnet *f) {
    return f->kind == FEATNET_INCEPTION ? "Inception-v3 features (pytorch-fid port)"
                                        : "classifier features, not Inception";
}

void featnet_dims(const featnet *f, int *D, int *K, int *Ds) {
    int inc = f->kind == FEATNET_INCEPTION;
    if (D) *D = inc ? INCEPTION_POOL_DIM : CLASSIFIER_FEAT_DIM;
    if (K) *K = inc ? INCEPTION_LOGITS : CLASSIFIER_CLASSES;
    if (Ds) *Ds = inc ? INCEPTION_SPATIAL_DIM : CLASSIFIER_SPATIAL_DIM;
}

int featnet_channels(const featnet *f) { return f->kind == FEATNET_INCEPTION ? 3 : 1; }

static int run_classifier(featnet *f, const uint8_t *img, int B, float *pool, float *logits,
                          float *spatial) {
    for (int b0 = 0; b0 < B; b0 += f->batch) {
        int nb = B - b0 < f->batch ? B - b0 : f->batch;
        // The training data's mapping (data/idx.h): v / 127.5 - 1.
        for (size_t i = 0; i < (size_t)nb * 1024; i++)
            f->x[i] = (float)img[(size_t)b0 * 1024 + i] / 127.5f - 1.0f;
        const float *lg = classifier_forward(f->cls, f->x, nb);
        if (logits) memcpy(logits + (size_t)b0 * CLASSIFIER_CLASSES, lg,
                           sizeof(float) * nb * CLASSIFIER_CLASSES);
        if (pool) memcpy(pool + (size_t)b0 * CLASSIFIER_FEAT_DIM, classifier_features(f->cls),
                         sizeof(float) * nb * CLASSIFIER_FEAT_DIM);
        if (spatial) classifier_spatial(f->cls, spatial + (size_t)b0 * CLASSIFIER_SPATIAL_DIM, nb);
    }
    return 0;
}

int featnet_run(featnet *f, const uint8_t *img, int B, int C, int H, int W, float *pool,
                float *logits, float *spatial) {
    if (!f || !img || B < 1) return VEL_EINVAL;
    if (f->kind == FEATNET_CLASSIFIER) {
        if (C != 1 || H != 32 || W != 32) return VEL_EINVAL;
        return run_classifier(f, img, B, pool, logits, spatial);
    }
    if (C == 3) return inception_forward_u8(f->inc, img, B, H, W, pool, logits, spatial);
    if (C != 1 || H < 1 || W < 1 || (int64_t)H * W > (1 << 26)) return VEL_EINVAL;
    // Gray: replicate the channel, one chunk of images at a time.
    size_t hw = (size_t)H * W, need = (size_t)f->batch * 3 * hw;
    if (f->rgb_n < need) {
        free(f->rgb);
        f->rgb_n = 0;
        if (!(f->rgb = malloc(need))) return VEL_ENOMEM;
        f->rgb_n = need;
    }
    for (int b0 = 0; b0 < B; b0 += f->batch) {
        int nb = B - b0 < f->batch ? B - b0 : f->batch;
        for (int i = 0; i < nb; i++)
            for (int ch = 0; ch < 3; ch++)
                memcpy(f->rgb + ((size_t)i * 3 + ch) * hw, img + (size_t)(b0 + i) * hw, hw);
        int rc = inception_forward_u8(
            f->inc, f->rgb, nb, H, W, pool ? pool + (size_t)b0 * INCEPTION_POOL_DIM : NULL,
            logits ? logits + (size_t)b0 * INCEPTION_LOGITS : NULL,
            spatial ? spatial + (size_t)b0 * INCEPTION_SPATIAL_DIM : NULL);
        if (rc) return rc;
    }
    return 0;
}
