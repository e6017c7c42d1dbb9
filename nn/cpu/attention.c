// attention.c: CPU flash-style attention (see nn/attention.h).
// Forward per (b, h) and query tile: stream over key tiles, S = scale Q K^T
// (sgemm), online softmax (running max m, running sum l, accumulator rescaled
// when the max grows), acc += P V (sgemm); out = acc / l, lse = m + log l.
// Backward per (b, h) and query tile: Di = rowsum(dO .* O); per key tile,
// P = exp(scale Q K^T - lse) recomputed, dV += P^T dO, dP = dO V^T,
// dS = P .* (dP - Di), dQ += scale dS K, dK += scale dS^T Q. All products go
// straight into dqkv with beta = 1, which is also the "+=" contract (the set
// form clears the head's rows first, on the thread that then adds to them).
//
// Head dim 64 on an AVX-512 CPU goes to nn/cpu/attn_avx512.c instead (own
// micro-kernels with the softmax fused, 0.66-0.81x of this path's time); the
// code below is the portable path for every other CPU and head dim.
//
// Tiles: ATTN_QT queries x up to ATTN_KT keys (256 x min(T, 1024) for
// HD <= 64, in per-thread heap buffers of at most 2 MiB kept between calls;
// the AVX-512 path's buffer has no such bound, it grows with T: nn/attention.h), so each product is
// one single-threaded sgemm call (nn/cpu/gemm.h gemm_serial) big enough that
// OpenBLAS's per-call packing is amortised; the softmax row loops
// are vectorised helpers (CPU_CLONES, fast_expf). Each (b, h) is done by one
// thread in a fixed order: results do not depend on the thread count.
#include "nn/cpu/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "nn/cpu/attn_avx512.h"
#include "nn/cpu/fastexp.h"
#include "nn/cpu/gemm.h"
#include "nn/cpu/scratch.h"

#define ATTN_QT 256    // queries per tile
#define ATTN_KT 1024   // keys per tile at most, for HD <= 64

// Keys per tile: all T up to ATTN_KT (HD <= 64; fewer for larger HD), so at
// T <= 1024 a query tile's softmax is one pass with no rescaling, and each
// GEMM packs its query-side operand once per tile instead of once per 256
// keys. Shape-only, so results do not depend on the thread count.
// Each thread's tile buffer (S and the accumulator, or P and dP), grown when a
// shape needs more and kept for the next call: forward and backward run in
// every attention layer of every step, so they allocate only on the first
// call of a thread (and when T or HD grows), not per call.
static _Thread_local scratch_buf tile_buf;   // nn/cpu/scratch.h

static float *tile_scratch(size_t floats) {
    float *p = scratch_grow(&tile_buf, floats, 0);
    CHECK(p != NULL);
    return p;
}

static int attn_bc(int HD, int T) {
    int bc = ATTN_KT * 64 / (HD < 64 ? 64 : HD);
    bc = bc < 8 ? 8 : bc;
    return T < bc ? T : bc;
}

// Row helpers, built for AVX-512 / AVX2 / x86-64 (CPU_CLONES; OpenMP bodies
// cannot carry the clones themselves).
// s[0..bc) -> exp(s - mx) in place with mx = max(m_old, max s); returns the
// sum of the new values and sets *mx.
CPU_CLONES static float row_softmax(float *s, int bc, float m_old, float *mx_out) {
    float mx = m_old;
    #pragma omp simd reduction(max : mx)
    for (int j = 0; j < bc; j++) mx = s[j] > mx ? s[j] : mx;
    float sum = 0.0f;
    #pragma omp simd reduction(+ : sum)
    for (int j = 0; j < bc; j++) {
        float p = fast_expf(s[j] - mx);
        s[j] = p;
        sum += p;
    }
    *mx_out = mx;
    return sum;
}
CPU_CLONES static void row_scale(float *a, int n, float f) {
    #pragma omp simd
    for (int d = 0; d < n; d++) a[d] *= f;
}
CPU_CLONES static void row_exp(float *p, int bc, float L) {
    #pragma omp simd
    for (int j = 0; j < bc; j++) p[j] = fast_expf(p[j] - L);
}
CPU_CLONES static void row_dsoftmax(float *g, const float *p, int bc, float di) {
    #pragma omp simd
    for (int j = 0; j < bc; j++) g[j] = p[j] * (g[j] - di);
}
CPU_CLONES static float row_dot(const float *a, const float *b, int n) {
    float s = 0.0f;
    #pragma omp simd reduction(+ : s)
    for (int d = 0; d < n; d++) s += a[d] * b[d];
    return s;
}

