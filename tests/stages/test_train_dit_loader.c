// test_train_dit_loader.c: store/loader.h, the prefetching batch loader of
// train --model dit: every record once per epoch over the ranks (and each
// rank's share disjoint), epochs shuffled differently, a resumed loader
// (start_step) delivers the same batches, flips follow the draw, contents
// match the cache, and a cache that a live `encode` (another process) is
// still writing is read consistently.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "core/error.h"
#include "dist/dist.h"
#include "store/loader.h"
#include "tests/stages/dit_fixture.h"
#include "tests/util.h"

static void order_fn(int64_t *order, int64_t n, uint64_t seed, int64_t epoch) {
    dist_epoch_order(order, n, seed, epoch);
}

static store *open_cache(const char *dir) {
    store *s = NULL;
    cr_assert_eq(store_open(&s, dir, NULL, NULL, NULL), 0, "%s", vel_error_detail());
    return s;
}

// mu of a delivered item equals the fixture's value (flipped when asked).
static int item_ok(const loader_batch *b, int i, int classes, int C, int S) {
    uint64_t idx = b->idx[i];
    if (b->labels[i] != (int32_t)(idx % (uint64_t)classes)) return 0;
    for (int c = 0; c < C; c++)
        for (int h = 0; h < S; h++)
            for (int w = 0; w < S; w++) {
                int wsrc = b->flip[i] ? S - 1 - w : w;
                float want = dfx_mu(idx, classes, c, h, wsrc, S);
                if (b->mu[(((size_t)i * C + c) * S + h) * S + w] != want) return 0;
            }
    return 1;
}

Test(loader, every_index_once_per_epoch_per_rank_and_epochs_differ, .timeout = 60) {
    char *dir = test_tmpdir("loader_epoch");
    char p[1024];
    snprintf(p, sizeof p, "%s/cache", dir);
    const int N = 50, K = 3, C = 2, S = 4, G = 12, W = 3;   // 50 / 12: 4 steps, tail of 2 dropped
    cr_assert_eq(dfx_make(p, "t", N, K, C, S, 1, 0), 0);
    store *s = open_cache(p);
    uint64_t *idx = NULL;
    size_t n = 0;
    cr_assert_eq(store_list_indices(s, &idx, &n), 0);
    cr_assert_eq(n, (size_t)N);
    // Each rank its own loader over 3 epochs; count what every epoch delivered.
    int seen[3][50];
    memset(seen, 0, sizeof seen);
    uint64_t first_batch[3][12];
    int flips = 0, items = 0;
    for (int r = 0; r < W; r++) {
        loader *L = NULL;
        loader_opts o = {.global_batch = G, .rank = r, .world = W, .seed = 5, .flip = 1, .order = order_fn,
                         .depth = 2};
        cr_assert_eq(loader_create(&L, s, idx, (int64_t)n, &o), 0);
        cr_assert_eq(loader_steps_per_epoch(L), 4);
        for (int64_t st = 0; st < 12; st++) {
            const loader_batch *b = NULL;
            cr_assert_eq(loader_next(L, &b), 0);
            cr_assert_eq(b->step, st);
            cr_assert_eq(b->epoch, st / 4);
            cr_assert_eq(b->B, G / W);
            cr_assert_eq(b->pos0, (uint64_t)(st * G + r * (G / W)));
            for (int i = 0; i < b->B; i++) {
                seen[st / 4][b->idx[i]]++;
                cr_assert(item_ok(b, i, K, C, S), "step %lld item %d (index %llu) has wrong contents",
                          (long long)st, i, (unsigned long long)b->idx[i]);
                flips += b->flip[i];
                items++;
                if (st % 4 == 0) first_batch[st / 4][r * (G / W) + i] = b->idx[i];
            }
        }
        loader_destroy(&L);
    }
    for (int e = 0; e < 3; e++) {
        int once = 0, never = 0;
        for (int i = 0; i < N; i++) {
            cr_assert_leq(seen[e][i], 1, "epoch %d: index %d delivered %d times", e, i, seen[e][i]);
            once += seen[e][i] == 1;
            never += seen[e][i] == 0;
        }
        cr_expect_eq(once, 48, "epoch %d: %d indices delivered", e, once);
        cr_expect_eq(never, 2);
    }
    cr_expect(memcmp(first_batch[0], first_batch[1], sizeof first_batch[0]) != 0, "epochs 0 and 1 same order");
    cr_expect(memcmp(first_batch[1], first_batch[2], sizeof first_batch[0]) != 0, "epochs 1 and 2 same order");
    cr_expect(flips > items / 4 && flips < 3 * items / 4, "%d flips of %d items", flips, items);
    free(idx);
    store_close(&s);
    rm_rf(dir);
    free(dir);
}

