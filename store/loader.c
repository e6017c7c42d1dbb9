// loader.c: prefetching batch loader over the latent cache (loader.h).
// A ring of `depth` slots; the thread fills slot (step mod depth) for steps
// in order, the consumer takes them in order. One mutex, two condition
// variables (slot filled / slot freed).
#include "store/loader.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "core/error.h"
#include "core/philox.h"

struct loader {
    store *s;
    loader_opts o;
    int64_t n, spe, local, numel;
    uint64_t *indices;
    int64_t *order, order_epoch;   // permutation of the epoch being read
    loader_batch *slots;
    int depth;
    int64_t next_fill, next_take;  // step numbers
    int holding;                   // the consumer still reads slot of step next_take-1
    int err;                       // first read error (thread stops)
    char detail[512];              // its detail (thread-local in the thread)
    int stop;
    pthread_mutex_t mu;
    pthread_cond_t filled, freed;
    pthread_t thread;
    int started;
    loader_stats st;
};

static void fill(loader *L, loader_batch *b, int64_t step) {
    int64_t epoch = step / L->spe, within = step % L->spe;
    if (epoch != L->order_epoch) {
        L->o.order(L->order, L->n, L->o.seed, epoch);
        L->order_epoch = epoch;
    }
    b->step = step;
    b->epoch = epoch;
    b->B = (int)L->local;
    b->pos0 = (uint64_t)(step * L->o.global_batch + L->o.rank * L->local);
    int64_t j0 = within * L->o.global_batch + L->o.rank * L->local;
    for (int64_t i = 0; i < L->local; i++) b->idx[i] = L->indices[L->order[j0 + i]];
    if (L->o.flip) {
        float u[64];
        for (int64_t i0 = 0; i0 < L->local; i0 += 64) {
            int64_t k = L->local - i0 < 64 ? L->local - i0 : 64;
            philox_uniform(u, k, L->o.seed, LOADER_STREAM_FLIP, b->pos0 + (uint64_t)i0);
            for (int64_t i = 0; i < k; i++) b->flip[i0 + i] = u[i] < 0.5f;
        }
    } else {
        memset(b->flip, 0, (size_t)L->local);
    }
}

static void *run(void *arg) {
    loader *L = arg;
    pthread_mutex_lock(&L->mu);
    for (;;) {
        while (!L->stop && L->next_fill - (L->next_take - L->holding) >= L->depth)
            pthread_cond_wait(&L->freed, &L->mu);
        if (L->stop) break;
        int64_t step = L->next_fill;
        loader_batch *b = &L->slots[step % L->depth];
        pthread_mutex_unlock(&L->mu);
        // The slot is ours: the consumer only reads slots below next_fill.
        fill(L, b, step);
        double t0 = vel_now();
        int e = store_read_batch(L->s, b->mu, b->sigma, b->labels, b->idx, b->flip, (size_t)b->B);
        double dt = vel_now() - t0;
        pthread_mutex_lock(&L->mu);
        L->st.read_s += dt;
        if (e) {
            L->err = e;
            snprintf(L->detail, sizeof L->detail, "%s", vel_error_detail());
            pthread_cond_broadcast(&L->filled);
            break;
        }
        L->st.latents += b->B;
        L->next_fill++;
        pthread_cond_broadcast(&L->filled);
    }
    pthread_mutex_unlock(&L->mu);
    return NULL;
}

