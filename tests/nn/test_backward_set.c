// test_backward_set.c: the `_set` backward variants (linear, modulate, gated
// residual, SwiGLU, RoPE, RMS norm, attention, ReLU: input gradients written,
// not added) give the values of zeroing the buffer and calling the
// accumulating op (whose math tests/nn/test_{linear,modulate,swiglu,rope,
// norm,attention,activation}.c check against numpy and finite differences),
// whatever the buffer held before (NaN here), and still ACCUMULATE into the
// parameter-like gradients. Sizes cross the parallel threshold
// (nn/cpu/par.h) so the threaded loops run.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/activation.h"
#include "nn/attention.h"
#include "nn/cpu/attn_avx512.h"
#include "nn/linear.h"
#include "nn/modulate.h"
#include "nn/norm.h"
#include "nn/rope.h"
#include "nn/swiglu.h"
#include "tests/util.h"

enum { B = 4, T = 64, C = 128, LD = 6 * C, NX = B * T * C, HID = 160 };

// want: zero + accumulate; got: NaN + set. Equal as values (the sign of an
// exact zero may differ: 0 + (-0) is +0).
static void expect_same(const char *what, const float *got, const float *want, int64_t n) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += !(got[i] == want[i]);
    cr_expect_eq(bad, 0, "%s: %lld of %lld elements differ", what, (long long)bad, (long long)n);
}
static float *nan_buf(int64_t n) {
    float *p = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) p[i] = NAN;
    return p;
}
static float *normal_buf(int64_t n, uint64_t seed) {
    float *p = malloc(sizeof(float) * (size_t)n);
    fill_normal(p, n, seed, 1.0f);
    return p;
}

Test(backward_set, linear) {
    const int N = B * T, OC = 3 * C;
    float *x = normal_buf((int64_t)N * C, 1), *w = normal_buf((int64_t)OC * C, 2);
    float *g = normal_buf((int64_t)N * OC, 3), *want = calloc((size_t)N * C, 4), *got = nan_buf((int64_t)N * C);
    float *dw1 = calloc((size_t)OC * C, 4), *dw2 = calloc((size_t)OC * C, 4);
    float *db1 = normal_buf(OC, 4), *db2 = malloc(sizeof(float) * OC);
    memcpy(db2, db1, sizeof(float) * OC);
    linear_backward(want, dw1, db1, g, x, w, N, C, OC);
    linear_backward_set(got, dw2, db2, g, x, w, N, C, OC);
    expect_same("linear dinp", got, want, (int64_t)N * C);
    expect_same("linear dweight", dw2, dw1, (int64_t)OC * C);
    expect_same("linear dbias (accumulated onto nonzero)", db2, db1, OC);
    free(x); free(w); free(g); free(want); free(got); free(dw1); free(dw2); free(db1); free(db2);
}

Test(backward_set, modulate_and_gate) {
    float *x = normal_buf(NX, 1), *g = normal_buf(NX, 2), *ada = normal_buf(B * LD, 3);
    float *want = calloc(NX, 4), *got = nan_buf(NX), *want2 = calloc(NX, 4), *got2 = nan_buf(NX);
    float *d1 = normal_buf(B * LD, 4), *d2 = malloc(sizeof(float) * B * LD);
    memcpy(d2, d1, sizeof(float) * B * LD);
    modulate_backward(want, d1, d1 + C, g, x, ada + C, B, T, C, LD);
    modulate_backward_set(got, d2, d2 + C, g, x, ada + C, B, T, C, LD);
    expect_same("modulate dx", got, want, NX);
    expect_same("modulate dshift/dscale", d2, d1, B * LD);
    memset(want, 0, sizeof(float) * NX);
    for (int i = 0; i < NX; i++) got[i] = NAN;
    gate_residual_backward(want, want2, d1 + 2 * C, g, x, ada + 2 * C, B, T, C, LD);
    gate_residual_backward_set(got, got2, d2 + 2 * C, g, x, ada + 2 * C, B, T, C, LD);
    expect_same("gate dx", got, want, NX);
    expect_same("gate dy", got2, want2, NX);
    expect_same("gate dgate", d2, d1, B * LD);
    free(x); free(g); free(ada); free(want); free(got); free(want2); free(got2); free(d1); free(d2);
}

Test(backward_set, swiglu) {
    const int N = B * T;
    float *x12 = normal_buf((int64_t)N * 2 * HID, 1), *g = normal_buf((int64_t)N * HID, 2);
    float *want = calloc((size_t)N * 2 * HID, 4), *got = nan_buf((int64_t)N * 2 * HID);
    swiglu_backward(want, g, x12, N, HID);
    swiglu_backward_set(got, g, x12, N, HID);
    expect_same("swiglu dx12", got, want, (int64_t)N * 2 * HID);
    free(x12); free(g); free(want); free(got);
}

