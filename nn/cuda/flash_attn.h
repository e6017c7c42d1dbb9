// flash_attn.h: the bodies of the tiled (flash-style) attention kernels of
// nn/cuda/flash_attn.cu, written once for two compilers, like block_reduce.h:
// nvcc builds them as device functions called by the kernels; a C compiler
// builds them as plain functions, which tests/cuda/test_flash_emul.c runs
// with one pthread per CUDA thread (FA_SYNC() a barrier over the block) to
// check the index arithmetic, the tile edges and the barriers on the host,
// against the CPU attention, without a GPU.
//
// Semantics: nn/attention.h (qkv (B,T,3,NH,HD), out (B,T,NH,HD), lse
// (B,NH,T) = natural log of the sum of exp of the scaled scores of a row).
//
// Algorithm (FlashAttention-2, non-causal), all arithmetic in fp32:
//   forward: block (b*NH+h, query tile): Q tile in shared memory; for each key
//     tile: S = scale Q K^T, running row max m and sum l (online softmax),
//     O = O * exp(m_old - m_new) + P V; at the end out = O / l, lse = m + log l.
//   backward (after Drow_i = dout_i . out_i, one thread per row):
//     dq kernel, block (bh, query tile): for each key tile recompute
//       P = exp(S - lse), dS = P (dout V^T - Drow); dQ += dS K.
//     dkv kernel, block (bh, key tile): for each query tile the same P, dS;
//       dV += P^T dout, dK += dS^T Q.
//   Two kernels instead of atomics: every output element is summed by one
//   thread in a fixed order, so results are deterministic (as the rest of
//   nn/cuda). Gradients are ADDED (+=) to dqkv, as nn/attention.h says.
// Inputs: qkv is fp32 or bf16 (bits, uint16_t; `bf16` != 0), widened to fp32
// as it is loaded into shared memory; dout, out, lse, Drow and every output
// are fp32.
//
// Shared memory: rows padded to ld = HD + 1 floats so that a warp reading
// one column of K (key c, fixed d) hits 32 different banks. Tile sizes (rows
// of queries or keys per block) are chosen per kernel and head dim so that a
// block needs at most FA_SMEM_MAX bytes (the default 48 KiB, no opt-in
// attribute needed): fa_tile(). Every loop strides by the block size nt, so
// any nt works; the .cu launches FA_THREADS.
//
// Not here: causal masks, dropout, tensor cores (plain FMAs: simple first;
// wmma/wgmma tiles are the next speed step).
#ifndef NN_CUDA_FLASH_ATTN_H
#define NN_CUDA_FLASH_ATTN_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define FA_FN static __device__ __forceinline__
#define FA_SYNC() __syncthreads()
#define FA_BF16(u) __uint_as_float((uint32_t)(u) << 16)
#else
#define FA_FN static inline
#ifndef FA_SYNC
#error "host builds of flash_attn.h need FA_SYNC()"
#endif
static inline float fa_bf16_host(uint16_t u) {
    union { uint32_t i; float f; } c = {(uint32_t)u << 16};
    return c.f;
}
#define FA_BF16(u) fa_bf16_host(u)
#endif

#define FA_THREADS 128
#define FA_SMEM_MAX (48 * 1024)

enum { FA_FWD = 0, FA_DQ = 1, FA_DKV = 2 };

// Floats of shared memory of kernel `which` at tile rows and head dim HD.
static inline int64_t fa_smem_floats(int which, int tile, int HD) {
    int64_t tl = (int64_t)tile * (HD + 1), tt = (int64_t)tile * tile;
    if (which == FA_FWD) return 4 * tl + tt + 3 * tile;    // Q K V O, S, m l alpha
    if (which == FA_DQ) return 5 * tl + tt + 2 * tile;     // Q dO dQ K V, dS, lse D
    return 6 * tl + 2 * tt + 2 * tile;                      // K V dK dV Q dO, P dS, lse D
}

// Largest tile of {32, 16, 8, 4} whose shared memory fits FA_SMEM_MAX; 0 if
// none does (HD too large: the caller falls back to the exact kernels).
static inline int fa_tile(int which, int HD) {
    for (int t = 32; t >= 4; t /= 2)
        if (fa_smem_floats(which, t, HD) * 4 <= FA_SMEM_MAX) return t;
    return 0;
}