int loader_create(loader **out, store *s, const uint64_t *indices, int64_t n, const loader_opts *o) {
    *out = NULL;
    if (!o->order || o->world < 1 || o->rank < 0 || o->rank >= o->world || o->global_batch < 1 ||
        o->global_batch % o->world || n < o->global_batch || o->start_step < 0 || o->depth < 0)
        return VEL_EINVAL;
    const store_meta *m = store_get_meta(s);
    if (o->flip && !m->has_flip) return STORE_ENOFLIP;
    loader *L = calloc(1, sizeof *L);
    if (!L) return VEL_ENOMEM;
    L->s = s;
    L->o = *o;
    L->n = n;
    L->spe = n / o->global_batch;
    L->local = o->global_batch / o->world;
    L->numel = store_meta_numel(m);
    L->depth = o->depth ? o->depth : 4;
    L->order_epoch = -1;
    L->next_fill = L->next_take = o->start_step;
    L->indices = malloc(sizeof(uint64_t) * (size_t)n);
    L->order = malloc(sizeof(int64_t) * (size_t)n);
    L->slots = calloc((size_t)L->depth, sizeof *L->slots);
    int ok = L->indices && L->order && L->slots;
    for (int i = 0; ok && i < L->depth; i++) {
        loader_batch *b = &L->slots[i];
        size_t f = (size_t)(L->local * L->numel);
        b->mu = malloc(sizeof(float) * f);
        b->sigma = malloc(sizeof(float) * f);
        b->labels = malloc(sizeof(int32_t) * (size_t)L->local);
        b->idx = malloc(sizeof(uint64_t) * (size_t)L->local);
        b->flip = malloc((size_t)L->local);
        ok = b->mu && b->sigma && b->labels && b->idx && b->flip;
    }
    if (!ok) { loader_destroy(&L); return VEL_ENOMEM; }
    memcpy(L->indices, indices, sizeof(uint64_t) * (size_t)n);
    pthread_mutex_init(&L->mu, NULL);
    pthread_cond_init(&L->filled, NULL);
    pthread_cond_init(&L->freed, NULL);
    L->started = 1;   // sync objects exist from here on (destroy uses them)
    if (pthread_create(&L->thread, NULL, run, L)) {
        L->started = 2;   // objects but no thread
        loader_destroy(&L);
        return VEL_ENOMEM;
    }
    *out = L;
    return 0;
}

int loader_next(loader *L, const loader_batch **out) {
    double t0 = vel_now();
    pthread_mutex_lock(&L->mu);
    // The slot handed out by the previous call is free once we come back.
    if (L->holding) {
        L->holding = 0;
        pthread_cond_broadcast(&L->freed);
    }
    while (L->next_fill <= L->next_take && !L->err) pthread_cond_wait(&L->filled, &L->mu);
    int e = 0;
    if (L->next_fill > L->next_take) {
        *out = &L->slots[L->next_take % L->depth];
        L->next_take++;
        L->holding = 1;
        L->st.batches++;
    } else {
        // Hand the reader thread's detail to the caller's thread.
        e = vel_fail(L->err, "%s", L->detail);
        *out = NULL;
    }
    L->st.wait_s += vel_now() - t0;
    pthread_mutex_unlock(&L->mu);
    return e;
}

void loader_get_stats(const loader *L, loader_stats *st) {
    pthread_mutex_lock((pthread_mutex_t *)&L->mu);
    *st = L->st;
    pthread_mutex_unlock((pthread_mutex_t *)&L->mu);
}

int64_t loader_steps_per_epoch(const loader *L) { return L->spe; }

void loader_destroy(loader **p) {
    if (!p || !*p) return;
    loader *L = *p;
    if (L->started) {
        pthread_mutex_lock(&L->mu);
        L->stop = 1;
        pthread_cond_broadcast(&L->freed);
        pthread_mutex_unlock(&L->mu);
        if (L->started == 1) pthread_join(L->thread, NULL);
        pthread_mutex_destroy(&L->mu);
        pthread_cond_destroy(&L->filled);
        pthread_cond_destroy(&L->freed);
    }
    for (int i = 0; L->slots && i < L->depth; i++) {
        loader_batch *b = &L->slots[i];
        free(b->mu); free(b->sigma); free(b->labels); free(b->idx); free(b->flip);
    }
    free(L->slots);
    free(L->indices);
    free(L->order);
    free(L);
    *p = NULL;
}
