// write.c: batched, idempotent puts in one write transaction, and the list
// of missing indices a resuming writer asks for.
// Why one txn per batch: a batch becomes visible all at once or not at all,
// which is what makes a killed writer resumable without half-written state.
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "store/internal.h"
#include "store/record.h"

static int check_record(const store *s, const store_record *r, size_t i) {
    if (r->index > STORE_MAX_INDEX)
        return vel_fail(STORE_EINDEX, "record %zu: index %llu above %llu", i,
                          (unsigned long long)r->index, (unsigned long long)STORE_MAX_INDEX);
    if (!r->mu || !r->sigma)
        return vel_fail(VEL_EINVAL, "record %zu (index %llu): mu or sigma is NULL", i,
                          (unsigned long long)r->index);
    bool flip = r->mu_flip || r->sigma_flip;
    if (s->meta.has_flip && !(r->mu_flip && r->sigma_flip))
        return vel_fail(VEL_EINVAL, "record %zu (index %llu): cache keeps flipped variants, "
                          "mu_flip/sigma_flip missing", i, (unsigned long long)r->index);
    if (!s->meta.has_flip && flip)
        return vel_fail(STORE_ENOFLIP, "record %zu (index %llu): flipped variant given, cache "
                          "was created without has_flip", i, (unsigned long long)r->index);
    // A NaN written here would pass every later read and surface as a
    // training loss of NaN with no hint of where it came from.
    int64_t numel = store_meta_numel(&s->meta);
    const float *t[4] = {r->mu, r->sigma, r->mu_flip, r->sigma_flip};
    static const char *names[4] = {"mu", "sigma", "mu_flip", "sigma_flip"};
    for (int j = 0; j < 4; j++) {
        int64_t at = t[j] ? vel_first_nonfinite(t[j], numel) : -1;
        if (at >= 0)
            return vel_fail(VEL_ENONFINITE, "record %zu (index %llu): %s[%lld] = %g", i,
                            (unsigned long long)r->index, names[j], (long long)at, (double)t[j][at]);
    }
    return 0;
}

static void fill_value(uint8_t *dst, const uint8_t *hdr, size_t hdr_len, const store_record *r,
                       size_t tb, bool has_flip) {
    memcpy(dst, hdr, hdr_len);
    dst += hdr_len;
    memcpy(dst, r->mu, tb);
    memcpy(dst + tb, r->sigma, tb);
    if (has_flip) {
        memcpy(dst + 2 * tb, r->mu_flip, tb);
        memcpy(dst + 3 * tb, r->sigma_flip, tb);
    }
}

// Existing value vs the record we were asked to write: equal in content
// (the header bytes may differ if a later version wrote extra keys).
static int same_content(const store *s, const MDB_val *have, const store_record *r, size_t tb) {
    store_view v;
    int rc = store_record_decode(&v, have->mv_data, have->mv_size, store_meta_numel(&s->meta),
                                 s->meta.has_flip);
    if (rc) return rc;
    bool same = v.label == r->label && !memcmp(v.mu, r->mu, tb) && !memcmp(v.sigma, r->sigma, tb);
    if (same && s->meta.has_flip)
        same = !memcmp(v.mu_flip, r->mu_flip, tb) && !memcmp(v.sigma_flip, r->sigma_flip, tb);
    return same ? 1 : 0;
}

