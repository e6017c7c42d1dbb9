// Multi-process tests: reader processes beside a writer (snapshots are
// consistent, batches appear whole, readers follow map growth), several
// writer processes creating and filling one cache at once (LMDB's write
// lock serializes them across processes, growth in any of them is adopted by
// the others), overlapping writers in verify mode.
// Every process opens the store itself after fork (LMDB forbids using an
// environment across fork); children report by exit status only.
// No Criterion .timeout here or in test_store_fault.c: Criterion 2.4.1's
// runner leaks 48 bytes when two timed tests finish together, which
// LeakSanitizer reports as a failure. Children bound themselves with alarm()
// instead (a writer stuck on a lock dies by SIGALRM and the test fails).
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/store/store_testdata.h"
#include "tests/util.h"

#define NREC 400
#define BATCH 20
#define NUMEL (16 * 8 * 8)   // 4 KiB per tensor: records live in overflow pages

static void shuffle(uint64_t *a, size_t n, uint64_t seed) {
    for (size_t i = n - 1; i > 0; i--) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        size_t j = (size_t)((seed >> 33) % (i + 1));
        uint64_t t = a[i]; a[i] = a[j]; a[j] = t;
    }
}

static int fail(const char *who, int rc) {
    fprintf(stderr, "%s: %d %s: %s\n", who, rc, vel_strerror(rc), vel_error_detail());
    return 1;
}

// Writes batches [b*BATCH, (b+1)*BATCH) for b in order[0..nb); exit status.
static int writer_main(const char *dir, const uint64_t *order, size_t nb, bool create, size_t map) {
    store_meta m = td_meta(16, 8, 8, true);
    store_opts o = {.map_size = map};
    store *s;
    int rc = create ? store_create(&s, dir, &m, &o) : store_open_rw(&s, dir, NULL, NULL, &o);
    if (rc) return fail("writer open", rc);
    float *buf = malloc((size_t)BATCH * 4 * NUMEL * sizeof(float));
    store_record recs[BATCH];
    for (size_t k = 0; k < nb; k++) {
        for (int i = 0; i < BATCH; i++)
            recs[i] = td_record(buf + (size_t)i * 4 * NUMEL, order[k] * BATCH + i, NUMEL, true);
        if ((rc = store_put_batch(s, recs, BATCH, NULL))) { free(buf); store_close(&s); return fail("writer put", rc); }
    }
    free(buf);
    store_close(&s);
    return 0;
}

// Repeats: one snapshot, every visible record checked, every batch whole;
// plus a random batch read. Stops when all NREC are visible. Exit status:
// 0 ok, 1 API error, 2 bad content, 3 half batch, 4 timeout.
static int reader_main(const char *dir, uint64_t seed) {
    store *s;
    const uint64_t id = seed;
    int rc = store_open(&s, dir, "sha256:tok-test", NULL, NULL);
    if (rc) return fail("reader open", rc);
    double t0 = vel_now();
    int status = 0;
    uint64_t last_seen = 0;
    float *mu = malloc(32 * NUMEL * sizeof(float)), *sg = malloc(32 * NUMEL * sizeof(float));
    uint8_t *present = malloc(NREC);
    while (!status) {
        if (vel_now() - t0 > 40) { status = 4; break; }
        memset(present, 0, NREC);
        store_txn *t;
        if ((rc = store_txn_begin(s, &t))) { status = fail("reader txn", rc); break; }
        uint64_t seen = 0;
        for (uint64_t i = 0; i < NREC && !status; i++) {
            store_view v;
            rc = store_txn_view(t, &v, i);
            if (rc == STORE_ENOKEY) continue;
            if (rc) { status = fail("reader view", rc); break; }
            if (td_check_view(&v, true)) { fprintf(stderr, "reader: record %llu bad\n", (unsigned long long)i); status = 2; }
            present[i] = 1;
            seen++;
        }
        for (int b = 0; b < NREC / BATCH && !status; b++) {
            int c = 0;
            for (int i = 0; i < BATCH; i++) c += present[b * BATCH + i];
            if (c != 0 && c != BATCH) { fprintf(stderr, "reader: batch %d has %d of %d\n", b, c, BATCH); status = 3; }
        }
        // A shuffled training batch drawn from what is visible, with flips.
        if (!status && seen > 0) {
            uint64_t idx[32];
            uint8_t flip[32];
            for (int k = 0; k < 32; k++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                uint64_t i = (seed >> 33) % NREC;
                while (!present[i]) i = (i + 1) % NREC;
                idx[k] = i;
                flip[k] = (seed >> 20) & 1;
            }
            if ((rc = store_txn_read_batch(t, mu, sg, NULL, idx, flip, 32))) status = fail("reader batch", rc);
            for (int k = 0; k < 32 && !status; k++)
                if (td_check_bytes(mu + k * NUMEL, idx[k], flip[k] ? 2 : 0, NUMEL) ||
                    td_check_bytes(sg + k * NUMEL, idx[k], flip[k] ? 3 : 1, NUMEL)) status = 2;
        }
        store_txn_end(&t);
        if (seen < last_seen) { fprintf(stderr, "reader: went back from %llu to %llu\n", (unsigned long long)last_seen, (unsigned long long)seen); status = 2; }
        last_seen = seen;
        if (getenv("STORE_TEST_VERBOSE")) fprintf(stderr, "reader %llu sees %llu\n", (unsigned long long)id, (unsigned long long)seen);
        if (seen == NREC) break;
    }
    free(mu); free(sg); free(present);
    store_close(&s);
    return status;
}

