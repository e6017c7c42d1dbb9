// moments_item.c: see moments_item.h.
#include "stages/common/moments_item.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"

static int reject(char *why, size_t cap, const char *what) {
    snprintf(why, cap, "%s", what);
    return 1;
}

int moments_item_check(const bus_msg *m, const store_meta *meta, const moments_folder *f, moments_item *it,
                       char *why, size_t cap) {
    static const char *names[4] = {"mu", "sigma", "mu_flip", "sigma_flip"};
    it->n = it->bad = 0;
    it->mom = NULL;
    if (!bus_msg_is(m, "moments")) {
        snprintf(why, cap, "kind '%s', not moments", bus_msg_kind(m));
        return 1;
    }
    int64_t b = -1;
    if (bus_msg_get_int(m, "bad", &b) || b < 0 || b > MOMENTS_MAX_N)
        return reject(why, cap, "no valid 'bad' count");
    tensor t[4], tl, ti;
    if (bus_msg_find(m, "index", &ti)) {   // every image of the job unreadable
        if (b == 0) return reject(why, cap, "no images and none bad");
        it->bad = b;
        return 0;
    }
    if (ti.dtype != DT_I32 || ti.ndim != 1 || ti.shape[0] < 1 || ti.shape[0] + b > MOMENTS_MAX_N) {
        snprintf(why, cap, "index must be i32 (n), 1 <= n <= %d - bad", MOMENTS_MAX_N);
        return 1;
    }
    int64_t n = ti.shape[0], per = store_meta_numel(meta);
    for (int k = 0; k < 4; k++)
        if (bus_msg_find(m, names[k], &t[k]) || t[k].dtype != DT_F32 || t[k].ndim != 4 || t[k].shape[0] != n ||
            t[k].shape[1] != meta->shape[0] || t[k].shape[2] != meta->shape[1] || t[k].shape[3] != meta->shape[2]) {
            snprintf(why, cap, "%s must be f32 (%lld, %lld, %lld, %lld)", names[k], (long long)n,
                     (long long)meta->shape[0], (long long)meta->shape[1], (long long)meta->shape[2]);
            return 1;
        }
    if (bus_msg_find(m, "labels", &tl) || tl.dtype != DT_I32 || tl.ndim != 1 || tl.shape[0] != n) {
        snprintf(why, cap, "labels must be i32 (%lld)", (long long)n);
        return 1;
    }
    // Payloads may be unaligned: copy before reading.
    memcpy(it->index, ti.data, sizeof(int32_t) * (size_t)n);
    memcpy(it->labels, tl.data, sizeof(int32_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        int32_t x = it->index[i];
        if (x < 0 || x >= f->nimages) {
            snprintf(why, cap, "index %d outside the folder's %lld images", x, (long long)f->nimages);
            return 1;
        }
        if (it->labels[i] != f->labels[x]) {
            snprintf(why, cap, "label %d for index %d; the folder says %d", it->labels[i], x, f->labels[x]);
            return 1;
        }
        for (int64_t j = 0; j < i; j++)   // n <= 1024: quadratic is cheap next to encoding
            if (it->index[j] == x) {
                snprintf(why, cap, "index %d twice", x);
                return 1;
            }
    }
    size_t cnt = (size_t)(n * per);
    it->mom = malloc(sizeof(float) * 4 * cnt);
    if (!it->mom) return VEL_ENOMEM;
    for (int k = 0; k < 4; k++) {
        float *p = it->mom + (size_t)k * cnt;
        memcpy(p, t[k].data, sizeof(float) * cnt);
        for (size_t j = 0; j < cnt; j++)
            if (!isfinite(p[j]) || ((k & 1) && p[j] < 0)) {   // k odd: a sigma
                snprintf(why, cap, "%s[%zu] = %g: not a finite%s value", names[k], j, (double)p[j],
                         k & 1 ? ", non-negative" : "");
                moments_item_free(it);
                return 1;
            }
    }
    it->n = n;
    it->bad = b;
    return 0;
}

void moments_item_free(moments_item *it) {
    free(it->mom);
    it->mom = NULL;
}

int moments_item_put(store *st, const moments_folder *f, const bus_msg *m, moments_counts *c, char *why,
                     size_t cap) {
    const store_meta *meta = store_get_meta(st);
    moments_item *it = malloc(sizeof *it);
    if (!it) return VEL_ENOMEM;
    int rc = moments_item_check(m, meta, f, it, why, cap);
    if (rc == 1) c->rejected++;
    if (rc) { free(it); return rc; }
    size_t n = (size_t)it->n, cnt = n * (size_t)store_meta_numel(meta);
    store_record *r = n ? malloc(sizeof(store_record) * n) : NULL;
    if (n && !r) rc = VEL_ENOMEM;
    for (size_t i = 0; i < n && !rc; i++) {
        const float *p = it->mom + i * (size_t)store_meta_numel(meta);
        r[i] = (store_record){.index = (uint64_t)it->index[i], .label = it->labels[i], .mu = p,
                              .sigma = p + cnt, .mu_flip = p + 2 * cnt, .sigma_flip = p + 3 * cnt};
    }
    if (!rc && n) rc = store_put_batch(st, r, n, NULL);
    if (!rc) {
        c->items++;
        c->records += (int64_t)n;
        c->bad += it->bad;
    }
    free(r);
    moments_item_free(it);
    free(it);
    return rc;
}
