// Single-process tests of the store API: round trips, batch reads (flip,
// repeats, unaligned small records), iteration order, count, missing,
// idempotent puts (skip / verify / mismatch), map growth, meta and stats
// persistence, read-only handles.
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "tests/store/store_testdata.h"
#include "tests/util.h"

#define ASSERT_OK(expr)                                                                  \
    do {                                                                                 \
        int rc_ = (expr);                                                                \
        cr_assert_eq(rc_, 0, "%s -> %d (%s: %s)", #expr, rc_, vel_strerror(rc_),       \
                     vel_error_detail());                                                \
    } while (0)

// Writes indices [first, end) in batches of bs; flip as in meta.
static void write_range(store *s, uint64_t first, uint64_t end, size_t bs) {
    const store_meta *m = store_get_meta(s);
    int64_t numel = store_meta_numel(m);
    float *buf = malloc(bs * 4 * (size_t)numel * sizeof(float));
    store_record *recs = malloc(bs * sizeof *recs);
    for (uint64_t i = first; i < end; i += bs) {
        size_t n = 0;
        for (uint64_t j = i; j < end && n < bs; j++, n++)
            recs[n] = td_record(buf + n * 4 * numel, j, numel, m->has_flip);
        store_put_result res;
        ASSERT_OK(store_put_batch(s, recs, n, &res));
        cr_assert_eq(res.written, n);
    }
    free(buf);
    free(recs);
}

Test(store_basic, create_put_get_roundtrip_32x16x16_with_flip) {
    char *dir = test_tmpdir("store-basic");
    store_meta m = td_meta(32, 16, 16, true);
    store *s;
    ASSERT_OK(store_create(&s, dir, &m, NULL));
    write_range(s, 0, 40, 16);
    uint64_t n;
    ASSERT_OK(store_count(s, &n));
    cr_assert_eq(n, 40);
    int64_t numel = 32 * 16 * 16;
    float *mu = malloc(numel * 4), *sg = malloc(numel * 4);
    for (uint64_t i = 0; i < 40; i += 7)
        for (int f = 0; f < 2; f++) {
            int32_t label = -5;
            ASSERT_OK(store_get(s, mu, sg, &label, i, f));
            cr_assert_eq(label, td_label(i));
            cr_assert_eq(td_check_bytes(mu, i, f ? 2 : 0, numel), 0, "mu of %llu flip %d", (unsigned long long)i, f);
            cr_assert_eq(td_check_bytes(sg, i, f ? 3 : 1, numel), 0);
        }
    cr_assert_eq(store_get(s, mu, sg, NULL, 40, false), STORE_ENOKEY);
    cr_assert(strstr(vel_error_detail(), "40") != NULL, "detail names the index: %s", vel_error_detail());
    cr_assert_eq(store_get(s, mu, sg, NULL, STORE_MAX_INDEX + 1, false), STORE_EINDEX);
    free(mu); free(sg);
    store_close(&s);
    cr_assert_null(s);
    // Reopen read-only: same content, meta as written.
    int64_t shape[3] = {32, 16, 16};
    ASSERT_OK(store_open(&s, dir, "sha256:tok-test", shape, NULL));
    const store_meta *g = store_get_meta(s);
    cr_assert_str_eq(g->dataset, "testset");
    cr_assert_eq(g->dataset_size, 1000);
    cr_assert_str_eq(g->code_version, "test-1");
    cr_assert(g->has_flip && !g->has_stats);
    ASSERT_OK(store_count(s, &n));
    cr_assert_eq(n, 40);
    store_record r = {41, 1, (float[8192]){0}, (float[8192]){0}, NULL, NULL};
    cr_assert_eq(store_put_batch(s, &r, 1, NULL), STORE_EREADONLY);
    store_close(&s);
    rm_rf(dir); free(dir);
}

