// attn_avx512.c: AVX-512 attention for head dim 64 (see attn_avx512.h).
//
// Every product in attention has the head dim (64) as its inner or its
// output width, so one register-blocked micro-kernel covers all seven:
//   C[mr x 64] (+)= sum_k A(i, k) B[k][0..64),  A(i, k) = A[i sa + k sk]
// (mr <= 6 rows, 24 zmm accumulators; A broadcast from memory with any
// strides, B rows of 64 contiguous floats), optionally with the softmax
// (P = e^(scale S - lse)) or dS = scale P (dP - Di) applied to the
// accumulators before the store.
//
// Forward, per 6 query rows: S (6 x T, B = K^T in 64-key panels packed once
// per head) -> row max, P = e^(scale S - m), l = sum P (in L1) ->
// O = (P V) / l, lse = m + log l. No online softmax: a whole row of T
// scores is 4 T bytes.
// Backward, transposed: keys are the rows, a block of 64 queries the
// columns (see attn_avx512_bwd_head), so every product is 64 deep or
// streams contiguous rows, and dK, dV are accumulated once per 64 queries.
// The exp is a vector form of nn/cpu/fastexp.h's (same Cephes polynomial,
// with FMA), max rel error ~1e-7 (tests/nn/test_attention.c measures it).
#include "nn/cpu/attn_avx512.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static int force_off;

void attn_avx512_force_off(int off) { force_off = off; }

static inline int round64(int T) { return (T + 63) & ~63; }

size_t attn_avx512_scratch(int T) {
    const size_t Tp = (size_t)round64(T);
    // backward: K, V, dK, dV rows, dS^T (T x 64 each), four 64 x 64 query
    // panels, P^T rows; the forward's K^T panels, V rows, S and O rows fit
    // in the first part; 64-byte alignment slack
    return 5 * 64 * Tp + 4 * 4096 + 6 * (Tp + 16) + 6 * 64 + 16;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "nn/cpu/avx512_transpose.h"

#define AVX512 __attribute__((target("avx512f")))
#define INLINE static inline __attribute__((always_inline))

int attn_avx512_usable(int HD) {
    return HD == 64 && !force_off && __builtin_cpu_supports("avx512f");
}

// e^x, x <= 88 (fastexp.h's method): x clamped to >= -87, x = n ln2 + r,
// e^r = 1 + r + r^2 poly(r), times 2^n (scalef).
AVX512 INLINE __m512 exp512(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
    const __m512 fn = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(fn, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(fn, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r);
    p = _mm512_add_ps(p, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, fn);
}

// The micro-kernel (see the top); acc: C += instead of C =. ep, the
// epilogue applied to the accumulators before the store (backward):
//   EP_STORE  C = c (or C + c)
//   EP_PROB   C = e^(scale c - e[n])          (P^T from S^T, e = lse)
//   EP_DS     C = scale P[i][n] (c - e[n])    (dS^T from dP^T, e = Di,
//                                             P = the EP_PROB output, ld 64)
// mr and ep are constants at every inlined call site (the switches below),
// so the accumulators stay in registers.
enum { EP_STORE, EP_PROB, EP_DS };

AVX512 INLINE void mk(const int mr, int kc, const float *A, ptrdiff_t sa, ptrdiff_t sk,
                      const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc, int acc,
                      const int ep, const float *e, const float *P, float scale) {
    __m512 c[6][4];
#pragma GCC unroll 6
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++)
            c[i][v] = acc ? _mm512_loadu_ps(C + i * ldc + 16 * v) : _mm512_setzero_ps();
    for (int k = 0; k < kc; k++) {
        const float *b = B + k * ldb, *a = A + k * sk;
        const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        const __m512 b2 = _mm512_loadu_ps(b + 32), b3 = _mm512_loadu_ps(b + 48);
#pragma GCC unroll 6
        for (int i = 0; i < mr; i++) {
            const __m512 ai = _mm512_set1_ps(a[i * sa]);
            c[i][0] = _mm512_fmadd_ps(ai, b0, c[i][0]);
            c[i][1] = _mm512_fmadd_ps(ai, b1, c[i][1]);
            c[i][2] = _mm512_fmadd_ps(ai, b2, c[i][2]);
            c[i][3] = _mm512_fmadd_ps(ai, b3, c[i][3]);
        }
    }
    const __m512 vs = _mm512_set1_ps(scale);
#pragma GCC unroll 4
    for (int v = 0; v < 4; v++) {
        const __m512 ev = ep == EP_STORE ? vs : _mm512_loadu_ps(e + 16 * v);
#pragma GCC unroll 6
        for (int i = 0; i < mr; i++) {
            __m512 x = c[i][v];
            if (ep == EP_PROB) x = exp512(_mm512_fmsub_ps(x, vs, ev));
            if (ep == EP_DS)
                x = _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(P + i * 64 + 16 * v),
                                                _mm512_sub_ps(x, ev)), vs);
            _mm512_storeu_ps(C + i * ldc + 16 * v, x);
        }
    }
}

