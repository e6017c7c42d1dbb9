// store_testdata.h: deterministic record contents for the store tests: every
// value is a function of (index, tensor, element), so any process can check
// any record it reads without sharing state with the writer.
// Header-only (static inline) because the Makefile builds each
// tests/**/test_*.c as its own binary with only tests/util.c beside it.
#ifndef TESTS_STORE_TESTDATA_H
#define TESTS_STORE_TESTDATA_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "store/store.h"

static inline float td_val(uint64_t index, int t, int64_t j) {
    uint64_t x = index * 0x9e3779b97f4a7c15ull ^ ((uint64_t)t << 58) ^
                 (uint64_t)j * 0xd1b54a32d192ed03ull;
    x ^= x >> 31; x *= 0xbf58476d1ce4e5b9ull; x ^= x >> 29; x *= 0x94d049bb133111ebull; x ^= x >> 32;
    float u = (float)((x >> 40) * (1.0 / 16777216.0));   // [0,1)
    // t = 0,2: means in [-1,1); t = 1,3: sigmas in [0.01, 1.01)
    return (t & 1) ? 0.01f + u : 2 * u - 1;
}

static inline int32_t td_label(uint64_t index) { return (int32_t)(index % 10); }

// buf holds 4*numel floats: mu, sigma, mu_flip, sigma_flip.
static inline store_record td_record(float *buf, uint64_t index, int64_t numel, bool flip) {
    for (int t = 0; t < 4; t++)
        for (int64_t j = 0; j < numel; j++) buf[t * numel + j] = td_val(index, t, j);
    store_record r = {index, td_label(index), buf, buf + numel, NULL, NULL};
    if (flip) { r.mu_flip = buf + 2 * numel; r.sigma_flip = buf + 3 * numel; }
    return r;
}

// 0 if the tensor t of a record (possibly unaligned bytes) matches.
static inline int td_check_bytes(const void *p, uint64_t index, int t, int64_t numel) {
    const unsigned char *b = p;
    for (int64_t j = 0; j < numel; j++) {
        float v, w = td_val(index, t, j);
        memcpy(&v, b + 4 * j, 4);
        if (memcmp(&v, &w, 4) != 0) return -1;
    }
    return 0;
}

static inline int td_check_view(const store_view *v, bool flip) {
    if (v->label != td_label(v->index)) return -1;
    if (td_check_bytes(v->mu, v->index, 0, v->numel) || td_check_bytes(v->sigma, v->index, 1, v->numel))
        return -1;
    if (flip && (!v->mu_flip || td_check_bytes(v->mu_flip, v->index, 2, v->numel) ||
                 td_check_bytes(v->sigma_flip, v->index, 3, v->numel)))
        return -1;
    return 0;
}

static inline store_meta td_meta(int64_t C, int64_t H, int64_t W, bool flip) {
    store_meta m;
    int rc = store_meta_init(&m, "sha256:tok-test", C, H, W, flip, "testset", 1000, "test-1");
    (void)rc;
    return m;
}

#endif
