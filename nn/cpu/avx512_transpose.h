// avx512_transpose.h (private to nn/cpu): the 16 x 16 in-register float
// transpose shared by the AVX-512 kernels (attn_avx512.c's key panels,
// sgemm_avx512.c's packing). Include only where <immintrin.h> is available
// (x86-64 GCC/Clang); callers are avx512f-targeted functions.
#ifndef NN_CPU_AVX512_TRANSPOSE_H
#define NN_CPU_AVX512_TRANSPOSE_H

#include <immintrin.h>

// In-register transpose of 16 rows of 16 floats (unpack 32-bit, 64-bit,
// then two 128-bit lane shuffles).
__attribute__((target("avx512f"))) static inline __attribute__((always_inline)) void
tr16(__m512 r[16]) {
    __m512 t[16], u[16], v[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < 4; i++) {
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 2]);
        __m512d c = _mm512_castps_pd(t[4 * i + 1]), d = _mm512_castps_pd(t[4 * i + 3]);
        u[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
        u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
        u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
    }
#pragma GCC unroll 8
    for (int h = 0; h < 2; h++)
#pragma GCC unroll 8
        for (int i = 0; i < 4; i++) {
            v[8 * h + i] = _mm512_shuffle_f32x4(u[8 * h + i], u[8 * h + 4 + i], 0x88);
            v[8 * h + 4 + i] = _mm512_shuffle_f32x4(u[8 * h + i], u[8 * h + 4 + i], 0xdd);
        }
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(v[i], v[8 + i], 0x88);
        r[8 + i] = _mm512_shuffle_f32x4(v[i], v[8 + i], 0xdd);
    }
}

#endif