#define MK_SWITCH(mr, ...)                         \
    switch (mr) {                                  \
    case 6: mk(6, __VA_ARGS__); break;             \
    case 5: mk(5, __VA_ARGS__); break;             \
    case 4: mk(4, __VA_ARGS__); break;             \
    case 3: mk(3, __VA_ARGS__); break;             \
    case 2: mk(2, __VA_ARGS__); break;             \
    default: mk(1, __VA_ARGS__); break;            \
    }

AVX512 static void mk_any(int mr, int kc, const float *A, ptrdiff_t sa, ptrdiff_t sk,
                          const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc, int acc) {
    MK_SWITCH(mr, kc, A, sa, sk, B, ldb, C, ldc, acc, EP_STORE, NULL, NULL, 0.0f)
}

// 64-deep products into C (ld 64) with the EP_PROB / EP_DS epilogue.
AVX512 static void mk_prob(int mr, const float *A, const float *B, float *C, const float *lse,
                           float scale) {
    MK_SWITCH(mr, 64, A, 64, 1, B, 64, C, 64, 0, EP_PROB, lse, NULL, scale)
}
AVX512 static void mk_ds(int mr, const float *A, const float *B, float *C, const float *di,
                         const float *P, float scale) {
    MK_SWITCH(mr, 64, A, 64, 1, B, 64, C, 64, 0, EP_DS, di, P, scale)
}

// Panels of 64 keys: pt[p 4096 + d 64 + c] = x[(64 p + c) ld + d], zero
// past T (their scores are computed but never used). 16 x 16 blocks
// through tr16.
AVX512 static void pack_t(float *pt, const float *x, int T, int ld) {
    const int Tp = round64(T);
    for (int j0 = 0; j0 < Tp; j0 += 16) {
        float *o = pt + (size_t)(j0 / 64) * 4096 + (j0 % 64);
        for (int d0 = 0; d0 < 64; d0 += 16) {
            __m512 r[16];
            const int n = T - j0 < 16 ? T - j0 : 16;   // rows past T are zeros
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                r[i] = _mm512_maskz_loadu_ps(i < n ? 0xFFFF : 0, x + (size_t)(j0 + (i < n ? i : 0)) * ld + d0);
            tr16(r);
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++) _mm512_storeu_ps(o + (d0 + i) * 64, r[i]);
        }
    }
}

// Rows of 64 with stride ld -> T contiguous rows: the hot loops then stream
// one dense block instead of rows 3 NH HD floats apart (a new page every few
// rows). Rows past T (up to the 64 multiple) are NOT written and hold stale
// scratch: every reader stops at row T (or at a block's nq queries).
static void pack_rows(float *dst, const float *x, int T, int ld) {
    for (int j = 0; j < T; j++) memcpy(dst + (size_t)j * 64, x + (size_t)j * ld, 64 * sizeof(float));
}

// S rows of this micro-block: C[mr x Tp] = A (mr x 64, rows sa) times the
// panels (64 x Tp).
AVX512 static void scores(int mr, const float *A, ptrdiff_t sa, const float *pt, int T,
                          float *C, ptrdiff_t ldc) {
    for (int jb = 0; jb < T; jb += 64)
        mk_any(mr, 64, A, sa, 1, pt + (size_t)jb * 64, 64, C + jb, ldc, 0);
}

static inline __mmask16 tail_mask(int T) {
    return (__mmask16)(T % 16 ? (1u << (T % 16)) - 1u : 0xFFFFu);
}

