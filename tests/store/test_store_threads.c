// Threads in one process (the train stage may read from a loader thread):
// the environment is opened with MDB_NOTLS, so several read transactions may
// be open at once and a transaction may be begun in one thread and used and
// ended in another. Each thread checks every record it reads.
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>

#include "store/store.h"
#include "tests/store/store_testdata.h"
#include "tests/util.h"

#define N 300
#define NUMEL (4 * 4 * 4)

typedef struct {
    store *s;
    store_txn *t;      // begun by the main thread when non-NULL
    uint64_t seed;
    int bad;
} job;

static void *reader(void *arg) {
    job *j = arg;
    store_txn *t = j->t;
    if (!t && store_txn_begin(j->s, &t)) { j->bad = 1; return NULL; }
    float mu[16 * NUMEL], sg[16 * NUMEL];
    int32_t lab[16];
    for (int rep = 0; rep < 200 && !j->bad; rep++) {
        uint64_t idx[16];
        uint8_t flip[16];
        for (int b = 0; b < 16; b++) {
            j->seed = j->seed * 6364136223846793005ull + 1442695040888963407ull;
            idx[b] = (j->seed >> 33) % N;
            flip[b] = (j->seed >> 7) & 1;
        }
        if (store_txn_read_batch(t, mu, sg, lab, idx, flip, 16)) { j->bad = 2; break; }
        for (int b = 0; b < 16; b++)
            if (lab[b] != td_label(idx[b]) || td_check_bytes(mu + b * NUMEL, idx[b], flip[b] ? 2 : 0, NUMEL) ||
                td_check_bytes(sg + b * NUMEL, idx[b], flip[b] ? 3 : 1, NUMEL))
                j->bad = 3;
    }
    store_txn_end(&t);   // possibly a txn another thread began (MDB_NOTLS)
    return NULL;
}

Test(store_threads, concurrent_read_txns_and_handoff) {
    char *dir = test_tmpdir("store-threads");
    store_meta m = td_meta(4, 4, 4, true);
    store *s;
    cr_assert_eq(store_create(&s, dir, &m, NULL), 0, "%s", vel_error_detail());
    float buf[4 * NUMEL];
    for (uint64_t i = 0; i < N; i++) {
        store_record r = td_record(buf, i, NUMEL, true);
        cr_assert_eq(store_put_batch(s, &r, 1, NULL), 0);
    }
    job jobs[4];
    pthread_t th[4];
    for (int k = 0; k < 4; k++) {
        jobs[k] = (job){s, NULL, 1000 + k, 0};
        if (k >= 2) cr_assert_eq(store_txn_begin(s, &jobs[k].t), 0);   // handed to the thread
        cr_assert_eq(pthread_create(&th[k], NULL, reader, &jobs[k]), 0);
    }
    for (int k = 0; k < 4; k++) {
        pthread_join(th[k], NULL);
        cr_assert_eq(jobs[k].bad, 0, "thread %d failed (%d): %s", k, jobs[k].bad, vel_error_detail());
    }
    store_close(&s);   // CHECKs that every txn was ended
    rm_rf(dir);
    free(dir);
}