static inline int imin(int a, int b) { return a < b ? a : b; }

// One (b, h): q, k, v rows have stride ld (3D); out rows stride ldo (D).
// S: ATTN_QT x attn_bc floats, acc: ATTN_QT x HD (the caller's, per thread).
static void fwd_head(float *out, float *lse, const float *q, const float *k,
                     const float *v, int T, int HD, int ld, int ldo, float scale, float *S,
                     float *acc) {
    float m[ATTN_QT], l[ATTN_QT];
    const int bcmax = attn_bc(HD, T);
    for (int q0 = 0; q0 < T; q0 += ATTN_QT) {
        const int br = imin(ATTN_QT, T - q0);
        for (int i = 0; i < br; i++) { m[i] = -INFINITY; l[i] = 0.0f; }
        memset(acc, 0, sizeof(float) * (size_t)br * HD);
        for (int k0 = 0; k0 < T; k0 += bcmax) {
            const int bc = imin(bcmax, T - k0);
            gemm_serial(0, 1, br, bc, HD, scale, q + (size_t)q0 * ld, ld, k + (size_t)k0 * ld, ld, 0.0f, S, bcmax);
            for (int i = 0; i < br; i++) {
                float mx;
                float sum = row_softmax(S + (size_t)i * bcmax, bc, m[i], &mx);
                if (mx > m[i]) {
                    // the max grew: rescale what was accumulated so far
                    float corr = fast_expf(m[i] - mx);
                    l[i] *= corr;
                    row_scale(acc + (size_t)i * HD, HD, corr);
                    m[i] = mx;
                }
                l[i] += sum;
            }
            gemm_serial(0, 0, br, HD, bc, 1.0f, S, bcmax, v + (size_t)k0 * ld, ld, 1.0f, acc, HD);
        }
        for (int i = 0; i < br; i++) {
            const float inv = 1.0f / l[i];
            float *o = out + (size_t)(q0 + i) * ldo;
            const float *a = acc + (size_t)i * HD;
            for (int d = 0; d < HD; d++) o[d] = a[d] * inv;
            lse[q0 + i] = m[i] + logf(l[i]);
        }
    }
}

void attention_forward_cpu(float *out, float *lse, const float *qkv,
                       int B, int T, int NH, int HD) {
    // out (B,T,NH,HD), lse (B,NH,T), qkv (B,T,3,NH,HD)
    CHECK(B > 0 && T > 0 && NH > 0 && HD > 0 && HD <= ATTN_HD_MAX);
    const int D = NH * HD;
    const float scale = 1.0f / sqrtf((float)HD);
    const size_t ns = (size_t)ATTN_QT * attn_bc(HD, T), na = (size_t)ATTN_QT * HD;
    const int fast = attn_avx512_usable(HD);
#pragma omp parallel
    {
        float *S = tile_scratch(fast ? attn_avx512_scratch(T) : ns + na);
#pragma omp for schedule(static)
        for (int bh = 0; bh < B * NH; bh++) {
            const int b = bh / NH, h = bh % NH;
            const float *q = qkv + (size_t)b * T * 3 * D + (size_t)h * HD;
            float *o = out + (size_t)b * T * D + (size_t)h * HD, *l = lse + (size_t)bh * T;
            if (fast)
                attn_avx512_fwd_head(o, l, q, q + D, q + 2 * D, T, 3 * D, D, scale, S);
            else
                fwd_head(o, l, q, q + D, q + 2 * D, T, HD, 3 * D, D, scale, S, S + ns);
        }
    }
}

