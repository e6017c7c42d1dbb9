// philox.c: Philox4x32-10 and its uniform / normal fills (contract in philox.h).
#include "core/philox.h"

#include <math.h>

// Random123's constants: round multipliers and the Weyl key increments
// (golden ratio and sqrt(3)-1 in 0.32 fixed point).
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo) {
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

void philox4x32_10(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        // The key is bumped between rounds, not before the first one.
        if (r > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint32_t hi0, lo0, hi1, lo1;
        mulhilo(PHILOX_M0, c0, &hi0, &lo0);
        mulhilo(PHILOX_M1, c2, &hi1, &lo1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

void philox_block(uint32_t out[4], uint64_t seed, uint32_t stream, uint64_t block) {
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    const uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), stream, 0};
    philox4x32_10(out, ctr, key);
}

static const double TWO_M24 = 1.0 / 16777216.0;

static inline void block_uniform(float u[4], uint64_t seed, uint32_t stream, uint64_t block) {
    uint32_t x[4];
    philox_block(x, seed, stream, block);
    // 24 bits fit a float mantissa exactly, so the float is exact.
    for (int j = 0; j < 4; j++) u[j] = (float)((x[j] >> 8) * TWO_M24);
}

static inline void block_normal(float z[4], uint64_t seed, uint32_t stream, uint64_t block) {
    uint32_t x[4];
    philox_block(x, seed, stream, block);
    for (int j = 0; j < 4; j += 2) {
        double u1 = ((x[j] >> 8) + 1) * TWO_M24;   // (0, 1]: no log(0)
        double u2 = (x[j + 1] >> 8) * TWO_M24;
        double r = sqrt(-2.0 * log(u1));
        double th = 2.0 * M_PI * u2;
        z[j] = (float)(r * cos(th));
        z[j + 1] = (float)(r * sin(th));
    }
}

// Element i of the fill is draw offset+i: block (offset+i)/4, lane (offset+i)%4.
// Each block is computed independently, so threads may split blocks freely.
#define PHILOX_FILL(NAME, BLOCKFN)                                              \
    void NAME(float *out, int64_t n, uint64_t seed, uint32_t stream, uint64_t offset) { \
        if (n <= 0) return;                                                     \
        uint64_t first = offset / 4, last = (offset + (uint64_t)n - 1) / 4;     \
        int64_t nblocks = (int64_t)(last - first + 1);                          \
        _Pragma("omp parallel for schedule(static) if (nblocks > 4096)")        \
        for (int64_t b = 0; b < nblocks; b++) {                                 \
            float v[4];                                                         \
            uint64_t blk = first + (uint64_t)b;                                 \
            BLOCKFN(v, seed, stream, blk);                                      \
            for (int j = 0; j < 4; j++) {                                       \
                uint64_t idx = blk * 4 + (uint64_t)j;                           \
                if (idx < offset || idx - offset >= (uint64_t)n) continue;      \
                out[idx - offset] = v[j];                                       \
            }                                                                   \
        }                                                                       \
    }

PHILOX_FILL(philox_uniform, block_uniform)
PHILOX_FILL(philox_normal, block_normal)