Test(backward_set, rope_strided_into_plain) {
    enum { S = 8, NH = 4, HD = 32, D = NH * HD };   // T = S*S tokens, q slot of packed qkv
    float *cs = malloc(sizeof(float) * T * HD), *sn = malloc(sizeof(float) * T * HD);
    rope2d_tables(cs, sn, S, S, HD, 10000.0);
    float *g = normal_buf((int64_t)B * T * 3 * D, 1);
    float *want = calloc((size_t)B * T * D, 4), *got = nan_buf((int64_t)B * T * D);
    rope_backward(want, g, cs, sn, B, T, NH, HD, D, 3 * D);
    rope_backward_set(got, g, cs, sn, B, T, NH, HD, D, 3 * D);
    expect_same("rope dinp", got, want, (int64_t)B * T * D);
    free(cs); free(sn); free(g); free(want); free(got);
}

Test(backward_set, rmsnorm) {
    const int N = B * T;
    float *x = normal_buf(NX, 1), *g = normal_buf(NX, 2), *w = normal_buf(C, 3);
    float *y = malloc(sizeof(float) * NX), *rstd = malloc(sizeof(float) * N);
    rmsnorm_forward(y, rstd, x, w, N, C, 1e-6f);
    float *want = calloc(NX, 4), *got = nan_buf(NX);
    float *dw1 = normal_buf(C, 4), *dw2 = malloc(sizeof(float) * C);
    memcpy(dw2, dw1, sizeof(float) * C);
    rmsnorm_backward(want, dw1, g, x, w, rstd, N, C);
    rmsnorm_backward_set(got, dw2, g, x, w, rstd, N, C);
    expect_same("rmsnorm dinp", got, want, NX);
    expect_same("rmsnorm dweight", dw2, dw1, C);
    memset(want, 0, sizeof(float) * NX);   // without a weight
    for (int i = 0; i < NX; i++) got[i] = NAN;
    rmsnorm_backward(want, NULL, g, x, NULL, rstd, N, C);
    rmsnorm_backward_set(got, NULL, g, x, NULL, rstd, N, C);
    expect_same("rmsnorm dinp (no weight)", got, want, NX);
    free(x); free(g); free(w); free(y); free(rstd); free(want); free(got); free(dw1); free(dw2);
}

// Attention: bit for bit (memcmp; the set form adds to zero registers, so even
// the sign of a zero matches), on each CPU path: head dim 64 (the AVX-512
// kernels where the CPU has them, then forced portable) and head dim 24
// (portable only). T = 67: a partial 64-query block and a partial 6-row
// micro-block.
static void attention_case(int Bn, int Tn, int NH, int HD) {
    const int64_t nq = (int64_t)Bn * Tn * 3 * NH * HD, no = (int64_t)Bn * Tn * NH * HD;
    float *qkv = normal_buf(nq, 1), *dout = normal_buf(no, 2), *out = malloc(sizeof(float) * no);
    float *lse = malloc(sizeof(float) * Bn * NH * Tn);
    float *want = calloc((size_t)nq, 4), *got = nan_buf(nq);
    attention_forward(out, lse, qkv, Bn, Tn, NH, HD);
    attention_backward(want, dout, qkv, out, lse, Bn, Tn, NH, HD);
    attention_backward_set(got, dout, qkv, out, lse, Bn, Tn, NH, HD);
    int64_t bad = 0;
    for (int64_t i = 0; i < nq; i++) bad += memcmp(got + i, want + i, sizeof(float)) != 0;
    cr_expect_eq(bad, 0, "attention HD %d (%s): %lld of %lld dqkv elements differ", HD,
                 attn_avx512_usable(HD) ? "avx512" : "portable", (long long)bad, (long long)nq);
    free(qkv); free(dout); free(out); free(lse); free(want); free(got);
}

Test(backward_set, attention) {
    attention_case(2, 67, 3, 64);
    attn_avx512_force_off(1);
    attention_case(2, 67, 3, 64);
    attn_avx512_force_off(0);
    attention_case(2, 67, 3, 24);
}

// ReLU: bit for bit, with -0 gradients where the input is positive (0 + -0 is
// +0, which the set form must keep) and inputs of exactly 0; n odd, past the
// parallel threshold, so the last chunk is partial.
Test(backward_set, relu) {
    const int64_t n = NX + 7;
    float *x = normal_buf(n, 1), *g = normal_buf(n, 2), *want = calloc((size_t)n, 4), *got = nan_buf(n);
    for (int64_t i = 0; i < n; i += 5) g[i] = -0.0f;
    for (int64_t i = 0; i < n; i += 11) x[i] = 0.0f;
    relu_backward(want, g, x, n);
    relu_backward_set(got, g, x, n);
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += memcmp(got + i, want + i, sizeof(float)) != 0;
    cr_expect_eq(bad, 0, "relu dinp: %lld of %lld elements differ", (long long)bad, (long long)n);
    free(x); free(g); free(want); free(got);
}
