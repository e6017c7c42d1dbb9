// reduce.h (private to nn/cpu): a sum over n terms in double that gives the
// same bits for any OpenMP thread count: the index range is cut into a fixed
// number of chunks (independent of the thread count), each chunk is summed in
// order, and the chunk sums are added in order by one thread.
// Not a public API; used by the loss files.
#ifndef NN_CPU_REDUCE_H
#define NN_CPU_REDUCE_H

#include <stdint.h>

#define REDUCE_CHUNKS 64

// Sets double OUT to the sum of TERM (an expression of int64_t I) over
// I in [0, N).
#define FIXED_ORDER_SUM(OUT, N, I, TERM)                                     \
    do {                                                                     \
        double part_[REDUCE_CHUNKS];                                         \
        const int64_t n_ = (N);                                              \
        _Pragma("omp parallel for schedule(static) if (n_ >= 32768)")                         \
        for (int k_ = 0; k_ < REDUCE_CHUNKS; k_++) {                         \
            int64_t lo_ = n_ * k_ / REDUCE_CHUNKS;                           \
            int64_t hi_ = n_ * (k_ + 1) / REDUCE_CHUNKS;                     \
            double s_ = 0.0;                                                 \
            for (int64_t I = lo_; I < hi_; I++) s_ += (TERM);                \
            part_[k_] = s_;                                                  \
        }                                                                    \
        double t_ = 0.0;                                                     \
        for (int k_ = 0; k_ < REDUCE_CHUNKS; k_++) t_ += part_[k_];          \
        (OUT) = t_;                                                          \
    } while (0)

#endif
