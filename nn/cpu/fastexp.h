// fastexp.h: a vectorisable e^x for the softmax inner loops of attention and
// the SiLU / GELU / SwiGLU activations (private to nn/cpu), and CPU_CLONES. glibc's expf is a scalar call here (its SIMD variants
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

// 1 / (1 + e^-x) for any float x (the exponent is clamped to [-87, 88], so
// the result is ~6e-39 instead of 0 below x = -88; relative error as
// fast_expf's plus one division).
static inline float fast_sigmoidf(float x) {
    float e = -x < 88.0f ? -x : 88.0f;
    return 1.0f / (1.0f + fast_expf(e));
}

// tanh(u) = 1 - 2 / (e^{2u} + 1), 2u clamped to [-87, 88] (|tanh| = 1 in
// float beyond |u| ~ 9). Absolute error a few 1e-8 near 0.
static inline float fast_tanhf(float u) {
    float a = 2.0f * u;
    a = a < 88.0f ? a : 88.0f;
    return 1.0f - 2.0f / (fast_expf(a) + 1.0f);
}

// Runtime CPU dispatch for the vectorised inner loops: gcc builds each
// function marked CPU_CLONES three times (AVX-512, AVX2+FMA, baseline
// x86-64) and picks one at load time (an ifunc), so one binary is fast on
// any x86-64. The loops are plain C (no FP contraction under -std=c11), so
// every clone computes the same bits. Mark leaf functions only: OpenMP
// region bodies are outlined into functions that do not inherit the clones.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CPU_CLONES
#endif

#endif