typedef struct {
    int B, T, NH, HD;
    float scale;   // 1 / sqrt(HD)
} fa_geom;

FA_FN int fa_min(int a, int b) { return a < b ? a : b; }

FA_FN float fa_load(const void *p, int64_t i, int bf16) {
    return bf16 ? FA_BF16(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}

// dst (tile rows x ld) <- rows t0 .. t0+n-1 of a (T, row_stride) view that
// starts at base (element offset of token 0, dim 0); rows n.. are zeros.
FA_FN void fa_load_rows(float *dst, const void *src, int bf16, int64_t base, int64_t row_stride,
                        int t0, int n, int tile, int HD, int tid, int nt) {
    const int ld = HD + 1;
    for (int i = tid; i < tile * HD; i += nt) {
        int r = i / HD, d = i % HD;
        dst[r * ld + d] = r < n ? fa_load(src, base + (int64_t)(t0 + r) * row_stride + d, bf16) : 0.0f;
    }
}

// Row statistics (lse or Drow) of rows t0 .. t0+n-1 of head bh; 0 beyond n.
FA_FN void fa_load_stat(float *dst, const float *src, int64_t bh, int T, int t0, int n, int tile,
                        int tid, int nt) {
    for (int r = tid; r < tile; r += nt) dst[r] = r < n ? src[bh * T + t0 + r] : 0.0f;
}

FA_FN float fa_dot(const float *a, const float *b, int HD) {
    float s = 0.0f;
    for (int d = 0; d < HD; d++) s += a[d] * b[d];
    return s;
}

// Block (bh, qt) of the forward.
FA_FN void fa_forward_body(float *out, float *lse, const void *qkv, int bf16, fa_geom g, int tile,
                           float *sm, int bh, int qt, int tid, int nt) {
    const int HD = g.HD, ld = HD + 1, T = g.T, D = g.NH * HD;
    const int b = bh / g.NH, h = bh % g.NH;
    float *Q = sm, *K = Q + tile * ld, *V = K + tile * ld, *O = V + tile * ld, *S = O + tile * ld;
    float *M = S + tile * tile, *L = M + tile, *A = L + tile;
    const int q0 = qt * tile, nq = fa_min(tile, T - q0);
    const int64_t qbase = (int64_t)b * T * 3 * D + (int64_t)h * HD;   // q of token 0
    fa_load_rows(Q, qkv, bf16, qbase, 3 * (int64_t)D, q0, nq, tile, HD, tid, nt);
    for (int i = tid; i < tile * ld; i += nt) O[i] = 0.0f;
    for (int r = tid; r < tile; r += nt) {
        M[r] = -INFINITY;
        L[r] = 0.0f;
    }
    for (int k0 = 0; k0 < T; k0 += tile) {
        const int nk = fa_min(tile, T - k0);
        FA_SYNC();   // the last tile's readers of K, V, S, A are done (and Q, O, M, L are set)
        fa_load_rows(K, qkv, bf16, qbase + D, 3 * (int64_t)D, k0, nk, tile, HD, tid, nt);
        fa_load_rows(V, qkv, bf16, qbase + 2 * D, 3 * (int64_t)D, k0, nk, tile, HD, tid, nt);
        FA_SYNC();
        for (int i = tid; i < tile * tile; i += nt) {
            int r = i / tile, c = i % tile;
            S[i] = c < nk ? fa_dot(Q + r * ld, K + c * ld, HD) * g.scale : -INFINITY;
        }
        FA_SYNC();
        // One thread per row: new max, rescale factor, probabilities, sum.
        // nk >= 1, so the new max is finite and exp(M_old - mx) is 0 on the
        // first tile (M_old = -inf), never NaN.
        for (int r = tid; r < tile; r += nt) {
            float *s = S + r * tile, mx = M[r];
            for (int c = 0; c < nk; c++) mx = fmaxf(mx, s[c]);
            float a = expf(M[r] - mx), sum = 0.0f;
            for (int c = 0; c < tile; c++) {
                float p = c < nk ? expf(s[c] - mx) : 0.0f;
                s[c] = p;
                sum += p;
            }
            L[r] = L[r] * a + sum;
            M[r] = mx;
            A[r] = a;
        }
        FA_SYNC();
        // Each O element belongs to one thread for the whole loop (i fixed).
        for (int i = tid; i < tile * HD; i += nt) {
            int r = i / HD, d = i % HD;
            float acc = O[r * ld + d] * A[r];
            for (int c = 0; c < nk; c++) acc += S[r * tile + c] * V[c * ld + d];
            O[r * ld + d] = acc;
        }
    }
    FA_SYNC();
    for (int i = tid; i < nq * HD; i += nt) {
        int r = i / HD, d = i % HD;
        out[((int64_t)b * T + q0 + r) * D + (int64_t)h * HD + d] = O[r * ld + d] / L[r];
    }
    for (int r = tid; r < nq; r += nt) lse[(int64_t)bh * T + q0 + r] = M[r] + logf(L[r]);
}

// Drow[bh*T + i] = dout_i . out_i for the rows of thread index row (B*NH*T
// rows; one thread each).
FA_FN void fa_rowdot_body(float *Drow, const float *dout, const float *out, fa_geom g, int64_t row) {
    if (row >= (int64_t)g.B * g.NH * g.T) return;
    const int64_t bh = row / g.T, i = row % g.T, b = bh / g.NH, h = bh % g.NH;
    const int64_t off = (b * g.T + i) * g.NH * g.HD + h * g.HD;
    Drow[row] = fa_dot(dout + off, out + off, g.HD);
}

// Block (bh, qt) of the dq kernel: dq += scale sum_j dS_ij k_j.
FA_FN void fa_dq_body(float *dqkv, const float *dout, const void *qkv, int bf16, const float *lse,
                      const float *Drow, fa_geom g, int tile, float *sm, int bh, int qt, int tid,
                      int nt) {
    const int HD = g.HD, ld = HD + 1, T = g.T, D = g.NH * HD;
    const int b = bh / g.NH, h = bh % g.NH;
    float *Q = sm, *dO = Q + tile * ld, *dQ = dO + tile * ld, *K = dQ + tile * ld, *V = K + tile * ld;
    float *dS = V + tile * ld, *Lr = dS + tile * tile, *Dr = Lr + tile;
    const int q0 = qt * tile, nq = fa_min(tile, T - q0);
    const int64_t qbase = (int64_t)b * T * 3 * D + (int64_t)h * HD;
    const int64_t obase = (int64_t)b * T * D + (int64_t)h * HD;       // dout of token 0
    fa_load_rows(Q, qkv, bf16, qbase, 3 * (int64_t)D, q0, nq, tile, HD, tid, nt);
    fa_load_rows(dO, dout, 0, obase, D, q0, nq, tile, HD, tid, nt);
    for (int i = tid; i < tile * ld; i += nt) dQ[i] = 0.0f;
    fa_load_stat(Lr, lse, bh, T, q0, nq, tile, tid, nt);
    fa_load_stat(Dr, Drow, bh, T, q0, nq, tile, tid, nt);
    for (int k0 = 0; k0 < T; k0 += tile) {
        const int nk = fa_min(tile, T - k0);
        FA_SYNC();   // the last tile's readers of K, V, dS are done
        fa_load_rows(K, qkv, bf16, qbase + D, 3 * (int64_t)D, k0, nk, tile, HD, tid, nt);
        fa_load_rows(V, qkv, bf16, qbase + 2 * D, 3 * (int64_t)D, k0, nk, tile, HD, tid, nt);
        FA_SYNC();
        for (int i = tid; i < tile * tile; i += nt) {
            int r = i / tile, c = i % tile;
            float v = 0.0f;
            if (r < nq && c < nk) {
                float p = expf(fa_dot(Q + r * ld, K + c * ld, HD) * g.scale - Lr[r]);
                v = p * (fa_dot(dO + r * ld, V + c * ld, HD) - Dr[r]);
            }
            dS[i] = v;
        }
        FA_SYNC();
        for (int i = tid; i < tile * HD; i += nt) {
            int r = i / HD, d = i % HD;
            float acc = 0.0f;
            for (int c = 0; c < nk; c++) acc += dS[r * tile + c] * K[c * ld + d];
            dQ[r * ld + d] += acc;
        }
    }
    // Each dQ element was written by the thread that stores it (same i):
    // no barrier needed before the store.
    for (int i = tid; i < nq * HD; i += nt) {
        int r = i / HD, d = i % HD;
        dqkv[qbase + (int64_t)(q0 + r) * 3 * D + d] += g.scale * dQ[r * ld + d];
    }
}

// Block (bh, kt) of the dk/dv kernel: dk_j += scale sum_i dS_ij q_i,
// dv_j += sum_i P_ij dout_i.
FA_FN void fa_dkv_body(float *dqkv, const float *dout, const void *qkv, int bf16, const float *lse,
                       const float *Drow, fa_geom g, int tile, float *sm, int bh, int kt, int tid,
                       int nt) {
    const int HD = g.HD, ld = HD + 1, T = g.T, D = g.NH * HD;
    const int b = bh / g.NH, h = bh % g.NH;
    float *K = sm, *V = K + tile * ld, *dK = V + tile * ld, *dV = dK + tile * ld;
    float *Q = dV + tile * ld, *dO = Q + tile * ld, *P = dO + tile * ld, *dS = P + tile * tile;
    float *Lr = dS + tile * tile, *Dr = Lr + tile;
    const int k0 = kt * tile, nk = fa_min(tile, T - k0);
    const int64_t qbase = (int64_t)b * T * 3 * D + (int64_t)h * HD;
    const int64_t obase = (int64_t)b * T * D + (int64_t)h * HD;
    fa_load_rows(K, qkv, bf16, qbase + D, 3 * (int64_t)D, k0, nk, tile, HD, tid, nt);
    fa_load_rows(V, qkv, bf16, qbase + 2 * D, 3 * (int64_t)D, k0, nk, tile, HD, tid, nt);
    for (int i = tid; i < tile * ld; i += nt) {
        dK[i] = 0.0f;
        dV[i] = 0.0f;
    }
    for (int q0 = 0; q0 < T; q0 += tile) {
        const int nq = fa_min(tile, T - q0);
        FA_SYNC();   // the last tile's readers of Q, dO, P, dS, Lr, Dr are done
        fa_load_rows(Q, qkv, bf16, qbase, 3 * (int64_t)D, q0, nq, tile, HD, tid, nt);
        fa_load_rows(dO, dout, 0, obase, D, q0, nq, tile, HD, tid, nt);
        fa_load_stat(Lr, lse, bh, T, q0, nq, tile, tid, nt);
        fa_load_stat(Dr, Drow, bh, T, q0, nq, tile, tid, nt);
        FA_SYNC();
        for (int i = tid; i < tile * tile; i += nt) {
            int r = i / tile, c = i % tile;   // r: query, c: key
            float p = 0.0f, ds = 0.0f;
            if (r < nq && c < nk) {
                p = expf(fa_dot(Q + r * ld, K + c * ld, HD) * g.scale - Lr[r]);
                ds = p * (fa_dot(dO + r * ld, V + c * ld, HD) - Dr[r]);
            }
            P[i] = p;
            dS[i] = ds;
        }
        FA_SYNC();
        for (int i = tid; i < tile * HD; i += nt) {
            int c = i / HD, d = i % HD;
            float av = 0.0f, ak = 0.0f;
            for (int r = 0; r < nq; r++) {
                av += P[r * tile + c] * dO[r * ld + d];
                ak += dS[r * tile + c] * Q[r * ld + d];
            }
            dV[c * ld + d] += av;
            dK[c * ld + d] += ak;
        }
    }
    for (int i = tid; i < nk * HD; i += nt) {   // own elements, as in fa_dq_body
        int c = i / HD, d = i % HD;
        int64_t kd = qbase + D + (int64_t)(k0 + c) * 3 * D + d;
        dqkv[kd] += g.scale * dK[c * ld + d];
        dqkv[kd + D] += dV[c * ld + d];
    }
}

#endif
