// attention.c: CPU flash-style attention (see nn/attention.h).
// Forward per (b, h) and query tile: stream over key tiles, S = scale Q K^T
// (sgemm), online softmax (running max m, running sum l, accumulator rescaled
// when the max grows), acc += P V (sgemm); out = acc / l, lse = m + log l.
// Backward per (b, h) and query tile: Di = rowsum(dO .* O); per key tile,
// P = exp(scale Q K^T - lse) recomputed, dV += P^T dO, dP = dO V^T,
// dS = P .* (dP - Di), dQ += scale dS K, dK += scale dS^T Q. All products go
// straight into dqkv with beta = 1, which is also the "+=" contract.
//
// Every sgemm call has M*N*K <= 64*64*64 = 262144, the size at or below which
// OpenBLAS runs a GEMM on the calling thread; so the OpenMP threads here never
// wake OpenBLAS's own pool (no oversubscription, thread-count independent).
#include "nn/cpu/ops.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "core/base.h"
#include "nn/cpu/fastexp.h"

// Keys per tile: keep br*bc*HD <= 64*64*64 (see the header comment).
static int attn_bc(int HD) {
    int bc = ATTN_BC * 64 / (HD < 64 ? 64 : HD);
    return bc < 8 ? 8 : bc;
}

static inline int imin(int a, int b) { return a < b ? a : b; }

// One (b, h): q, k, v rows have stride ld (3D); out rows stride ldo (D).
static void fwd_head(float *out, float *lse, const float *q, const float *k,
                     const float *v, int T, int HD, int ld, int ldo, float scale) {
    float S[ATTN_BR * ATTN_BC];
    float acc[ATTN_BR * ATTN_HD_MAX];
    float m[ATTN_BR], l[ATTN_BR];
    const int bcmax = attn_bc(HD);
    for (int q0 = 0; q0 < T; q0 += ATTN_BR) {
        const int br = imin(ATTN_BR, T - q0);
        for (int i = 0; i < br; i++) { m[i] = -INFINITY; l[i] = 0.0f; }
        memset(acc, 0, sizeof(float) * (size_t)br * HD);
        for (int k0 = 0; k0 < T; k0 += bcmax) {
            const int bc = imin(bcmax, T - k0);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, br, bc, HD, scale,
                        q + (size_t)q0 * ld, ld, k + (size_t)k0 * ld, ld, 0.0f, S, bcmax);
            for (int i = 0; i < br; i++) {
                float *s = S + (size_t)i * bcmax;
                float mx = m[i];
#pragma omp simd reduction(max : mx)
                for (int j = 0; j < bc; j++) mx = s[j] > mx ? s[j] : mx;
                float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
                for (int j = 0; j < bc; j++) {
                    float p = fast_expf(s[j] - mx);
                    s[j] = p;
                    sum += p;
                }
                if (mx > m[i]) {
                    // the max grew: rescale what was accumulated so far
                    float corr = fast_expf(m[i] - mx);
                    l[i] *= corr;
                    float *a = acc + (size_t)i * HD;
                    for (int d = 0; d < HD; d++) a[d] *= corr;
                    m[i] = mx;
                }
                l[i] += sum;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, br, HD, bc, 1.0f,
                        S, bcmax, v + (size_t)k0 * ld, ld, 1.0f, acc, HD);
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
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * NH; bh++) {
        const int b = bh / NH, h = bh % NH;
        const float *q = qkv + (size_t)b * T * 3 * D + (size_t)h * HD;
        fwd_head(out + (size_t)b * T * D + (size_t)h * HD, lse + (size_t)bh * T,
                 q, q + D, q + 2 * D, T, HD, 3 * D, D, scale);
    }
}

static void bwd_head(float *dq, float *dk, float *dv, const float *dout,
                     const float *q, const float *k, const float *v,
                     const float *out, const float *lse,
                     int T, int HD, int ld, int ldo, float scale) {
    float P[ATTN_BR * ATTN_BC];
    float dP[ATTN_BR * ATTN_BC];
    float Di[ATTN_BR];
    const int bcmax = attn_bc(HD);
    for (int q0 = 0; q0 < T; q0 += ATTN_BR) {
        const int br = imin(ATTN_BR, T - q0);
        for (int i = 0; i < br; i++) {
            const float *o = out + (size_t)(q0 + i) * ldo;
            const float *g = dout + (size_t)(q0 + i) * ldo;
            float s = 0.0f;
            for (int d = 0; d < HD; d++) s += o[d] * g[d];
            Di[i] = s;
        }
        const float *dO = dout + (size_t)q0 * ldo;
        for (int k0 = 0; k0 < T; k0 += bcmax) {
            const int bc = imin(bcmax, T - k0);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, br, bc, HD, scale,
                        q + (size_t)q0 * ld, ld, k + (size_t)k0 * ld, ld, 0.0f, P, bcmax);
            for (int i = 0; i < br; i++) {
                float *p = P + (size_t)i * bcmax;
                const float L = lse[q0 + i];
#pragma omp simd
                for (int j = 0; j < bc; j++) p[j] = fast_expf(p[j] - L);
            }
            // dV += P^T dO
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, bc, HD, br, 1.0f,
                        P, bcmax, dO, ldo, 1.0f, dv + (size_t)k0 * ld, ld);
            // dP = dO V^T
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, br, bc, HD, 1.0f,
                        dO, ldo, v + (size_t)k0 * ld, ld, 0.0f, dP, bcmax);
            for (int i = 0; i < br; i++) {
                float *g = dP + (size_t)i * bcmax;
                const float *p = P + (size_t)i * bcmax;
                const float di = Di[i];
#pragma omp simd
                for (int j = 0; j < bc; j++) g[j] = p[j] * (g[j] - di);
            }
            // dQ += scale dS K ; dK += scale dS^T Q
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, br, HD, bc, scale,
                        dP, bcmax, k + (size_t)k0 * ld, ld, 1.0f, dq + (size_t)q0 * ld, ld);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, bc, HD, br, scale,
                        dP, bcmax, q + (size_t)q0 * ld, ld, 1.0f, dk + (size_t)k0 * ld, ld);
        }
    }
}

void attention_backward_cpu(float *dqkv, const float *dout, const float *qkv,
                        const float *out, const float *lse,
                        int B, int T, int NH, int HD) {
    // dqkv, qkv (B,T,3,NH,HD); dout, out (B,T,NH,HD); lse (B,NH,T)
    CHECK(B > 0 && T > 0 && NH > 0 && HD > 0 && HD <= ATTN_HD_MAX);
    const int D = NH * HD;
    const float scale = 1.0f / sqrtf((float)HD);
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * NH; bh++) {
        const int b = bh / NH, h = bh % NH;
        const size_t qo = (size_t)b * T * 3 * D + (size_t)h * HD;
        const size_t oo = (size_t)b * T * D + (size_t)h * HD;
        float *dq = dqkv + qo;
        const float *q = qkv + qo;
        bwd_head(dq, dq + D, dq + 2 * D, dout + oo, q, q + D, q + 2 * D,
                 out + oo, lse + (size_t)bh * T, T, HD, 3 * D, D, scale);
    }
}
