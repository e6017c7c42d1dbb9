// philox.h: the Philox4x32-10 counter-based RNG (Salmon et al. 2011, the
// Random123 constants) and the exact rules that turn its output into
// uniforms and normals, so every draw depends only on (seed, stream, index)
// and a CUDA kernel can reproduce it.
//
// Not here: any hidden state. A caller that wants "the next numbers" keeps an
// offset (e.g. in its checkpoint) and passes it in.
//
// The contract (what a CUDA port must do identically):
//   key     = (seed & 0xffffffff, seed >> 32)
//   counter = (block & 0xffffffff, block >> 32, stream, 0)
//   philox4x32_10(counter, key) -> 4 u32 x[0..3]; element index i of a fill
//   uses block = i / 4 and lane = i % 4 (i counts from the fill's offset).
//   uniform (in [0, 1)):   u = (x[lane] >> 8) * 2^-24        (exact in float)
//   normal  (Box-Muller on the pairs (x0,x1) and (x2,x3) of the block):
//     u1 = ((x0 >> 8) + 1) * 2^-24   in (0, 1], so log(u1) is finite
//     u2 =  (x1 >> 8)      * 2^-24   in [0, 1)
//     r = sqrt(-2 ln u1), th = 2 pi u2, all in double precision;
//     lane 0 = (float)(r cos th), lane 1 = (float)(r sin th);
//     lanes 2, 3 the same from (x2, x3).
// The u32 stream and the uniforms are bit-exact by construction; the normals
// go through double-precision log/cos/sin, rounded once to float, so a port
// that also computes them in double agrees except for rare last-bit ties.
#ifndef CORE_PHILOX_H
#define CORE_PHILOX_H

#include <stdint.h>

// One Philox4x32-10 block: ctr (4 words) and key (2 words) -> out (4 words).
void philox4x32_10(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2]);

// The 4 raw words of block `block` for (seed, stream).
void philox_block(uint32_t out[4], uint64_t seed, uint32_t stream, uint64_t block);

// Fill out[0..n) with draws number offset .. offset+n-1 of (seed, stream).
// OpenMP-parallel; the result does not depend on the thread count.
void philox_uniform(float *out, int64_t n, uint64_t seed, uint32_t stream, uint64_t offset);
void philox_normal(float *out, int64_t n, uint64_t seed, uint32_t stream, uint64_t offset);

#endif