Test(loader, start_step_resumes_the_same_batches, .timeout = 60) {
    char *dir = test_tmpdir("loader_resume");
    char p[1024];
    snprintf(p, sizeof p, "%s/cache", dir);
    cr_assert_eq(dfx_make(p, "t", 40, 4, 2, 4, 0, 0), 0);
    store *s = open_cache(p);
    uint64_t *idx = NULL;
    size_t n = 0;
    cr_assert_eq(store_list_indices(s, &idx, &n), 0);
    loader_opts o = {.global_batch = 8, .world = 1, .seed = 9, .order = order_fn};
    loader *L = NULL;
    uint64_t a[20][8];
    cr_assert_eq(loader_create(&L, s, idx, (int64_t)n, &o), 0);
    for (int st = 0; st < 20; st++) {
        const loader_batch *b;
        cr_assert_eq(loader_next(L, &b), 0);
        memcpy(a[st], b->idx, sizeof a[st]);
    }
    loader_destroy(&L);
    o.start_step = 13;
    cr_assert_eq(loader_create(&L, s, idx, (int64_t)n, &o), 0);
    for (int st = 13; st < 20; st++) {
        const loader_batch *b;
        cr_assert_eq(loader_next(L, &b), 0);
        cr_assert_eq(b->step, st);
        cr_expect_eq(memcmp(a[st], b->idx, sizeof a[st]), 0, "step %d differs after a restart", st);
    }
    loader_stats ls;
    loader_get_stats(L, &ls);
    cr_expect_eq(ls.batches, 7);
    cr_expect_geq(ls.latents, 7 * 8);
    loader_destroy(&L);
    // Bad options are refused.
    o.start_step = 0;
    o.global_batch = 7, o.world = 2;
    cr_expect_eq(loader_create(&L, s, idx, (int64_t)n, &o), VEL_EINVAL);
    o.global_batch = 80, o.world = 1;
    cr_expect_eq(loader_create(&L, s, idx, (int64_t)n, &o), VEL_EINVAL);
    o.global_batch = 8, o.flip = 1;
    cr_expect_eq(loader_create(&L, s, idx, (int64_t)n, &o), STORE_ENOFLIP);
    cr_expect_null(L);
    // A read error in the loader's thread reaches the caller with its detail.
    uint64_t bad[41];
    memcpy(bad, idx, sizeof(uint64_t) * 40);
    bad[40] = 999;
    o.global_batch = 41, o.flip = 0;
    cr_assert_eq(loader_create(&L, s, bad, 41, &o), 0);
    const loader_batch *b = NULL;
    int e = loader_next(L, &b);
    cr_expect_eq(e, STORE_ENOKEY, "got %d", e);
    cr_expect_null(b);
    cr_expect_not_null(strstr(vel_error_detail(), "999"), "detail: '%s'", vel_error_detail());
    cr_expect_eq(loader_next(L, &b), STORE_ENOKEY, "a finished loader must keep failing");
    loader_destroy(&L);
    free(idx);
    store_close(&s);
    rm_rf(dir);
    free(dir);
}

// A writer process keeps adding records (as a live encode does) while the
// loader reads the records listed at open: every batch has the right
// contents, whatever the writer is doing.
Test(loader, reads_a_cache_being_written_consistently, .timeout = 90) {
    char *dir = test_tmpdir("loader_live");
    char p[1024];
    snprintf(p, sizeof p, "%s/cache", dir);
    const int K = 5, C = 4, S = 8;
    store_meta m;
    cr_assert_eq(store_meta_init(&m, "live", C, S, S, 0, "synthetic", 100000, "test"), 0);
    {   // first 64 records and stats, then close before forking (LMDB rule)
        store *w = NULL;
        cr_assert_eq(store_create(&w, p, &m, NULL), 0);
        cr_assert_eq(dfx_put(w, 0, 64, K, C, S, 0), 0);
        float mean[4], sd[4];
        cr_assert_eq(store_compute_stats(w, mean, sd, 64, 0), 0);
        cr_assert_eq(store_set_stats(w, mean, sd), 0);
        store_close(&w);
    }
    int go[2];
    cr_assert_eq(pipe(go), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {   // the live encoder
        close(go[0]);
        store *w = NULL;
        if (store_create(&w, p, &m, NULL)) _exit(3);
        if (write(go[1], "x", 1) != 1) _exit(4);
        for (uint64_t i = 64; i < 1200; i += 16)
            if (dfx_put(w, i, i + 16, K, C, S, 0)) _exit(5);
        store_close(&w);
        _exit(0);
    }
    close(go[1]);
    char c;
    cr_assert_eq(read(go[0], &c, 1), 1, "writer did not start");
    close(go[0]);
    store *s = open_cache(p);
    uint64_t *idx = NULL;
    size_t n = 0;
    cr_assert_eq(store_list_indices(s, &idx, &n), 0);
    cr_assert_geq(n, 64);
    loader_opts o = {.global_batch = 16, .world = 1, .seed = 1, .order = order_fn};
    loader *L = NULL;
    cr_assert_eq(loader_create(&L, s, idx, (int64_t)n, &o), 0);
    int batches = 0;
    for (int st = 0; st < 200; st++) {
        const loader_batch *b;
        cr_assert_eq(loader_next(L, &b), 0, "read failed while the writer runs");
        for (int i = 0; i < b->B; i++)
            cr_assert(item_ok(b, i, K, C, S), "index %llu read inconsistently", (unsigned long long)b->idx[i]);
        batches++;
    }
    loader_destroy(&L);
    int status = 0;
    waitpid(pid, &status, 0);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer failed (status %d)", status);
    uint64_t count = 0;
    store_close(&s);
    s = open_cache(p);
    cr_assert_eq(store_count(s, &count), 0);
    cr_expect_eq(count, 1200, "writer wrote %llu", (unsigned long long)count);
    cr_expect_eq(batches, 200);
    free(idx);
    store_close(&s);
    rm_rf(dir);
    free(dir);
}