int store_put_batch(store *s, const store_record *recs, size_t n, store_put_result *res) {
    store_put_result local;
    if (!res) res = &local;
    memset(res, 0, sizeof *res);
    if (s->readonly) return vel_fail(STORE_EREADONLY, "%s: opened read-only", s->path);
    if (n == 0) return 0;
    if (!recs) return vel_fail(VEL_EINVAL, "store_put_batch: recs is NULL");
    int rc;
    for (size_t i = 0; i < n; i++)
        if ((rc = check_record(s, &recs[i], i))) return rc;
    int64_t numel = store_meta_numel(&s->meta);
    bool has_flip = s->meta.has_flip;
    size_t tb = (size_t)numel * sizeof(float);
    for (;;) {
        memset(res, 0, sizeof *res);
        MDB_txn *txn;
        if ((rc = store_wtxn_begin(s, &txn))) return rc;
        size_t batch_bytes = 0;
        int lrc = 0;
        for (size_t i = 0; i < n && !lrc && !rc; i++) {
            const store_record *r = &recs[i];
            uint8_t hdr[STORE_RECORD_HDR_MAX], key[8];
            size_t hdr_len;
            if ((rc = store_record_header(hdr, sizeof hdr, &hdr_len, r->label, numel, has_flip))) break;
            store_key_encode(key, r->index);
            MDB_val k = {8, key}, v = {store_record_size(hdr_len, numel, has_flip), NULL};
            batch_bytes += v.mv_size;
            // NOOVERWRITE: an existing key comes back as MDB_KEYEXIST with v
            // pointing at its value; RESERVE: we fill the map in place
            // instead of LMDB copying from a staging buffer.
            lrc = mdb_put(txn, s->dbi, &k, &v, MDB_NOOVERWRITE | MDB_RESERVE);
            if (lrc == 0) {
                fill_value(v.mv_data, hdr, hdr_len, r, tb, has_flip);
                res->written++;
            } else if (lrc == MDB_KEYEXIST) {
                lrc = 0;
                if (s->opts.existing == STORE_EXISTING_VERIFY) {
                    int same = same_content(s, &v, r, tb);
                    if (same < 0) rc = same;
                    else if (!same) {
                        res->mismatch_index = r->index;
                        rc = vel_fail(STORE_EMISMATCH, "%s: index %llu already cached with "
                                        "different content (nothing of this batch written)",
                                        s->path, (unsigned long long)r->index);
                    }
                }
                if (!rc) res->skipped++;
            }
        }
        if (rc) { mdb_txn_abort(txn); return rc; }
        if (lrc == 0) lrc = mdb_txn_commit(txn);
        else mdb_txn_abort(txn);
        if (lrc == 0) return 0;
        if (lrc == MDB_MAP_FULL) {
            // Grow, then redo the whole batch in a fresh transaction.
            if ((rc = store_grow(s, batch_bytes + (batch_bytes >> 2)))) return rc;
            continue;
        }
        return store_lmdb_fail(lrc, "store_put_batch");
    }
}

static int push(uint64_t **arr, size_t *n, size_t *cap, uint64_t v) {
    if (*n == *cap) {
        size_t nc = *cap ? 2 * *cap : 256;
        uint64_t *p = realloc(*arr, nc * sizeof *p);
        if (!p) return vel_fail(VEL_ENOMEM, "store_missing: %zu indices", nc);
        *arr = p;
        *cap = nc;
    }
    (*arr)[(*n)++] = v;
    return 0;
}

int store_missing(store *s, uint64_t first, uint64_t end, uint64_t **out, size_t *n) {
    *out = NULL;
    *n = 0;
    if (end > STORE_MAX_INDEX + 1) end = STORE_MAX_INDEX + 1;
    if (first >= end) return 0;
    // The answer can be as long as the range; bound it so that a typo'd
    // range fails at once instead of allocating gigabytes first.
    if (end - first > STORE_MISSING_MAX_RANGE)
        return vel_fail(VEL_ERANGE, "store_missing: range [%llu, %llu) is longer than %llu",
                          (unsigned long long)first, (unsigned long long)end,
                          (unsigned long long)STORE_MISSING_MAX_RANGE);
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = store_rcursor_open(s, &txn, &cur);
    if (rc) return rc;
    uint64_t *arr = NULL;
    size_t cnt = 0, cap = 0;
    uint64_t next = first;   // lowest index not yet accounted for
    uint8_t key[8];
    store_key_encode(key, first);
    MDB_val k = {8, key}, v;
    int lrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (!rc && lrc == 0 && next < end) {
        if (store_key_is_meta(&k)) break;   // sorts after every index
        if (k.mv_size != 8) { rc = vel_fail(STORE_EKEY, "%s: key of %zu bytes", s->path, k.mv_size); break; }
        uint64_t idx = store_key_decode(k.mv_data);
        uint64_t stop = idx < end ? idx : end;
        for (; next < stop && !rc; next++) rc = push(&arr, &cnt, &cap, next);
        if (idx >= end) break;
        next = idx + 1;
        lrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (!rc && lrc != 0 && lrc != MDB_NOTFOUND) rc = store_lmdb_fail(lrc, "mdb_cursor_get");
    for (; !rc && next < end; next++) rc = push(&arr, &cnt, &cap, next);
    mdb_cursor_close(cur);
    store_rtxn_end(s, txn);
    if (rc) { free(arr); return rc; }
    *out = arr;
    *n = cnt;
    return 0;
}