// P, dP: ATTN_QT x attn_bc floats each (the caller's, per thread).
static void bwd_head(float *dq, float *dk, float *dv, const float *dout,
                     const float *q, const float *k, const float *v,
                     const float *out, const float *lse,
                     int T, int HD, int ld, int ldo, float scale, float *P, float *dP) {
    float Di[ATTN_QT];
    const int bcmax = attn_bc(HD, T);
    for (int q0 = 0; q0 < T; q0 += ATTN_QT) {
        const int br = imin(ATTN_QT, T - q0);
        for (int i = 0; i < br; i++) {
            Di[i] = row_dot(out + (size_t)(q0 + i) * ldo, dout + (size_t)(q0 + i) * ldo, HD);
        }
        const float *dO = dout + (size_t)q0 * ldo;
        for (int k0 = 0; k0 < T; k0 += bcmax) {
            const int bc = imin(bcmax, T - k0);
            gemm_serial(0, 1, br, bc, HD, scale, q + (size_t)q0 * ld, ld, k + (size_t)k0 * ld, ld, 0.0f, P, bcmax);
            for (int i = 0; i < br; i++) row_exp(P + (size_t)i * bcmax, bc, lse[q0 + i]);
            // dV += P^T dO
            gemm_serial(1, 0, bc, HD, br, 1.0f, P, bcmax, dO, ldo, 1.0f, dv + (size_t)k0 * ld, ld);
            // dP = dO V^T
            gemm_serial(0, 1, br, bc, HD, 1.0f, dO, ldo, v + (size_t)k0 * ld, ld, 0.0f, dP, bcmax);
            for (int i = 0; i < br; i++)
                row_dsoftmax(dP + (size_t)i * bcmax, P + (size_t)i * bcmax, bc, Di[i]);
            // dQ += scale dS K ; dK += scale dS^T Q
            gemm_serial(0, 0, br, HD, bc, scale, dP, bcmax, k + (size_t)k0 * ld, ld, 1.0f, dq + (size_t)q0 * ld, ld);
            gemm_serial(1, 0, bc, HD, br, scale, dP, bcmax, q + (size_t)q0 * ld, ld, 1.0f, dk + (size_t)k0 * ld, ld);
        }
    }
}

// Clears the rows x HD block at p (row stride ld): the portable path's set
// form, done per head on the thread that then accumulates into it.
static void zero_rows(float *p, int rows, int HD, int ld) {
    for (int r = 0; r < rows; r++) memset(p + (size_t)r * ld, 0, sizeof(float) * HD);
}

// set: dqkv written (=) instead of accumulated, with the same bits as
// adding to a zeroed dqkv.
static void backward(float *dqkv, const float *dout, const float *qkv, const float *out,
                     const float *lse, int B, int T, int NH, int HD, int set) {
    // dqkv, qkv (B,T,3,NH,HD); dout, out (B,T,NH,HD); lse (B,NH,T)
    CHECK(B > 0 && T > 0 && NH > 0 && HD > 0 && HD <= ATTN_HD_MAX);
    const int D = NH * HD;
    const float scale = 1.0f / sqrtf((float)HD);
    const size_t ns = (size_t)ATTN_QT * attn_bc(HD, T);
    const int fast = attn_avx512_usable(HD);
#pragma omp parallel
    {
        float *P = tile_scratch(fast ? attn_avx512_scratch(T) : 2 * ns);
#pragma omp for schedule(static)
        for (int bh = 0; bh < B * NH; bh++) {
            const int b = bh / NH, h = bh % NH;
            const size_t qo = (size_t)b * T * 3 * D + (size_t)h * HD;
            const size_t oo = (size_t)b * T * D + (size_t)h * HD;
            float *dq = dqkv + qo;
            const float *q = qkv + qo;
            if (fast) {
                attn_avx512_bwd_head(dq, dq + D, dq + 2 * D, dout + oo, q, q + D, q + 2 * D,
                                     out + oo, lse + (size_t)bh * T, T, 3 * D, D, scale, P, set);
                continue;
            }
            for (int slot = 0; set && slot < 3; slot++) zero_rows(dq + (size_t)slot * D, T, HD, 3 * D);
            bwd_head(dq, dq + D, dq + 2 * D, dout + oo, q, q + D, q + 2 * D,
                     out + oo, lse + (size_t)bh * T, T, HD, 3 * D, D, scale, P, P + ns);
        }
    }
}

void attention_backward_cpu(float *dqkv, const float *dout, const float *qkv, const float *out,
                            const float *lse, int B, int T, int NH, int HD) {
    backward(dqkv, dout, qkv, out, lse, B, T, NH, HD, 0);
}

void attention_backward_set_cpu(float *dqkv, const float *dout, const float *qkv,
                                const float *out, const float *lse, int B, int T, int NH, int HD) {
    backward(dqkv, dout, qkv, out, lse, B, T, NH, HD, 1);
}
