// loader.h: the training loader over the latent cache. A prefetch thread
// reads the batches of the coming steps (store_read_batch) into a ring of
// slots while the step runs, so the step only waits when LMDB is slower than
// the step (loader_stats measures it).
//
// Which samples a step gets (deterministic, depends only on seed and step):
//   steps_per_epoch = n / global_batch (the tail is dropped: every rank steps
//   together); epoch e = step / steps_per_epoch uses order_e = the caller's
//   permutation function (e.g. dist_epoch_order) of 0..n-1 for (seed, e);
//   rank r's slice of step s is positions j = (s mod spe) * global_batch +
//   r * local + i, i < local = global_batch / world, and item i is
//   indices[order_e[j]] (indices: the cache's record indices, e.g. from
//   store_list_indices). With flip on, item i takes the horizontally flipped
//   variant when Philox uniform (seed, LOADER_STREAM_FLIP, global position
//   s * global_batch + r * local + i) < 0.5.
// A resumed run passes start_step and gets exactly the batches it would have.
//
// Threads: the loader's thread is the only user of the store while the
// loader exists (store_read_batch on its own read transactions); the caller
// must not use the store until loader_destroy.
// Not here: z = mu + sigma*eps and normalisation (the train stage does them).
#ifndef STORE_LOADER_H
#define STORE_LOADER_H

#include <stdint.h>

#include "store/store.h"

#define LOADER_STREAM_FLIP 21u   // Philox stream of the flip draws

// order[0..n) = a permutation of 0..n-1 for (seed, epoch).
typedef void (*loader_order_fn)(int64_t *order, int64_t n, uint64_t seed, int64_t epoch);

typedef struct {
    int64_t global_batch;  // samples per step over all ranks (multiple of world)
    int rank, world;
    uint64_t seed;
    int64_t start_step;    // first step to deliver
    int depth;             // slots read ahead (0: 4)
    int flip;              // 1: random horizontal flips (cache must have them)
    loader_order_fn order; // required
} loader_opts;

typedef struct {
    int64_t step, epoch;
    int B;                 // local batch
    uint64_t pos0;         // global position of item 0: step*global_batch + rank*B
    float *mu, *sigma;     // (B, C, H, W)
    int32_t *labels;       // (B)
    uint64_t *idx;         // (B) record indices
    uint8_t *flip;         // (B)
} loader_batch;

typedef struct {
    int64_t batches;       // delivered by loader_next
    double wait_s;         // time loader_next spent blocked (the step's stall)
    double read_s;         // time the thread spent in store_read_batch
    int64_t latents;       // items read by the thread
} loader_stats;

typedef struct loader loader;

// indices (n) is copied. Starts the thread. Returns 0, VEL_EINVAL (bad
// options: global_batch not a multiple of world, n < global_batch, rank out
// of range, no order function), STORE_ENOFLIP (flip asked, cache has none),
// or VEL_ENOMEM.
int loader_create(loader **out, store *s, const uint64_t *indices, int64_t n,
                  const loader_opts *o);
// The next step's batch (borrowed until the next call or destroy). Blocks
// until it is read. Returns 0 or the store error that reading it hit, with
// the reader's detail in this thread's vel_error_detail() (the loader is then
// finished: every later call returns the same error).
int loader_next(loader *L, const loader_batch **out);
void loader_get_stats(const loader *L, loader_stats *st);
int64_t loader_steps_per_epoch(const loader *L);
// Stops the thread and frees everything. NULL-safe.
void loader_destroy(loader **L);

#endif
