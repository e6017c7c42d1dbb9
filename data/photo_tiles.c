// photo_tiles.c: see photo_tiles.h.
#include "data/photo_tiles.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"

static int in_split(int photo, int split) {
    return split == PHOTOS_ALL || photos_is_test(photo) == (split == PHOTOS_TEST);
}

int photo_tiles_load(const char *dir, int base, int tile, int split, photo_tiles *t) {
    memset(t, 0, sizeof *t);
    if (split != PHOTOS_TRAIN && split != PHOTOS_TEST && split != PHOTOS_ALL) {
        return vel_fail(VEL_EINVAL, "photo tiles: unknown split %d", split);
    }
    photo_bank *pb = NULL;
    int e = photos_open(dir, base, tile, &pb);
    if (e) return e;
    const size_t per = (size_t)3 * tile * tile;
    int64_t cnt = 0;
    for (int64_t i = 0; i < pb->n; i++) cnt += in_split((int)(i / pb->per_photo), split);
    t->imgs = malloc(sizeof(float) * ((size_t)cnt * per + 1));
    t->labels = malloc(sizeof(int32_t) * ((size_t)cnt + 1));
    if (!t->imgs || !t->labels) {
        photos_destroy(&pb);
        photo_tiles_free(t);
        return vel_fail(VEL_ENOMEM, "photo tiles: %lld tiles", (long long)cnt);
    }
    t->size = tile;
    for (int64_t i = 0; i < pb->n; i++) {
        int p = (int)(i / pb->per_photo);
        if (!in_split(p, split)) continue;
        memcpy(t->imgs + (size_t)t->n * per, pb->imgs + (size_t)i * per, sizeof(float) * per);
        t->labels[t->n++] = p;
    }
    t->nphotos = pb->nphotos;   // the names move over to t
    t->names = pb->names;
    pb->names = NULL;
    pb->nphotos = 0;
    photos_destroy(&pb);
    if (!t->n) {
        photo_tiles_free(t);
        return vel_fail(DATA_ENOPHOTOS, "photo bank: no tiles in this split");
    }
    return 0;
}

void photo_tiles_free(photo_tiles *t) {
    if (!t) return;
    for (int i = 0; i < t->nphotos && t->names; i++) free(t->names[i]);
    free(t->names);
    free(t->imgs);
    free(t->labels);
    memset(t, 0, sizeof *t);
}

void photo_tiles_gray(const photo_tiles *t, float *out) {
    const size_t hw = (size_t)t->size * t->size;
    for (int64_t i = 0; i < t->n; i++) {
        const float *im = t->imgs + (size_t)i * 3 * hw;
        for (size_t k = 0; k < hw; k++)
            out[(size_t)i * hw + k] = 0.299f * im[k] + 0.587f * im[hw + k] + 0.114f * im[2 * hw + k];
    }
}