Test(store_basic, batch_read_shuffled_repeats_flip_toy_shape) {
    // Toy pipeline shape: 2-D latents C=2, H=W=1 (16-byte records sit inline
    // in LMDB leaf pages, 2-byte aligned: exercises the memcpy path).
    char *dir = test_tmpdir("store-batch");
    store_meta m = td_meta(2, 1, 1, true);
    store *s;
    ASSERT_OK(store_create(&s, dir, &m, NULL));
    write_range(s, 0, 500, 64);
    uint64_t idx[9] = {499, 3, 3, 250, 0, 17, 499, 123, 42};
    uint8_t flip[9] = {0, 1, 0, 1, 0, 0, 1, 1, 0};
    float mu[9 * 2], sg[9 * 2];
    int32_t lab[9];
    ASSERT_OK(store_read_batch(s, mu, sg, lab, idx, flip, 9));
    for (int b = 0; b < 9; b++) {
        cr_assert_eq(lab[b], td_label(idx[b]));
        cr_assert_eq(td_check_bytes(mu + 2 * b, idx[b], flip[b] ? 2 : 0, 2), 0, "item %d", b);
        cr_assert_eq(td_check_bytes(sg + 2 * b, idx[b], flip[b] ? 3 : 1, 2), 0, "item %d", b);
    }
    // NULL outputs are allowed; a missing index fails the batch with its name.
    ASSERT_OK(store_read_batch(s, mu, NULL, NULL, idx, NULL, 9));
    idx[4] = 777;
    cr_assert_eq(store_read_batch(s, mu, sg, lab, idx, NULL, 9), STORE_ENOKEY);
    cr_assert(strstr(vel_error_detail(), "777"));
    // Borrowed views from one txn.
    store_txn *t;
    ASSERT_OK(store_txn_begin(s, &t));
    for (uint64_t i = 0; i < 500; i += 37) {
        store_view v;
        ASSERT_OK(store_txn_view(t, &v, i));
        cr_assert_eq(v.index, i);
        cr_assert_eq(v.numel, 2);
        cr_assert_eq(td_check_view(&v, true), 0);
    }
    store_txn_end(&t);
    cr_assert_null(t);
    store_close(&s);
    rm_rf(dir); free(dir);
}

Test(store_basic, no_flip_cache_rejects_flip_requests) {
    char *dir = test_tmpdir("store-noflip");
    store_meta m = td_meta(4, 2, 2, false);
    store *s;
    ASSERT_OK(store_create(&s, dir, &m, NULL));
    write_range(s, 0, 10, 4);
    float mu[16], sg[16];
    uint64_t idx[2] = {1, 2};
    uint8_t flip[2] = {0, 1};
    cr_assert_eq(store_read_batch(s, mu, sg, NULL, idx, flip, 2), STORE_ENOFLIP);
    cr_assert_eq(store_get(s, mu, sg, NULL, 1, true), STORE_ENOFLIP);
    ASSERT_OK(store_get(s, mu, sg, NULL, 1, false));
    float buf[64];
    store_record r = td_record(buf, 20, 16, true);   // flip given to a no-flip cache
    cr_assert_eq(store_put_batch(s, &r, 1, NULL), STORE_ENOFLIP);
    store_close(&s);
    store_meta mf = td_meta(4, 2, 2, true);
    ASSERT_OK(store_create(&s, dir, &m, NULL));      // same meta: reopens
    store_close(&s);
    cr_assert_eq(store_create(&s, dir, &mf, NULL), STORE_EMETA);   // flip layout differs
    cr_assert_null(s);
    rm_rf(dir); free(dir);
}

