// fastexp.h: a vectorisable e^x for the softmax inner loops of attention
// (private to nn/cpu). glibc's expf is a scalar call here (its SIMD variants
// need -ffast-math), and at head dim 64 one expf per score costs about as
// much as the two GEMM FLOPs that produce and consume it.
//
// Method (Cephes expf): x = n ln2 + r with |r| <= ln2/2 (ln2 split in two
// parts so n ln2 is exact), e^r by the Cephes polynomial, 2^n built in the
// exponent bits. tests/nn/test_attention.c measures the max relative error
// against double exp over [-87, 10]: 8.0e-8 measured, 3e-7 asserted.
// Inputs below -87 (and -inf) are clamped to -87 (e^-87 ~ 1.6e-38 instead
// of 0); callers only use it where that is harmless (a probability next to a
// row sum >= 1, or a factor on zeros). Not for x > 88.
//
// Written with unions and an unsigned compare rather than memcpy and a float
// ternary because that is what gcc -O2 vectorises inside `omp simd` loops.
#ifndef NN_CPU_FASTEXP_H
#define NN_CPU_FASTEXP_H

#include <stdint.h>

static inline float fast_expf(float x) {
    // clamp x >= -87 on the bit pattern: negative floats sort as unsigned
    // ints with larger magnitude above; positives are below 0x80000000.
    union { float f; uint32_t u; } c;
    c.f = x;
    c.u = c.u < 0xC2AE0000u ? c.u : 0xC2AE0000u;   // 0xC2AE0000 = -87.0f
    x = c.f;
    // n = round(x / ln2) with the 1.5*2^23 trick (no libm call)
    float fn = x * 1.44269504088896341f + 12582912.0f;
    fn -= 12582912.0f;
    float r = x - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int32_t i; float f; } s;
    s.i = ((int32_t)fn + 127) << 23;
    return p * s.f;
}

#endif
