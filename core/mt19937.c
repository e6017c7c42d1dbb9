// mt19937.c: see mt19937.h. The recurrences are those of Matsumoto and
// Nishimura's reference MT19937 (init_genrand, genrand_int32); the double
// and gauss conventions are numpy's legacy ones, written from their
// description in docs/FORMULAS.md section 2.
#include "core/mt19937.h"

#include <math.h>

enum { MT_N = 624, MT_M = 397 };
#define MT_UPPER 0x80000000u
#define MT_LOWER 0x7fffffffu
#define MT_MATRIX 0x9908b0dfu

void mt_seed(mt19937 *r, uint32_t seed) {
    r->mt[0] = seed;
    for (int i = 1; i < MT_N; i++)
        r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i;
    r->mti = MT_N;
    r->has_gauss = 0;
    r->gauss = 0.0;
}

static void mt_regenerate(mt19937 *r) {
    uint32_t *mt = r->mt;
    for (int k = 0; k < MT_N; k++) {
        uint32_t y = (mt[k] & MT_UPPER) | (mt[(k + 1) % MT_N] & MT_LOWER);
        mt[k] = mt[(k + MT_M) % MT_N] ^ (y >> 1) ^ ((y & 1u) ? MT_MATRIX : 0u);
    }
    r->mti = 0;
}

uint32_t mt_next_u32(mt19937 *r) {
    if (r->mti >= MT_N) mt_regenerate(r);
    uint32_t y = r->mt[r->mti++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

double mt_random_sample(mt19937 *r) {
    uint32_t a = mt_next_u32(r) >> 5, b = mt_next_u32(r) >> 6;
    return (a * 67108864.0 + b) / 9007199254740992.0;
}

double mt_randn(mt19937 *r) {
    if (r->has_gauss) {
        r->has_gauss = 0;
        return r->gauss;
    }
    double x1, x2, r2;
    do {
        x1 = 2.0 * mt_random_sample(r) - 1.0;
        x2 = 2.0 * mt_random_sample(r) - 1.0;
        r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1.0 || r2 == 0.0);
    double f = sqrt(-2.0 * log(r2) / r2);
    r->gauss = f * x1;     // numpy caches f*x1 and returns f*x2 first
    r->has_gauss = 1;
    return f * x2;
}