Test(store_basic, iterate_in_index_order_and_missing_ranges) {
    char *dir = test_tmpdir("store-iter");
    store_meta m = td_meta(3, 2, 1, false);
    store *s;
    ASSERT_OK(store_create(&s, dir, &m, NULL));
    // Write in a scrambled order with gaps: indices 0..299 except multiples of 7,
    // plus two large indices (byte order matters beyond 255 and 65535).
    float buf[4 * 6];
    for (uint64_t k = 0; k < 300; k++) {
        uint64_t i = (k * 113) % 300;
        if (i % 7 == 0) continue;
        store_record r = td_record(buf, i, 6, false);
        ASSERT_OK(store_put_batch(s, &r, 1, NULL));
    }
    uint64_t big[2] = {70000, STORE_MAX_INDEX};
    for (int k = 0; k < 2; k++) {
        store_record r = td_record(buf, big[k], 6, false);
        ASSERT_OK(store_put_batch(s, &r, 1, NULL));
    }
    store_iter *it;
    ASSERT_OK(store_iter_open(s, &it, 0));
    store_view v;
    uint64_t expect = 1, seen = 0;
    int rc;
    while ((rc = store_iter_next(it, &v)) == 1) {
        if (seen < 300 - 43) {
            while (expect % 7 == 0) expect++;
            cr_assert_eq(v.index, expect, "iteration order: got %llu want %llu",
                         (unsigned long long)v.index, (unsigned long long)expect);
            expect++;
        } else {
            cr_assert_eq(v.index, big[seen - (300 - 43)]);
        }
        cr_assert_eq(td_check_view(&v, false), 0);
        seen++;
    }
    cr_assert_eq(rc, 0, "iterator error %d %s", rc, vel_error_detail());
    cr_assert_eq(seen, 300 - 43 + 2);   // 43 multiples of 7 in 0..299, meta not listed
    store_iter_close(&it);
    cr_assert_null(it);
    // Starting in the middle.
    ASSERT_OK(store_iter_open(s, &it, 150));
    cr_assert_eq(store_iter_next(it, &v), 1);
    cr_assert_eq(v.index, 150);   // 150 % 7 != 0
    store_iter_close(&it);
    ASSERT_OK(store_iter_open(s, &it, 70001));
    cr_assert_eq(store_iter_next(it, &v), 1);
    cr_assert_eq(v.index, STORE_MAX_INDEX);
    cr_assert_eq(store_iter_next(it, &v), 0);
    store_iter_close(&it);

    uint64_t *miss, cnt;
    size_t nmiss;
    ASSERT_OK(store_count(s, &cnt));
    cr_assert_eq(cnt, 300 - 43 + 2);
    uint64_t *all;
    size_t nall;
    ASSERT_OK(store_list_indices(s, &all, &nall));
    cr_assert_eq(nall, cnt);
    for (size_t i = 0, want = 1; i + 2 < nall; i++, want++) {
        while (want % 7 == 0) want++;
        cr_assert_eq(all[i], want, "list[%zu]", i);
    }
    cr_assert_eq(all[nall - 2], 70000);
    cr_assert_eq(all[nall - 1], STORE_MAX_INDEX);
    free(all);
    ASSERT_OK(store_missing(s, 0, 320, &miss, &nmiss));
    size_t k = 0;
    for (uint64_t i = 0; i < 320; i++)
        if (i % 7 == 0 || i >= 300) {
            cr_assert(k < nmiss);
            cr_assert_eq(miss[k], i, "missing[%zu] = %llu want %llu", k, (unsigned long long)miss[k],
                         (unsigned long long)i);
            k++;
        }
    cr_assert_eq(k, nmiss);
    free(miss);
    ASSERT_OK(store_missing(s, 1, 7, &miss, &nmiss));
    cr_assert_eq(nmiss, 0);
    cr_assert_null(miss);
    ASSERT_OK(store_missing(s, 69999, 70002, &miss, &nmiss));
    cr_assert_eq(nmiss, 2);
    cr_assert_eq(miss[0], 69999);
    cr_assert_eq(miss[1], 70001);
    free(miss);
    ASSERT_OK(store_missing(s, 5, 5, &miss, &nmiss));
    cr_assert_eq(nmiss, 0);
    cr_assert_eq(store_missing(s, 0, UINT64_MAX, &miss, &nmiss), VEL_ERANGE);
    cr_assert_null(miss);
    store_close(&s);
    rm_rf(dir); free(dir);
}

