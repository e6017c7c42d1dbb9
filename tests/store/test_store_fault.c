// Fault test: a writer process is killed with SIGKILL at seeded moments
// (after a seeded number of committed batches plus a seeded delay, so the
// kill lands before, inside or after a transaction). After each kill:
//   - every batch the writer reported as committed is present and intact,
//   - no batch is partly visible (each batch is all there or all absent),
//   - every visible record has exactly its deterministic content;
// then a resumed writer (also killed once) and a final one complete the set
// via store_missing, with no gaps and no duplicates. Several seeds, with
// and without MDB_NOSYNC (a killed process loses nothing either way).
// The writer may die holding LMDB's write lock: the next writer only gets on
// because LMDB's lock is a robust mutex; without that this test would hang
// and its writer would die by alarm() (no Criterion .timeout: see
// test_store_multiproc.c).
#include <criterion/criterion.h>
#include <errno.h>
#include <lmdb.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/store/store_testdata.h"
#include "tests/util.h"

#define NB 40                 // batches
#define B 8                   // records per batch
#define NUMEL (32 * 16 * 16)  // the real latent: 64 KiB of mu+sigma per record

static uint64_t lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

// Writes the missing batches in a seeded order, reporting each committed
// batch number on fd. Exit status 0 when complete.
static int writer_main(const char *dir, int fd, uint64_t seed, bool nosync) {
    store_opts o = {.map_size = 1 << 20, .nosync = nosync};
    store *s;
    int rc = store_open_rw(&s, dir, "sha256:tok-test", NULL, &o);
    if (rc) { fprintf(stderr, "writer open: %s\n", vel_error_detail()); return 1; }
    uint64_t *miss;
    size_t nmiss;
    if ((rc = store_missing(s, 0, NB * B, &miss, &nmiss))) { store_close(&s); return 1; }
    // Group the missing indices by batch; after a clean kill they come in
    // whole batches (checked by the parent, not assumed here).
    int todo[NB], nt = 0;
    for (size_t i = 0; i < nmiss; i++)
        if (nt == 0 || todo[nt - 1] != (int)(miss[i] / B)) todo[nt++] = (int)(miss[i] / B);
    for (int i = nt - 1; i > 0; i--) {
        int j = (int)(lcg(&seed) % (uint64_t)(i + 1)), t = todo[i];
        todo[i] = todo[j]; todo[j] = t;
    }
    float *buf = malloc((size_t)B * 4 * NUMEL * sizeof(float));
    store_record recs[B];
    for (int k = 0; k < nt && !rc; k++) {
        int n = 0;
        for (size_t i = 0; i < nmiss; i++)
            if ((int)(miss[i] / B) == todo[k]) { recs[n] = td_record(buf + (size_t)n * 4 * NUMEL, miss[i], NUMEL, false); n++; }
        if ((rc = store_put_batch(s, recs, (size_t)n, NULL))) fprintf(stderr, "writer put: %s\n", vel_error_detail());
        uint32_t done = (uint32_t)todo[k];
        if (!rc && write(fd, &done, 4) != 4) rc = 1;
    }
    free(buf);
    free(miss);
    store_close(&s);
    return rc ? 1 : 0;
}

// Runs a writer; kills it after `after` reports plus delay_us (kill < 0: let
// it finish). Fills reported[] with the batches it said were committed.
static void run_writer(const char *dir, uint64_t seed, bool nosync, int after, int delay_us,
                       bool reported[NB]) {
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        alarm(50);   // a writer stuck on a dead lock owner must not hang the suite
        _exit(writer_main(dir, fds[1], seed, nosync));
    }
    close(fds[1]);
    int got = 0;
    uint32_t k;
    bool killed = false;
    for (;;) {
        if (after >= 0 && got >= after && !killed) {
            usleep((useconds_t)delay_us);
            kill(pid, SIGKILL);
            killed = true;
        }
        ssize_t r = read(fds[0], &k, 4);
        if (r == 4) {
            cr_assert(k < NB);
            reported[k] = true;
            got++;
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        break;   // EOF: the writer exited or died
    }
    close(fds[0]);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    if (after < 0 || !killed)
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer failed (status %d)", st);
    else
        cr_assert((WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) || (WIFEXITED(st) && WEXITSTATUS(st) == 0),
                  "writer neither killed nor done (status %d)", st);
}

// Checks the invariants; returns the number of complete batches.
static int check_cache(const char *dir, const bool reported[NB], const char *when) {
    store *s;
    int rc = store_open(&s, dir, "sha256:tok-test", NULL, NULL);
    cr_assert_eq(rc, 0, "%s: reopen: %s", when, vel_error_detail());
    int per_batch[NB] = {0};
    store_iter *it;
    cr_assert_eq(store_iter_open(s, &it, 0), 0);
    store_view v;
    int64_t prev = -1;
    uint64_t seen = 0;
    while ((rc = store_iter_next(it, &v)) == 1) {
        cr_assert((int64_t)v.index > prev, "%s: order/duplicate at %llu", when, (unsigned long long)v.index);
        prev = (int64_t)v.index;
        cr_assert(v.index < NB * B, "%s: stray index %llu", when, (unsigned long long)v.index);
        cr_assert_eq(td_check_view(&v, false), 0, "%s: record %llu corrupt", when, (unsigned long long)v.index);
        per_batch[v.index / B]++;
        seen++;
    }
    cr_assert_eq(rc, 0, "%s: iteration: %s", when, vel_error_detail());
    store_iter_close(&it);
    uint64_t n;
    cr_assert_eq(store_count(s, &n), 0);
    cr_assert_eq(n, seen, "%s: count %llu vs iterated %llu", when, (unsigned long long)n, (unsigned long long)seen);
    store_close(&s);
    int full = 0;
    for (int k = 0; k < NB; k++) {
        cr_assert(per_batch[k] == 0 || per_batch[k] == B, "%s: batch %d half-written (%d of %d)", when, k,
                  per_batch[k], B);
        if (reported[k]) cr_assert_eq(per_batch[k], B, "%s: committed batch %d lost", when, k);
        full += per_batch[k] == B;
    }
    return full;
}

