// mt19937.h: the Mersenne Twister MT19937 with numpy's *legacy* RandomState
// conventions, so C code can replay a numpy stream draw for draw:
//   - RandomState(int seed) seeds with init_genrand(seed & 0xffffffff);
//   - random_sample() is the 53-bit double ((a>>5)*2^26 + (b>>6)) / 2^53;
//   - randn() is the polar Box-Muller method with one cached value (the
//     second normal of each pair is returned on the next call).
// Used for the toy mixture (SPEC section 2, RandomState(2)) and wherever a
// numpy reference must be matched exactly. Not a fast or parallel generator:
// training noise uses counter-based streams (core/philox.h).
#ifndef CORE_MT19937_H
#define CORE_MT19937_H

#include <stdint.h>

typedef struct {
    uint32_t mt[624];
    int mti;            // next index into mt; 624 means "regenerate"
    int has_gauss;      // a cached normal is waiting
    double gauss;
} mt19937;

void mt_seed(mt19937 *r, uint32_t seed);        // numpy RandomState(seed)
uint32_t mt_next_u32(mt19937 *r);               // genrand_int32
double mt_random_sample(mt19937 *r);            // [0, 1), 53 bits
double mt_randn(mt19937 *r);                    // numpy legacy gauss

#endif