static void wait_all(pid_t *pids, int n, const char *what) {
    for (int i = 0; i < n; i++) {
        int st;
        cr_assert_eq(waitpid(pids[i], &st, 0), pids[i]);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s %d: %s %d", what, i,
                  WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    }
}

static void verify_all(const char *dir) {
    store *s;
    int rc = store_open(&s, dir, NULL, NULL, NULL);
    cr_assert_eq(rc, 0, "%s", vel_error_detail());
    uint64_t n;
    cr_assert_eq(store_count(s, &n), 0);
    cr_assert_eq(n, NREC);
    store_iter *it;
    cr_assert_eq(store_iter_open(s, &it, 0), 0);
    store_view v;
    uint64_t expect = 0;
    while ((rc = store_iter_next(it, &v)) == 1) {
        cr_assert_eq(v.index, expect++);
        cr_assert_eq(td_check_view(&v, true), 0, "record %llu", (unsigned long long)v.index);
    }
    cr_assert_eq(rc, 0);
    cr_assert_eq(expect, NREC);
    store_iter_close(&it);
    store_close(&s);
}

Test(store_multiproc, forked_readers_beside_one_writer) {
    char *dir = test_tmpdir("store-mp-read");
    {   // Create the (empty) cache first, then close it before forking.
        store_meta m = td_meta(16, 8, 8, true);
        store_opts o = {.map_size = 1 << 20};
        store *s;
        cr_assert_eq(store_create(&s, dir, &m, &o), 0, "%s", vel_error_detail());
        store_close(&s);
    }
    uint64_t order[NREC / BATCH];
    for (int b = 0; b < NREC / BATCH; b++) order[b] = b;
    shuffle(order, NREC / BATCH, 11);
    pid_t pids[4];
    for (int r = 0; r < 3; r++) {
        pids[r] = fork();
        cr_assert(pids[r] >= 0);
        if (pids[r] == 0) { alarm(50); _exit(reader_main(dir, 100 + r)); }
    }
    pids[3] = fork();
    cr_assert(pids[3] >= 0);
    // 1 MiB map, ~6.6 MiB of records: the writer grows the map several times
    // while readers hold snapshots and must follow (MDB_MAP_RESIZED).
    if (pids[3] == 0) { alarm(50); _exit(writer_main(dir, order, NREC / BATCH, false, 1 << 20)); }
    wait_all(pids, 4, "process");
    verify_all(dir);
    rm_rf(dir); free(dir);
}

Test(store_multiproc, concurrent_writer_processes_split_by_range) {
    // 4 encode-like processes create the same fresh cache at once and each
    // writes its quarter of the batches plus the first batch of the next
    // quarter (an overlap, identical content, verified on put).
    char *dir = test_tmpdir("store-mp-write");
    const int P = 4, per = NREC / BATCH / P;
    pid_t pids[4];
    for (int p = 0; p < P; p++) {
        pids[p] = fork();
        cr_assert(pids[p] >= 0);
        if (pids[p] == 0) {
            uint64_t order[NREC / BATCH];
            size_t nb = 0;
            for (int b = 0; b < per; b++) order[nb++] = p * per + b;
            order[nb++] = ((p + 1) % P) * per;
            shuffle(order, nb, 7 + p);
            alarm(50);
            _exit(writer_main(dir, order, nb, true, 1 << 20));
        }
    }
    wait_all(pids, P, "writer");
    verify_all(dir);
    rm_rf(dir); free(dir);
}

