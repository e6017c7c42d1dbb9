// read.c: read transactions, borrowed views, training batches copied
// straight from the map, single gets and in-order iteration.
// Every record is decoded (header + size checked) before its bytes are used.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "store/internal.h"
#include "store/record.h"

int store_txn_begin(store *s, store_txn **out) {
    *out = NULL;
    store_txn *t = calloc(1, sizeof *t);
    if (!t) return vel_fail(VEL_ENOMEM, "store_txn_begin");
    t->s = s;
    int rc = store_rtxn_begin(s, &t->txn);
    if (rc) { free(t); return rc; }
    *out = t;
    return 0;
}

void store_txn_end(store_txn **tp) {
    if (!tp || !*tp) return;
    store_rtxn_end((*tp)->s, (*tp)->txn);
    free(*tp);
    *tp = NULL;
}

int store_txn_view(store_txn *t, store_view *out, uint64_t index) {
    store *s = t->s;
    if (index > STORE_MAX_INDEX)
        return vel_fail(STORE_EINDEX, "index %llu above %llu", (unsigned long long)index,
                          (unsigned long long)STORE_MAX_INDEX);
    uint8_t key[8];
    store_key_encode(key, index);
    MDB_val k = {8, key}, v;
    int rc = mdb_get(t->txn, s->dbi, &k, &v);
    if (rc == MDB_NOTFOUND)
        return vel_fail(STORE_ENOKEY, "%s: index %llu not in the cache", s->path,
                          (unsigned long long)index);
    if (rc) return store_lmdb_fail(rc, "mdb_get");
    rc = store_record_decode(out, v.mv_data, v.mv_size, store_meta_numel(&s->meta), s->meta.has_flip);
    if (rc) {
        // Prefix the decoder's detail with where the record lives.
        char detail[400];
        snprintf(detail, sizeof detail, "%s", vel_error_detail());
        return vel_fail(rc, "%s: index %llu: %s", s->path, (unsigned long long)index, detail);
    }
    out->index = index;
    return 0;
}

int store_view_copy(float *mu, float *sigma, const store_view *v, bool flip) {
    if (flip && !v->has_flip)
        return vel_fail(STORE_ENOFLIP, "index %llu: cache holds no flipped variant",
                          (unsigned long long)v->index);
    size_t tb = (size_t)v->numel * sizeof(float);
    // memcpy, not a float load: the map only aligns small values to 2 bytes.
    if (mu) memcpy(mu, flip ? v->mu_flip : v->mu, tb);
    if (sigma) memcpy(sigma, flip ? v->sigma_flip : v->sigma, tb);
    // A damaged record must fail here, naming itself, not as a NaN loss later.
    const float *t[2] = {mu, sigma};
    for (int j = 0; j < 2; j++) {
        int64_t at = t[j] ? vel_first_nonfinite(t[j], v->numel) : -1;
        if (at >= 0)
            return vel_fail(VEL_ENONFINITE, "index %llu: %s%s[%lld] = %g", (unsigned long long)v->index,
                            j ? "sigma" : "mu", flip ? "_flip" : "", (long long)at, (double)t[j][at]);
    }
    return 0;
}

int store_txn_read_batch(store_txn *t, float *mu, float *sigma, int32_t *labels,
                         const uint64_t *idx, const uint8_t *flip, size_t B) {
    // mu (B,C,H,W), sigma (B,C,H,W), labels (B), idx (B), flip (B) or NULL
    if (B && !idx) return vel_fail(VEL_EINVAL, "store_read_batch: idx is NULL");
    if (flip && !t->s->meta.has_flip)
        for (size_t b = 0; b < B; b++)
            if (flip[b])
                return vel_fail(STORE_ENOFLIP, "%s: batch item %zu asks for a flipped variant, "
                                  "cache has none", t->s->path, b);
    size_t numel = (size_t)store_meta_numel(&t->s->meta);
    for (size_t b = 0; b < B; b++) {
        store_view v = {0};
        int rc = store_txn_view(t, &v, idx[b]);
        if (rc) return rc;
        rc = store_view_copy(mu ? mu + b * numel : NULL, sigma ? sigma + b * numel : NULL, &v,
                             flip && flip[b]);
        if (rc) return rc;
        if (labels) labels[b] = v.label;
    }
    return 0;
}

