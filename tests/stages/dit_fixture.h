// dit_fixture.h: a small synthetic latent cache for the train --model dit
// tests: n records of C x S x S latents, label = index % classes, mu = a
// class pattern plus a little per-index variation (so classes are easy to
// tell apart), sigma 0.05, flipped variants = mu mirrored in W. Header-only
// (static) because each tests/**/test_*.c is its own binary. Also
// dfx_weights: a run's weights file read back as one float array.
#ifndef TESTS_STAGES_DIT_FIXTURE_H
#define TESTS_STAGES_DIT_FIXTURE_H

#include <math.h>
#include <stdlib.h>

#include <criterion/criterion.h>

#include "core/error.h"
#include "nn/safetensors.h"
#include "store/store.h"

static inline float dfx_mu(uint64_t index, int classes, int c, int h, int w, int S) {
    int k = (int)(index % (uint64_t)classes);
    float base = sinf(0.9f * (float)(k + 1) * (float)(h + 1) / (float)S + 0.7f * (float)c) *
                 cosf(0.6f * (float)(k + 2) * (float)(w + 1) / (float)S - 0.3f * (float)k);
    float jit = 0.05f * sinf(12.9898f * (float)index + 78.233f * (float)(c * S * S + h * S + w));
    return 2.0f * base + jit + 0.5f;
}

// Writes the records [first, end) into an open store (flip per its meta).
static inline int dfx_put(store *s, uint64_t first, uint64_t end, int classes, int C, int S, int flip) {
    int64_t numel = (int64_t)C * S * S;
    float *buf = malloc(sizeof(float) * (size_t)(4 * numel));
    if (!buf) return -1;
    int rc = 0;
    for (uint64_t i = first; i < end && !rc; i++) {
        float *mu = buf, *sg = buf + numel, *muf = buf + 2 * numel, *sgf = buf + 3 * numel;
        for (int c = 0; c < C; c++)
            for (int h = 0; h < S; h++)
                for (int w = 0; w < S; w++) {
                    int64_t j = ((int64_t)c * S + h) * S + w, jf = ((int64_t)c * S + h) * S + (S - 1 - w);
                    mu[j] = dfx_mu(i, classes, c, h, w, S);
                    muf[jf] = mu[j];
                    sg[j] = sgf[j] = 0.05f;
                }
        store_record r = {i, (int32_t)(i % (uint64_t)classes), mu, sg, flip ? muf : NULL, flip ? sgf : NULL};
        rc = store_put_batch(s, &r, 1, NULL);
    }
    free(buf);
    return rc;
}

// Creates a complete cache at dir: n records, stats unless nostats.
static inline int dfx_make(const char *dir, const char *hash, int n, int classes, int C, int S, int flip,
                           int nostats) {
    store_meta m;
    store *s = NULL;
    int rc = store_meta_init(&m, hash, C, S, S, flip, "synthetic", (uint64_t)n, "test");
    if (!rc) rc = store_create(&s, dir, &m, NULL);
    if (!rc) rc = dfx_put(s, 0, (uint64_t)n, classes, C, S, flip);
    if (!rc && !nostats) {
        float mean[64], sd[64];
        rc = store_compute_stats(s, mean, sd, (size_t)n, 0);
        if (!rc) rc = store_set_stats(s, mean, sd);
    }
    store_close(&s);
    return rc;
}

// Final weights of a run (a safetensors file), as floats in file order of
// the tensor names; *n = their count. Caller frees.
static inline float *dfx_weights(const char *path, int64_t *n) {
    st_file *f = NULL;
    cr_assert_eq(st_open(&f, path), 0, "%s: %s", path, vel_error_detail());
    int64_t total = 0;
    for (int i = 0; i < st_count(f); i++) total += st_get(f, i)->numel;
    float *w = malloc(sizeof(float) * (size_t)total), *p = w;
    for (int i = 0; i < st_count(f); i++) {
        int64_t k = st_get(f, i)->numel;
        cr_assert_eq(st_read_f32(f, i, p, k), 0);
        p += k;
    }
    st_close(&f);
    *n = total;
    return w;
}

#endif