// A reader opened on a small map, then another process grows the map far
// past it: the reader's next transaction gets MDB_MAP_RESIZED from LMDB and
// must adopt the new size instead of failing.
Test(store_multiproc, reader_follows_map_growth_by_another_process) {
    char *dir = test_tmpdir("store-mp-resize");
    {
        store_meta m = td_meta(16, 8, 8, true);
        store_opts o = {.map_size = 1 << 20};
        store *s;
        cr_assert_eq(store_create(&s, dir, &m, &o), 0, "%s", vel_error_detail());
        store_close(&s);
    }
    int go[2];
    cr_assert_eq(pipe(go), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        close(go[1]);
        char c;
        if (read(go[0], &c, 1) != 1) _exit(9);
        alarm(50);
        uint64_t order[NREC / BATCH];
        for (int b = 0; b < NREC / BATCH; b++) order[b] = b;
        _exit(writer_main(dir, order, NREC / BATCH, false, 1 << 20));
    }
    close(go[0]);
    store *s;
    cr_assert_eq(store_open(&s, dir, NULL, NULL, NULL), 0, "%s", vel_error_detail());
    size_t before, after;
    cr_assert_eq(store_map_size(s, &before), 0);
    cr_assert_eq(write(go[1], "g", 1), 1);
    close(go[1]);
    wait_all(&pid, 1, "writer");
    uint64_t n;
    cr_assert_eq(store_count(s, &n), 0, "%s", vel_error_detail());
    cr_assert_eq(n, NREC);
    cr_assert_eq(store_map_size(s, &after), 0);
    cr_assert(after > before && after >= ((size_t)6 << 20), "reader map %zu -> %zu", before, after);
    uint64_t idx[4] = {NREC - 1, 0, 200, 399};
    float *mu = malloc(4 * NUMEL * sizeof(float));
    cr_assert_eq(store_read_batch(s, mu, NULL, NULL, idx, NULL, 4), 0, "%s", vel_error_detail());
    for (int k = 0; k < 4; k++) cr_assert_eq(td_check_bytes(mu + k * NUMEL, idx[k], 0, NUMEL), 0);
    free(mu);
    store_close(&s);
    rm_rf(dir); free(dir);
}

// Stats written by another process (the encode stage, after all ranges are
// done) become visible to an open reader through store_meta_reload.
Test(store_multiproc, reader_reloads_stats_set_by_another_process) {
    char *dir = test_tmpdir("store-mp-stats");
    {
        store_meta m = td_meta(2, 1, 1, false);
        store *s;
        cr_assert_eq(store_create(&s, dir, &m, NULL), 0, "%s", vel_error_detail());
        store_close(&s);
    }
    int go[2];
    cr_assert_eq(pipe(go), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        close(go[1]);
        char c;
        if (read(go[0], &c, 1) != 1) _exit(9);
        alarm(50);
        store *w;
        if (store_open_rw(&w, dir, NULL, NULL, NULL)) _exit(1);
        float mean[2] = {0.25f, -1.5f}, std[2] = {2.0f, 0.125f};
        int rc = store_set_stats(w, mean, std);
        store_close(&w);
        _exit(rc ? 2 : 0);
    }
    close(go[0]);
    store *s;
    cr_assert_eq(store_open(&s, dir, NULL, NULL, NULL), 0, "%s", vel_error_detail());
    cr_assert(!store_get_meta(s)->has_stats);
    cr_assert_eq(write(go[1], "g", 1), 1);
    close(go[1]);
    wait_all(&pid, 1, "stats writer");
    cr_assert(!store_get_meta(s)->has_stats, "the cached meta changes only on reload");
    cr_assert_eq(store_meta_reload(s), 0, "%s", vel_error_detail());
    const store_meta *m = store_get_meta(s);
    cr_assert(m->has_stats && m->mean[1] == -1.5f && m->std[1] == 0.125f);
    float z[2] = {0.25f + 2.0f * 3, -1.5f - 0.125f * 2}, zn[2];
    cr_assert_eq(store_normalise(zn, z, m, 1), 0);
    cr_assert(zn[0] == 3.0f && zn[1] == -2.0f, "zn = %g %g", zn[0], zn[1]);   // exact: dyadic values
    store_close(&s);
    rm_rf(dir); free(dir);
}