// s[0..T) -> e^(scale s - m) with m = scale max s (0 past T in the last
// vector); returns the sum, sets *m.
AVX512 static float softmax_row(float *s, int T, float scale, float *m_out) {
    const int nv = (T + 15) / 16;
    const __mmask16 tm = tail_mask(T);
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int v = 0; v < nv - 1; v++) mx = _mm512_max_ps(mx, _mm512_loadu_ps(s + 16 * v));
    mx = _mm512_mask_max_ps(mx, tm, mx, _mm512_loadu_ps(s + 16 * (nv - 1)));
    const float m = _mm512_reduce_max_ps(mx) * scale;
    const __m512 vs = _mm512_set1_ps(scale), vm = _mm512_set1_ps(m);
    __m512 sum = _mm512_setzero_ps();
    for (int v = 0; v < nv; v++) {
        __m512 p = exp512(_mm512_fmsub_ps(_mm512_loadu_ps(s + 16 * v), vs, vm));
        if (v == nv - 1) p = _mm512_maskz_mov_ps(tm, p);
        _mm512_storeu_ps(s + 16 * v, p);
        sum = _mm512_add_ps(sum, p);
    }
    *m_out = m;
    return _mm512_reduce_add_ps(sum);
}

AVX512 void attn_avx512_fwd_head(float *out, float *lse, const float *q, const float *k,
                                 const float *v, int T, int ld, int ldo, float scale, float *ws) {
    ws = (float *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    const int Tp = round64(T);
    const ptrdiff_t ldp = Tp + 16;
    float *kt = ws, *vc = kt + (size_t)64 * Tp, *S = vc + (size_t)64 * Tp, *O = S + 6 * ldp;
    pack_t(kt, k, T, ld);
    pack_rows(vc, v, T, ld);
    for (int i0 = 0; i0 < T; i0 += 6) {
        const int mr = T - i0 < 6 ? T - i0 : 6;
        scores(mr, q + (size_t)i0 * ld, ld, kt, T, S, ldp);
        float inv[6];
        for (int r = 0; r < mr; r++) {
            float m;
            const float l = softmax_row(S + r * ldp, T, scale, &m);
            lse[i0 + r] = m + logf(l);
            inv[r] = 1.0f / l;
        }
        mk_any(mr, T, S, ldp, 1, vc, 64, O, 64, 0);
        for (int r = 0; r < mr; r++)
            for (int v = 0; v < 4; v++)
                _mm512_storeu_ps(out + (size_t)(i0 + r) * ldo + 16 * v,
                                 _mm512_mul_ps(_mm512_loadu_ps(O + r * 64 + 16 * v), _mm512_set1_ps(inv[r])));
    }
}

// y (+)= x; set: y = 0 + x, so an exact -0 becomes +0 as it would added
// to a zeroed y (the set form keeps the accumulating form's bits).
AVX512 static void add64(float *y, const float *x, int set) {
    for (int v = 0; v < 4; v++) {
        const __m512 y0 = set ? _mm512_setzero_ps() : _mm512_loadu_ps(y + 16 * v);
        _mm512_storeu_ps(y + 16 * v, _mm512_add_ps(y0, _mm512_loadu_ps(x + 16 * v)));
    }
}

AVX512 static float dot64(const float *a, const float *b) {
    __m512 s = _mm512_mul_ps(_mm512_loadu_ps(a), _mm512_loadu_ps(b));
    for (int v = 1; v < 4; v++)
        s = _mm512_fmadd_ps(_mm512_loadu_ps(a + 16 * v), _mm512_loadu_ps(b + 16 * v), s);
    return _mm512_reduce_add_ps(s);
}

// Backward, transposed (keys are the rows, a block of 64 queries the
// columns), per block of 64 queries and per 6 keys j:
//   P^T = e^(scale K Q^T - lse)       (6 x 64, epilogue of the product)
//   dS^T = scale P^T (V dO^T - Di)   (6 x 64, epilogue)
//   dV[j] += P^T dO,  dK[j] += dS^T Q  (64 deep; dK, dV rows contiguous)
// then dQ += dS K for the block's queries (A = dS^T read down its columns).
// set: dq, dk, dv written instead (each dq row is one product, started from
// zero registers instead of loaded; dK, dV are added to zero at the end).
// K, V rows are read from contiguous copies; Q^T, dO^T of the block are
// packed 64 x 64 panels; queries past T in the last block are zero columns
// whose results are never read (dV, dK run only nq deep).
AVX512 void attn_avx512_bwd_head(float *dq, float *dk, float *dv, const float *dout,
                                 const float *q, const float *k, const float *v,
                                 const float *out, const float *lse, int T, int ld, int ldo,
                                 float scale, float *ws, int set) {
    ws = (float *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    const size_t n64 = (size_t)64 * T;
    float *kc = ws, *vc = kc + n64, *dkc = vc + n64, *dvc = dkc + n64, *dST = dvc + n64;
    float *qt = dST + (size_t)64 * round64(T), *ot = qt + 4096, *qb = ot + 4096, *ob = qb + 4096;
    float *pt = ob + 4096, lse_b[64], di_b[64];
    pack_rows(kc, k, T, ld);
    pack_rows(vc, v, T, ld);
    memset(dkc, 0, sizeof(float) * n64);
    memset(dvc, 0, sizeof(float) * n64);
    for (int i0 = 0; i0 < T; i0 += 64) {
        const int nq = T - i0 < 64 ? T - i0 : 64;
        pack_t(qt, q + (size_t)i0 * ld, nq, ld);
        pack_t(ot, dout + (size_t)i0 * ldo, nq, ldo);
        pack_rows(qb, q + (size_t)i0 * ld, nq, ld);
        pack_rows(ob, dout + (size_t)i0 * ldo, nq, ldo);
        for (int i = 0; i < 64; i++) {
            const size_t o = (size_t)(i0 + i) * ldo;
            lse_b[i] = i < nq ? lse[i0 + i] : 0.0f;
            di_b[i] = i < nq ? dot64(out + o, dout + o) : 0.0f;
        }
        for (int j0 = 0; j0 < T; j0 += 6) {
            const int mr = T - j0 < 6 ? T - j0 : 6;
            float *ds = dST + (size_t)j0 * 64;
            mk_prob(mr, kc + (size_t)j0 * 64, qt, pt, lse_b, scale);
            mk_ds(mr, vc + (size_t)j0 * 64, ot, ds, di_b, pt, scale);
            mk_any(mr, nq, pt, 64, 1, ob, 64, dvc + (size_t)j0 * 64, 64, 1);
            mk_any(mr, nq, ds, 64, 1, qb, 64, dkc + (size_t)j0 * 64, 64, 1);
        }
        for (int r0 = 0; r0 < nq; r0 += 6) {
            const int mr = nq - r0 < 6 ? nq - r0 : 6;
            mk_any(mr, T, dST + r0, 1, 64, kc, 64, dq + (size_t)(i0 + r0) * ld, ld, !set);
        }
    }
    for (int j = 0; j < T; j++) {
        add64(dk + (size_t)j * ld, dkc + (size_t)j * 64, set);
        add64(dv + (size_t)j * ld, dvc + (size_t)j * 64, set);
    }
}

AVX512 static void exp_vec(float *y, const float *x, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, exp512(_mm512_loadu_ps(x + i)));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(y + i, m, exp512(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

int attn_avx512_exp(float *y, const float *x, int n) {
    if (!__builtin_cpu_supports("avx512f")) {
        for (int i = 0; i < n; i++) y[i] = 0.0f;
        return 0;
    }
    exp_vec(y, x, n);
    return 1;
}

#else  // no x86-64 GCC: the portable path only

int attn_avx512_usable(int HD) { (void)HD; return 0; }
void attn_avx512_fwd_head(float *out, float *lse, const float *q, const float *k,
                          const float *v, int T, int ld, int ldo, float scale, float *ws) {
    (void)out; (void)lse; (void)q; (void)k; (void)v; (void)T; (void)ld; (void)ldo;
    (void)scale; (void)ws;
}
void attn_avx512_bwd_head(float *dq, float *dk, float *dv, const float *dout,
                          const float *q, const float *k, const float *v,
                          const float *out, const float *lse, int T, int ld, int ldo,
                          float scale, float *ws, int set) {
    (void)dq; (void)dk; (void)dv; (void)dout; (void)q; (void)k; (void)v; (void)out;
    (void)lse; (void)T; (void)ld; (void)ldo; (void)scale; (void)ws; (void)set;
}
int attn_avx512_exp(float *y, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] = 0.0f;
    return 0;
}

#endif