int store_read_batch(store *s, float *mu, float *sigma, int32_t *labels,
                     const uint64_t *idx, const uint8_t *flip, size_t B) {
    store_txn *t;
    int rc = store_txn_begin(s, &t);
    if (rc) return rc;
    rc = store_txn_read_batch(t, mu, sigma, labels, idx, flip, B);
    store_txn_end(&t);
    return rc;
}

int store_get(store *s, float *mu, float *sigma, int32_t *label, uint64_t index, bool flip) {
    uint8_t f = flip;
    return store_read_batch(s, mu, sigma, label, &index, &f, 1);
}

int store_iter_open(store *s, store_iter **out, uint64_t start) {
    *out = NULL;
    store_iter *it = calloc(1, sizeof *it);
    if (!it) return vel_fail(VEL_ENOMEM, "store_iter_open");
    int rc = store_txn_begin(s, &it->t);
    if (rc) { free(it); return rc; }
    if ((rc = mdb_cursor_open(it->t->txn, s->dbi, &it->cur))) {
        store_txn_end(&it->t);
        free(it);
        return store_lmdb_fail(rc, "mdb_cursor_open");
    }
    it->start = start;
    *out = it;
    return 0;
}

int store_iter_next(store_iter *it, store_view *out) {
    store *s = it->t->s;
    MDB_val k, v;
    uint8_t key[8];
    int rc;
    if (!it->started) {
        if (it->start > STORE_MAX_INDEX) return 0;
        store_key_encode(key, it->start);
        k.mv_size = 8;
        k.mv_data = key;
        rc = mdb_cursor_get(it->cur, &k, &v, MDB_SET_RANGE);
        it->started = true;
    } else {
        rc = mdb_cursor_get(it->cur, &k, &v, MDB_NEXT);
    }
    if (rc == MDB_NOTFOUND) return 0;
    if (rc) return store_lmdb_fail(rc, "mdb_cursor_get");
    if (store_key_is_meta(&k)) return 0;   // sorts after every index key
    if (k.mv_size != 8)
        return vel_fail(STORE_EKEY, "%s: key of %zu bytes in the cache", s->path, k.mv_size);
    uint64_t index = store_key_decode(k.mv_data);
    rc = store_record_decode(out, v.mv_data, v.mv_size, store_meta_numel(&s->meta), s->meta.has_flip);
    if (rc) {
        char detail[400];
        snprintf(detail, sizeof detail, "%s", vel_error_detail());
        return vel_fail(rc, "%s: index %llu: %s", s->path, (unsigned long long)index, detail);
    }
    out->index = index;
    return 1;
}

void store_iter_close(store_iter **itp) {
    if (!itp || !*itp) return;
    mdb_cursor_close((*itp)->cur);
    store_txn_end(&(*itp)->t);
    free(*itp);
    *itp = NULL;
}

int store_list_indices(store *s, uint64_t **out, size_t *n) {
    *out = NULL;
    *n = 0;
    store_iter *it;
    int rc = store_iter_open(s, &it, 0);
    if (rc) return rc;
    // Sized from the snapshot the iterator reads, so a concurrent writer
    // cannot make the list outgrow it.
    size_t entries;
    if ((rc = store_entries(s, it->t->txn, &entries))) {
        store_iter_close(&it);
        return rc;
    }
    uint64_t *arr = malloc((entries ? entries : 1) * sizeof *arr);
    if (!arr) {
        store_iter_close(&it);
        return vel_fail(VEL_ENOMEM, "store_list_indices: %zu indices", entries);
    }
    size_t k = 0;
    store_view v;
    while (k < entries && (rc = store_iter_next(it, &v)) == 1) arr[k++] = v.index;
    store_iter_close(&it);
    if (rc < 0 || k == 0) {
        free(arr);
        return rc < 0 ? rc : 0;
    }
    *out = arr;
    *n = k;
    return 0;
}
