// batcher.c: see batcher.h.
#include "data/batcher.h"

#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "core/philox.h"

int data_batcher_init(data_batcher *b, int64_t n) {
    memset(b, 0, sizeof *b);
    if (n < 1) return VEL_EINVAL;
    b->n = n;
    b->epoch = -1;
    b->perm = malloc(sizeof(int64_t) * (size_t)n);
    b->u = malloc(sizeof(float) * (size_t)n);
    if (!b->perm || !b->u) { data_batcher_free(b); return VEL_ENOMEM; }
    return 0;
}

void data_batcher_free(data_batcher *b) {
    if (!b) return;
    free(b->perm);
    free(b->u);
    memset(b, 0, sizeof *b);
}

void data_batcher_indices(data_batcher *b, uint64_t seed, int64_t step, int B, int64_t *idx) {
    for (int k = 0; k < B; k++) {
        int64_t g = step * B + k, e = g / b->n, pos = g % b->n;
        if (e != b->epoch) {
            for (int64_t i = 0; i < b->n; i++) b->perm[i] = i;
            philox_uniform(b->u, b->n, seed, DATA_BATCHER_STREAM, (uint64_t)e * (uint64_t)b->n);
            for (int64_t i = b->n - 1; i > 0; i--) {
                int64_t j = (int64_t)(b->u[i] * (float)(i + 1));
                if (j > i) j = i;   // u rounds up to 1.0f for large i
                int64_t t = b->perm[i]; b->perm[i] = b->perm[j]; b->perm[j] = t;
            }
            b->epoch = e;
        }
        idx[k] = b->perm[pos];
    }
}
