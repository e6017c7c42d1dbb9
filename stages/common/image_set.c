// image_set.c: see image_set.h.
#include "stages/common/image_set.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"

typedef struct { uint32_t src; uint64_t id; int64_t n; uint8_t *u8; int32_t *labels; } item;

void image_set_init(image_set *s, int classes, int64_t max_images) {
    memset(s, 0, sizeof *s);
    s->classes = classes;
    s->max_images = max_images;
}

int image_set_add(image_set *s, const bus_msg *m, char *why, size_t why_cap) {
    tensor tu, tl;
    unsigned long long id = (unsigned long long)bus_msg_id(m);
    if (!bus_msg_is(m, "images")) {
        snprintf(why, why_cap, "item %llu is '%s', not 'images'", id, bus_msg_kind(m));
        return 1;
    }
    if (bus_msg_find(m, "u8", &tu) || tu.dtype != DT_U8 || tu.ndim != 4 || tu.shape[0] < 1 ||
        tu.shape[1] < 1 || tu.shape[2] < 1 || (tu.shape[3] != 1 && tu.shape[3] != 3) ||
        tu.shape[1] > 4096 || tu.shape[2] > 4096) {
        snprintf(why, why_cap, "item %llu has no u8 tensor (n, H, W, C) with C 1 or 3", id);
        return 1;
    }
    int64_t n = tu.shape[0];
    if (s->nitems && (tu.shape[1] != s->H || tu.shape[2] != s->W || tu.shape[3] != s->C)) {
        snprintf(why, why_cap, "item %llu: images (%lld, %lld, %lld), earlier items (%d, %d, %d)", id,
                 (long long)tu.shape[1], (long long)tu.shape[2], (long long)tu.shape[3], s->H, s->W, s->C);
        return 1;
    }
    if (bus_msg_find(m, "labels", &tl) || tl.dtype != DT_I32 || tl.ndim != 1 || tl.shape[0] != n) {
        snprintf(why, why_cap, "item %llu: no labels i32 (%lld)", id, (long long)n);
        return 1;
    }
    const int32_t *lab = tl.data;
    for (int64_t i = 0; i < n; i++)
        if (lab[i] < 0 || lab[i] >= s->classes) {
            snprintf(why, why_cap, "item %llu: label %d outside [0, %d)", id, (int)lab[i], s->classes);
            return 1;
        }
    if (s->total + n > s->max_images) {
        snprintf(why, why_cap, "item %llu: more than %lld images in all", id, (long long)s->max_images);
        return 1;
    }
    if (s->nitems == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        item *ni = realloc(s->items, sizeof(item) * (size_t)cap);
        if (!ni) return VEL_ENOMEM;
        s->items = ni;
        s->cap = cap;
    }
    size_t bytes = (size_t)(n * tu.shape[1] * tu.shape[2] * tu.shape[3]);
    item *it = (item *)s->items + s->nitems;
    *it = (item){bus_msg_src(m), bus_msg_id(m), n, malloc(bytes), malloc(sizeof(int32_t) * (size_t)n)};
    if (!it->u8 || !it->labels) { free(it->u8); free(it->labels); return VEL_ENOMEM; }
    memcpy(it->u8, tu.data, bytes);
    memcpy(it->labels, lab, sizeof(int32_t) * (size_t)n);
    if (!s->nitems) s->H = (int)tu.shape[1], s->W = (int)tu.shape[2], s->C = (int)tu.shape[3];
    s->nitems++;
    s->total += n;
    return 0;
}

static int cmp_item(const void *a, const void *b) {
    const item *p = a, *q = b;
    if (p->src != q->src) return p->src < q->src ? -1 : 1;
    return (p->id > q->id) - (p->id < q->id);
}

int image_set_finish(image_set *s, uint8_t **u8, int32_t **labels, int64_t *n) {
    item *items = s->items;
    size_t per = (size_t)s->H * s->W * s->C;
    qsort(items, (size_t)s->nitems, sizeof(item), cmp_item);
    *n = s->total;
    *u8 = malloc(per * (size_t)s->total + 1);
    *labels = malloc(sizeof(int32_t) * (size_t)s->total + 1);
    if (!*u8 || !*labels) { free(*u8); free(*labels); *u8 = NULL; *labels = NULL; return VEL_ENOMEM; }
    int64_t off = 0;
    for (int i = 0; i < s->nitems; i++) {
        memcpy(*u8 + per * (size_t)off, items[i].u8, per * (size_t)items[i].n);
        memcpy(*labels + off, items[i].labels, sizeof(int32_t) * (size_t)items[i].n);
        off += items[i].n;
    }
    return 0;
}

void image_set_free(image_set *s) {
    item *items = s->items;
    for (int i = 0; i < s->nitems; i++) free(items[i].u8), free(items[i].labels);
    free(items);
    s->items = NULL;
    s->nitems = s->cap = 0;
}
