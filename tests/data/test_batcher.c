// test_batcher.c: data/batcher.h. Each epoch's n consecutive samples are a
// permutation of 0..n-1; the indices of step s depend only on (seed, s)
// (a fresh batcher asked for step s directly, as after --resume, agrees
// with one that walked there); another seed gives another order; bad sizes
// are refused.
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "data/batcher.h"

Test(batcher, epochs_are_permutations_and_resume_agrees) {
    enum { N = 10, B = 4, STEPS = 15 };   // 60 samples: 6 epochs, batches straddle epochs
    data_batcher a, b;
    cr_assert_eq(data_batcher_init(&a, N), 0);
    int64_t all[STEPS * B];
    for (int s = 0; s < STEPS; s++) data_batcher_indices(&a, 42, s, B, all + s * B);
    for (int e = 0; e < STEPS * B / N; e++) {
        int hit[N] = {0};
        for (int k = 0; k < N; k++) {
            int64_t v = all[e * N + k];
            cr_assert(v >= 0 && v < N, "index %lld out of range", (long long)v);
            hit[v]++;
        }
        for (int k = 0; k < N; k++) cr_assert_eq(hit[k], 1, "epoch %d: %d drawn %d times", e, k, hit[k]);
    }
    for (int s = STEPS - 1; s >= 0; s -= 4) {   // fresh batchers, out of order
        int64_t idx[B];
        cr_assert_eq(data_batcher_init(&b, N), 0);
        data_batcher_indices(&b, 42, s, B, idx);
        cr_assert_eq(memcmp(idx, all + s * B, sizeof idx), 0, "step %d differs after a fresh start", s);
        data_batcher_free(&b);
    }
    int64_t other[N];
    cr_assert_eq(data_batcher_init(&b, N), 0);
    data_batcher_indices(&b, 43, 0, N, other);
    cr_assert_neq(memcmp(other, all, sizeof other), 0, "seed 43 gave seed 42's order");
    data_batcher_free(&b);
    data_batcher_free(&a);
    data_batcher_free(&a);   // twice: harmless
    cr_assert_eq(data_batcher_init(&b, 0), VEL_EINVAL);
    data_batcher_free(NULL);
}