Test(store_basic, idempotent_puts_skip_verify_mismatch) {
    char *dir = test_tmpdir("store-idem");
    store_meta m = td_meta(2, 4, 4, true);
    store *s;
    ASSERT_OK(store_create(&s, dir, &m, NULL));   // default: verify
    write_range(s, 0, 20, 8);
    // Re-put 15..24 identical: 5 skipped (verified), 5 written.
    float buf[10 * 4 * 32];
    store_record recs[10];
    for (int i = 0; i < 10; i++) recs[i] = td_record(buf + i * 128, 15 + i, 32, true);
    store_put_result res;
    ASSERT_OK(store_put_batch(s, recs, 10, &res));
    cr_assert_eq(res.written, 5);
    cr_assert_eq(res.skipped, 5);
    // A batch with one differing record writes nothing at all.
    for (int i = 0; i < 10; i++) recs[i] = td_record(buf + i * 128, 25 + i, 32, true);
    float bad[4 * 32];
    recs[7] = td_record(bad, 3, 32, true);
    bad[2 * 32 + 5] += 1e-3f;   // one element of mu_flip differs
    cr_assert_eq(store_put_batch(s, recs, 10, &res), STORE_EMISMATCH);
    cr_assert_eq(res.mismatch_index, 3);
    cr_assert(strstr(vel_error_detail(), "index 3"), "%s", vel_error_detail());
    uint64_t n;
    ASSERT_OK(store_count(s, &n));
    cr_assert_eq(n, 25, "nothing of the failed batch visible");
    // A different label is a mismatch too.
    store_record r = td_record(bad, 4, 32, true);
    r.label = 99;
    cr_assert_eq(store_put_batch(s, &r, 1, NULL), STORE_EMISMATCH);
    // Duplicate index inside one batch: second copy verified against the first.
    store_record dup[2] = {td_record(buf, 50, 32, true), td_record(buf + 128, 50, 32, true)};
    ASSERT_OK(store_put_batch(s, dup, 2, &res));
    cr_assert_eq(res.written, 1);
    cr_assert_eq(res.skipped, 1);
    store_close(&s);
    // Skip mode: the differing record is skipped, the old content kept.
    store_opts o = {.existing = STORE_EXISTING_SKIP};
    ASSERT_OK(store_create(&s, dir, &m, &o));
    ASSERT_OK(store_put_batch(s, recs, 10, &res));
    cr_assert_eq(res.written, 9);
    cr_assert_eq(res.skipped, 1);
    float mu[32], sg[32];
    ASSERT_OK(store_get(s, mu, sg, NULL, 3, true));
    cr_assert_eq(td_check_bytes(mu, 3, 2, 32), 0, "old content kept");
    store_close(&s);
    rm_rf(dir); free(dir);
}

Test(store_basic, map_grows_on_map_full) {
    char *dir = test_tmpdir("store-grow");
    store_meta m = td_meta(32, 16, 16, false);   // 64 KiB records
    store_opts o = {.map_size = 1 << 20};        // 1 MiB: full after ~14 records
    store *s;
    ASSERT_OK(store_create(&s, dir, &m, &o));
    size_t before, after;
    ASSERT_OK(store_map_size(s, &before));
    write_range(s, 0, 200, 32);                  // ~12.5 MiB
    ASSERT_OK(store_map_size(s, &after));
    cr_assert(after > before && after >= ((size_t)12 << 20), "map %zu -> %zu", before, after);
    store_close(&s);
    // Growth is capped when asked.
    char *dir2 = test_tmpdir("store-cap");
    store_opts oc = {.map_size = 1 << 20, .max_map_size = 2 << 20};
    ASSERT_OK(store_create(&s, dir2, &m, &oc));
    float *buf = malloc(64 * 4 * 8192 * sizeof(float));
    store_record recs[64];
    for (int i = 0; i < 64; i++) recs[i] = td_record(buf + i * 4 * 8192, i, 8192, false);
    cr_assert_eq(store_put_batch(s, recs, 64, NULL), STORE_EMAPCAP);
    uint64_t n;
    ASSERT_OK(store_count(s, &n));
    cr_assert_eq(n, 0);
    free(buf);
    store_close(&s);
    // The grown cache reads back whole.
    ASSERT_OK(store_open(&s, dir, NULL, NULL, NULL));
    ASSERT_OK(store_count(s, &n));
    cr_assert_eq(n, 200);
    store_txn *t;
    ASSERT_OK(store_txn_begin(s, &t));
    for (uint64_t i = 0; i < 200; i++) {
        store_view v;
        ASSERT_OK(store_txn_view(t, &v, i));
        cr_assert_eq(td_check_view(&v, false), 0, "record %llu", (unsigned long long)i);
    }
    store_txn_end(&t);
    store_close(&s);
    rm_rf(dir); free(dir); rm_rf(dir2); free(dir2);
}

