// scratch.c: frees a thread's scratch buffers (scratch.h) when it exits,
// through a pthread key whose destructor runs at thread exit, while the
// thread's _Thread_local variables are still in place.
#include "nn/cpu/scratch.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

// The scratch_buf variables of nn/cpu (sgemm_avx512.c's two, attention.c's,
// gemm.c's): a thread never holds more than this many.
#define MAX_BUFS 8

typedef struct {
    scratch_buf *b[MAX_BUFS];
    int n;
} thread_bufs;

static _Thread_local thread_bufs mine;
static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int have_key;
static atomic_long live;   // scratch_live_buffers

static void release(void *p) {
    thread_bufs *t = p;
    for (int i = 0; i < t->n; i++) {
        if (t->b[i]->p) atomic_fetch_sub(&live, 1);
        free(t->b[i]->p);
        t->b[i]->p = NULL;
        t->b[i]->n = 0;
    }
    t->n = 0;
}

static void make_key(void) { have_key = pthread_key_create(&key, release) == 0; }

// Registers b for release at the calling thread's exit (once per thread
// and buffer).
static void track(scratch_buf *b) {
    pthread_once(&once, make_key);
    if (!have_key) return;   // no key: the buffers stay until process exit
    for (int i = 0; i < mine.n; i++)
        if (mine.b[i] == b) return;
    if (mine.n == MAX_BUFS) return;   // more buffers than MAX_BUFS: raise it
    mine.b[mine.n++] = b;
    pthread_setspecific(key, &mine);
}

float *scratch_grow(scratch_buf *b, size_t n, int huge) {
    if (b->n >= n) return b->p;
    if (b->p) atomic_fetch_sub(&live, 1);
    free(b->p);
    size_t bytes = n * sizeof(float);
    if (huge) {
        const size_t page = (size_t)2 << 20;
        bytes = (bytes + page - 1) & ~(page - 1);
        b->p = aligned_alloc(page, bytes);
        if (b->p) madvise(b->p, bytes, MADV_HUGEPAGE);
    } else {
        b->p = malloc(bytes);
    }
    b->n = b->p ? bytes / sizeof(float) : 0;
    if (b->p) {
        atomic_fetch_add(&live, 1);
        track(b);
    }
    return b->p;
}

long scratch_live_buffers(void) { return atomic_load(&live); }
