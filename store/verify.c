// verify.c: store_verify, a full walk over every key of the cache (not only
// the index range the iterator serves), so a stray key, a label out of range
// or a NaN in a record is found by `store-info --verify` rather than by a
// training run hours later.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/base.h"
#include "store/internal.h"
#include "store/record.h"

// First non-finite f32 in raw (possibly unaligned) little-endian bytes, or -1.
static int64_t first_nonfinite(const void *raw, int64_t n) {
    const unsigned char *p = raw;
    for (int64_t i = 0; i < n; i++) {
        float v;
        memcpy(&v, p + 4 * i, 4);
        if (!isfinite(v)) return i;
    }
    return -1;
}

int store_verify(store *s, int32_t num_classes, store_verify_report *r) {
    memset(r, 0, sizeof *r);
    if (num_classes > STORE_MAX_CLASSES) num_classes = STORE_MAX_CLASSES;
    if (num_classes <= 0) num_classes = STORE_MAX_CLASSES;
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = store_rcursor_open(s, &txn, &cur);
    if (rc) return rc;
    int first = 0;
    MDB_val k, v;
    int64_t numel = store_meta_numel(&s->meta);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (store_key_is_meta(&k)) continue;
        uint64_t index = k.mv_size == 8 ? store_key_decode(k.mv_data) : 0;
        if (k.mv_size != 8 || index > STORE_MAX_INDEX) {
            r->stray_keys++;
            if (!first)
                first = vel_fail(STORE_EKEY, "%s: a key of %zu bytes that is not a record index", s->path,
                                 k.mv_size);
            continue;
        }
        store_view sv;
        int e = store_record_decode(&sv, v.mv_data, v.mv_size, numel, s->meta.has_flip);
        if (e) {
            r->bad_records++;
            if (!first) {
                char d[400];
                snprintf(d, sizeof d, "%s", vel_error_detail());
                first = vel_fail(e, "%s: index %llu: %s", s->path, (unsigned long long)index, d);
            }
            continue;
        }
        r->records++;
        if (sv.label < -1 || sv.label >= num_classes) {
            r->bad_labels++;
            if (!first)
                first = vel_fail(STORE_ELABEL, "%s: index %llu: label %d outside -1..%d", s->path,
                                 (unsigned long long)index, (int)sv.label, (int)num_classes - 1);
        }
        const void *t[4] = {sv.mu, sv.sigma, sv.mu_flip, sv.sigma_flip};
        static const char *names[4] = {"mu", "sigma", "mu_flip", "sigma_flip"};
        for (int j = 0; j < 4; j++) {
            if (!t[j]) continue;
            int64_t at = first_nonfinite(t[j], numel);
            if (at < 0) continue;
            r->nonfinite++;
            if (!first) {
                float bad;
                memcpy(&bad, (const unsigned char *)t[j] + 4 * at, 4);
                first = vel_fail(VEL_ENONFINITE, "%s: index %llu: %s[%lld] = %g", s->path,
                                 (unsigned long long)index, names[j], (long long)at, (double)bad);
            }
            break;
        }
    }
    mdb_cursor_close(cur);
    store_rtxn_end(s, txn);
    if (rc != MDB_NOTFOUND) return store_lmdb_fail(rc, "mdb_cursor_get");
    return first;
}