static void fault_run(uint64_t seed) {
    char *dir = test_tmpdir("store-fault");
    bool nosync = seed & 1;
    {
        store_meta m = td_meta(32, 16, 16, false);
        store_opts o = {.map_size = 1 << 20};
        store *s;
        cr_assert_eq(store_create(&s, dir, &m, &o), 0, "%s", vel_error_detail());
        store_close(&s);
    }
    uint64_t r = seed * 0x9e3779b97f4a7c15ull + 1;
    bool reported[NB] = {0};
    // Phase 1: killed after 0..11 commits plus 0..6 ms.
    int after = (int)(lcg(&r) % 12), delay = (int)(lcg(&r) % 6000);
    run_writer(dir, seed, nosync, after, delay, reported);
    int full1 = check_cache(dir, reported, "after kill 1");
    // Phase 2: a resumed writer, killed again.
    after = (int)(lcg(&r) % 8);
    delay = (int)(lcg(&r) % 6000);
    run_writer(dir, seed + 100, nosync, after, delay, reported);
    int full2 = check_cache(dir, reported, "after kill 2");
    cr_assert(full2 >= full1);
    // Phase 3: the last writer completes the set.
    run_writer(dir, seed + 200, nosync, -1, 0, reported);
    int full3 = check_cache(dir, reported, "after completion");
    cr_assert_eq(full3, NB, "seed %llu: %d of %d batches after completion", (unsigned long long)seed, full3, NB);
    if (getenv("STORE_TEST_VERBOSE"))
        fprintf(stderr, "seed %llu: %d then %d batches survived the kills\n", (unsigned long long)seed, full1, full2);
    rm_rf(dir);
    free(dir);
}

Test(store_fault, sigkill_seed_1) { fault_run(1); }
Test(store_fault, sigkill_seed_2) { fault_run(2); }
Test(store_fault, sigkill_seed_3) { fault_run(3); }
Test(store_fault, sigkill_seed_4) { fault_run(4); }
Test(store_fault, sigkill_seed_5) { fault_run(5); }
Test(store_fault, sigkill_seed_6) { fault_run(6); }

// Deterministic worst case: the writer dies while inside a write transaction
// that already holds half a batch (raw LMDB, so the kill point is exact) and
// owns LMDB's write lock. Nothing of it may be visible; the next writer must
// get the lock (robust mutex) and complete the set.
Test(store_fault, killed_inside_write_txn_holding_the_lock) {
    char *dir = test_tmpdir("store-fault-txn");
    bool reported[NB] = {0};
    // A cache holding batches 0..19, written normally.
    {
        store_meta m = td_meta(32, 16, 16, false);
        store *s;
        cr_assert_eq(store_create(&s, dir, &m, NULL), 0);
        float *buf = malloc((size_t)B * 4 * NUMEL * sizeof(float));
        store_record recs[B];
        for (int k = 0; k < NB / 2; k++) {
            for (int i = 0; i < B; i++) recs[i] = td_record(buf + (size_t)i * 4 * NUMEL, k * B + i, NUMEL, false);
            cr_assert_eq(store_put_batch(s, recs, B, NULL), 0);
        }
        free(buf);
        store_close(&s);
    }
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        alarm(50);
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi dbi;
        if (mdb_env_create(&env) || mdb_env_set_mapsize(env, 256 << 20) || mdb_env_open(env, dir, 0, 0664) ||
            mdb_txn_begin(env, NULL, 0, &txn) || mdb_dbi_open(txn, NULL, 0, &dbi)) _exit(2);
        // Half of batch 25 (raw bytes: visible would mean a half batch).
        for (int i = 0; i < B / 2; i++) {
            uint8_t key[8] = {0};
            key[6] = (uint8_t)((25 * B + i) >> 8);
            key[7] = (uint8_t)(25 * B + i);
            MDB_val k = {8, key}, v = {16, "half-written!!!!"};
            if (mdb_put(txn, dbi, &k, &v, 0)) _exit(3);
        }
        char c = 'x';
        if (write(fds[1], &c, 1) != 1) _exit(4);
        pause();   // holding the write lock and a dirty txn until killed
        _exit(5);
    }
    close(fds[1]);
    char c;
    cr_assert_eq(read(fds[0], &c, 1), 1, "raw writer failed before its txn");
    close(fds[0]);
    kill(pid, SIGKILL);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFSIGNALED(st));
    memset(reported, 0, sizeof reported);
    for (int k = 0; k < NB / 2; k++) reported[k] = true;
    cr_assert_eq(check_cache(dir, reported, "after mid-txn kill"), NB / 2);
    run_writer(dir, 10, false, -1, 0, reported);   // must get the dead owner's lock
    cr_assert_eq(check_cache(dir, reported, "after resume"), NB);
    rm_rf(dir);
    free(dir);
}
