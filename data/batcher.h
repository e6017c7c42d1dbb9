// batcher.h: which dataset indices make up training step s's batch, as a
// pure function of (seed, s): sample g = s*B + k of the run sits at position
// g % n of epoch g / n's permutation, a Fisher-Yates shuffle driven by
// Philox uniforms (stream DATA_BATCHER_STREAM, offset epoch * n). A resumed
// run therefore draws exactly the batches the uninterrupted run would have.
// The permutation is rebuilt only when the epoch changes.
// Not here: reading the images (data/idx.h), augmentation (data/augment.h).
#ifndef DATA_BATCHER_H
#define DATA_BATCHER_H

#include <stdint.h>

#define DATA_BATCHER_STREAM 1

typedef struct {
    int64_t n;        // dataset size
    int64_t epoch;    // epoch of perm (-1: none yet)
    int64_t *perm;    // (n) owned
    float *u;         // (n) owned scratch
} data_batcher;

// 0, VEL_EINVAL (n < 1) or VEL_ENOMEM. Free with data_batcher_free.
int data_batcher_init(data_batcher *b, int64_t n);
void data_batcher_free(data_batcher *b);   // NULL-safe; leaves b zeroed
// idx (B): the dataset indices of step `step`'s batch.
void data_batcher_indices(data_batcher *b, uint64_t seed, int64_t step, int B, int64_t *idx);

#endif
