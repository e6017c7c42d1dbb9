// Tests for nn/cuda/block_reduce.h without a GPU: one block of CUDA threads
// emulated by one pthread each. BLK_SYNC() is a barrier over the block;
// BLK_SHFL_XOR(v, o) is an exchange through a shared array between two
// barriers (every thread of the attention kernels' reductions takes part in
// every shuffle, as the full-mask __shfl_xor_sync there requires). The check
// is the contract the attention forward relies on: every thread of the block,
// not only warp 0, holds the block's max and sum.
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>

enum { MAX_THREADS = 256 };

static pthread_barrier_t g_bar;
static float g_xchg[MAX_THREADS];
static _Thread_local int t_tid;

static float shfl_xor(float v, int o) {
    g_xchg[t_tid] = v;
    pthread_barrier_wait(&g_bar);
    float r = g_xchg[t_tid ^ o];
    pthread_barrier_wait(&g_bar);
    return r;
}

#define BLK_TID t_tid
#define BLK_SYNC() pthread_barrier_wait(&g_bar)
#define BLK_SHFL_XOR(v, o) shfl_xor((v), (o))
#include "nn/cuda/block_reduce.h"

typedef struct {
    int tid, nt;
    float in_max, in_sum;     // this thread's inputs
    float out_max, out_sum;   // what it got back
} thread_job;

static float g_sh[32];

// As in the attention forward: a max, then a sum on the same shared array.
static void *run_thread(void *arg) {
    thread_job *j = arg;
    t_tid = j->tid;
    j->out_max = blk_max(j->in_max, g_sh, j->nt);
    j->out_sum = blk_sum(j->in_sum, g_sh, j->nt);
    return NULL;
}

static void run_block(thread_job *jobs, int nt) {
    pthread_t th[MAX_THREADS];
    cr_assert_eq(pthread_barrier_init(&g_bar, NULL, (unsigned)nt), 0);
    for (int i = 0; i < nt; i++) {
        jobs[i].tid = i;
        jobs[i].nt = nt;
        cr_assert_eq(pthread_create(&th[i], NULL, run_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < nt; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&g_bar);
}

// Integer-valued inputs: every partial sum is exact in float, so the expected
// sum is exact whatever the order.
static void check_block(int nt, int argmax) {
    thread_job jobs[MAX_THREADS];
    float want_sum = 0.0f;
    for (int i = 0; i < nt; i++) {
        jobs[i].in_max = (float)(i % 7);
        jobs[i].in_sum = (float)(i + 1);
        want_sum += jobs[i].in_sum;
    }
    jobs[argmax].in_max = 50.0f;
    run_block(jobs, nt);
    int wrong = 0;
    for (int i = 0; i < nt; i++) {
        if (jobs[i].out_max != 50.0f || jobs[i].out_sum != want_sum) {
            if (wrong++ < 4)
                cr_log_error("nt %d thread %d (warp %d): max %g (want 50), sum %g (want %g)", nt,
                             i, i / 32, jobs[i].out_max, jobs[i].out_sum, want_sum);
        }
    }
    cr_expect_eq(wrong, 0, "nt %d: %d of %d threads got a wrong block result", nt, wrong, nt);
}

Test(block_reduce, every_thread_of_128_gets_the_result) { check_block(128, 100); }
Test(block_reduce, every_thread_of_256_gets_the_result) { check_block(256, 7); }
Test(block_reduce, one_warp) { check_block(32, 31); }

// Threads that own no key (T < block size) enter the max with -inf and the
// sum with 0, as the attention forward's do.
Test(block_reduce, idle_threads_enter_identities) {
    thread_job jobs[128];
    for (int i = 0; i < 128; i++) {
        jobs[i].in_max = i < 5 ? (float)i - 10.0f : -INFINITY;
        jobs[i].in_sum = i < 5 ? 1.0f : 0.0f;
    }
    run_block(jobs, 128);
    for (int i = 0; i < 128; i++) {
        cr_expect_eq(jobs[i].out_max, -6.0f, "thread %d", i);
        cr_expect_eq(jobs[i].out_sum, 5.0f, "thread %d", i);
    }
}