Test(store_basic, growth_refused_while_read_txn_open) {
    char *dir = test_tmpdir("store-busy");
    store_meta m = td_meta(32, 16, 16, false);
    store_opts o = {.map_size = 1 << 20};
    store *s;
    ASSERT_OK(store_create(&s, dir, &m, &o));
    store_txn *t;
    ASSERT_OK(store_txn_begin(s, &t));
    float *buf = malloc(32 * 4 * 8192 * sizeof(float));
    store_record recs[32];
    for (int i = 0; i < 32; i++) recs[i] = td_record(buf + i * 4 * 8192, i, 8192, false);
    cr_assert_eq(store_put_batch(s, recs, 32, NULL), STORE_EBUSY);
    store_txn_end(&t);
    ASSERT_OK(store_put_batch(s, recs, 32, NULL));
    free(buf);
    store_close(&s);
    rm_rf(dir); free(dir);
}

Test(store_basic, empty_batch_and_bad_records) {
    char *dir = test_tmpdir("store-badrec");
    store_meta m = td_meta(2, 1, 1, true);
    store *s;
    ASSERT_OK(store_create(&s, dir, &m, NULL));
    store_put_result res;
    ASSERT_OK(store_put_batch(s, NULL, 0, &res));
    cr_assert_eq(res.written, 0);
    uint64_t *all = (uint64_t *)&res;
    size_t nall = 9;
    ASSERT_OK(store_list_indices(s, &all, &nall));
    cr_assert_null(all);
    cr_assert_eq(nall, 0);
    float buf[8];
    store_record r = td_record(buf, 1, 2, false);   // cache needs the flip pair
    cr_assert_eq(store_put_batch(s, &r, 1, NULL), VEL_EINVAL);
    r = td_record(buf, STORE_MAX_INDEX + 1, 2, true);
    cr_assert_eq(store_put_batch(s, &r, 1, NULL), STORE_EINDEX);
    r = td_record(buf, 1, 2, true);
    r.sigma = NULL;
    cr_assert_eq(store_put_batch(s, &r, 1, NULL), VEL_EINVAL);
    uint64_t n;
    ASSERT_OK(store_count(s, &n));
    cr_assert_eq(n, 0);
    store_close(&s);
    rm_rf(dir); free(dir);
}

Test(store_basic, meta_init_validates) {
    store_meta m;
    char longs[200];
    memset(longs, 'a', sizeof longs - 1);
    longs[199] = 0;
    cr_assert_eq(store_meta_init(&m, longs, 4, 4, 4, false, "d", 1, "v"), VEL_ERANGE);
    cr_assert_eq(store_meta_init(&m, "h", 0, 4, 4, false, "d", 1, "v"), STORE_ESHAPE);
    cr_assert_eq(store_meta_init(&m, "h", STORE_MAX_CHANNELS + 1, 1, 1, false, "d", 1, "v"), STORE_ESHAPE);
    cr_assert_eq(store_meta_init(&m, "h", 1024, 1024, 1025, false, "d", 1, "v"), STORE_ESHAPE);
    cr_assert_eq(store_meta_init(&m, "h", 2, 1, 1, false, "d", 1, "v"), 0);
    cr_assert_eq(store_meta_numel(&m), 2);
}

Test(store_basic, strerror_names_every_code) {
    for (int c = -201; c >= -217; c--) {
        const char *msg = vel_strerror(c);
        cr_assert(msg && strcmp(msg, "unknown error") != 0, "code %d has no message", c);
    }
    cr_assert_str_eq(vel_strerror(VEL_ENOMEM), "out of memory");
}
