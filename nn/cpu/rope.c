// rope.c: CPU 2D RoPE (see nn/rope.h for the exact formula).
#include "nn/cpu/ops.h"
#include "nn/cpu/par.h"

#include <math.h>
#include <string.h>

#include "core/base.h"
#include "nn/cpu/fastexp.h"
#include "nn/cpu/rms_rows.h"

// One head's rotation, built for AVX-512 / AVX2 / x86-64 (CPU_CLONES; the
// plain loops were scalar x86-64 code, 1.6-2.4x slower). Each pair reads and
// writes only its own two floats (so o == x is fine). GCC's vectoriser turns
// each pair's products and sum/difference into one vfmaddsub (one rounding
// instead of two), so the AVX2/AVX-512 clones differ from the x86-64 code in
// the last bit; results never depend on the thread count.
CPU_CLONES static void rope_row(float *o, const float *x, const float *c, const float *s,
                                int HD) {
    #pragma omp simd
    for (int p = 0; p < HD / 2; p++) {
        const float x0 = x[2 * p], x1 = x[2 * p + 1];
        o[2 * p] = x0 * c[2 * p] - x1 * s[2 * p];
        o[2 * p + 1] = x1 * c[2 * p + 1] + x0 * s[2 * p + 1];
    }
}
CPU_CLONES static void rope_row_bwd(float *dx, const float *g, const float *c, const float *s,
                                    int HD) {
    #pragma omp simd
    for (int p = 0; p < HD / 2; p++) {
        const float g0 = g[2 * p], g1 = g[2 * p + 1];
        dx[2 * p] += g0 * c[2 * p] + g1 * s[2 * p + 1];
        dx[2 * p + 1] += g1 * c[2 * p + 1] - g0 * s[2 * p];
    }
}

CPU_CLONES static void rope_row_bwd_set(float *dx, const float *g, const float *c,
                                        const float *s, int HD) {
    #pragma omp simd
    for (int p = 0; p < HD / 2; p++) {
        const float g0 = g[2 * p], g1 = g[2 * p + 1];
        dx[2 * p] = g0 * c[2 * p] + g1 * s[2 * p + 1];
        dx[2 * p + 1] = g1 * c[2 * p + 1] - g0 * s[2 * p];
    }
}

void rope2d_tables_cpu(float *cos_t, float *sin_t, int H, int W, int HD, double theta) {
    // cos_t, sin_t (H*W, HD)
    CHECK(H > 0 && W > 0 && HD > 0 && HD % 4 == 0 && theta > 1.0);
    const int Q = HD / 4;
    for (int i = 0; i < H; i++)
        for (int j = 0; j < W; j++) {
            float *c = cos_t + ((size_t)i * W + j) * HD, *s = sin_t + ((size_t)i * W + j) * HD;
            for (int p = 0; p < HD / 2; p++) {
                const int m = p < Q ? p : p - Q;
                const double pos = p < Q ? i : j;
                const double a = pos * pow(theta, -2.0 * m / (HD / 2));
                c[2 * p] = c[2 * p + 1] = (float)cos(a);
                s[2 * p] = s[2 * p + 1] = (float)sin(a);
            }
        }
}

void rope_forward_cpu(float *out, const float *inp, const float *cos_t, const float *sin_t,
                  int B, int T, int NH, int HD, int ld_out, int ld_inp) {
    // out, inp (B*T rows of stride ld, NH*HD used); cos_t, sin_t (T, HD)
    CHECK(HD % 2 == 0 && ld_out >= NH * HD && ld_inp >= NH * HD);
    CHECK(out != inp || ld_out == ld_inp);
#pragma omp parallel for schedule(static) if (PAR((int64_t)B * T * NH * HD))
    for (int bt = 0; bt < B * T; bt++) {
        const float *c = cos_t + (size_t)(bt % T) * HD, *s = sin_t + (size_t)(bt % T) * HD;
        for (int h = 0; h < NH; h++) {
            const float *x = inp + (size_t)bt * ld_inp + h * HD;
            float *o = out + (size_t)bt * ld_out + h * HD;
            rope_row(o, x, c, s, HD);
        }
    }
}

// set: dinp = (rope_backward_set) instead of +=.
static void rope_bwd(float *dinp, const float *dout, const float *cos_t, const float *sin_t,
                     int B, int T, int NH, int HD, int ld_dinp, int ld_dout, int set) {
    // dinp, dout (B*T rows of stride ld, NH*HD used); cos_t, sin_t (T, HD)
    CHECK(HD % 2 == 0 && ld_dinp >= NH * HD && ld_dout >= NH * HD && dinp != dout);
#pragma omp parallel for schedule(static) if (PAR((int64_t)B * T * NH * HD))
    for (int bt = 0; bt < B * T; bt++) {
        const float *c = cos_t + (size_t)(bt % T) * HD, *s = sin_t + (size_t)(bt % T) * HD;
        for (int h = 0; h < NH; h++) {
            const float *g = dout + (size_t)bt * ld_dout + h * HD;
            float *dx = dinp + (size_t)bt * ld_dinp + h * HD;
            if (set) rope_row_bwd_set(dx, g, c, s, HD);
            else rope_row_bwd(dx, g, c, s, HD);
        }
    }
}

void rope_backward_cpu(float *dinp, const float *dout, const float *cos_t, const float *sin_t,
                       int B, int T, int NH, int HD, int ld_dinp, int ld_dout) {
    rope_bwd(dinp, dout, cos_t, sin_t, B, T, NH, HD, ld_dinp, ld_dout, 0);
}
void rope_backward_set_cpu(float *dinp, const float *dout, const float *cos_t,
                           const float *sin_t, int B, int T, int NH, int HD, int ld_dinp,
                           int ld_dout) {
    rope_bwd(dinp, dout, cos_t, sin_t, B, T, NH, HD, ld_dinp, ld_dout, 1);
}

// ---- fused q/k RMSNorm + RoPE (nn/rope.h) ----------------------------------
// Per (token, head) row of the q and k parts, the same helper calls as the
// separate ops (rows copy, rmsnorm, rope), on a row kept in a local buffer:
// one pass over the parts instead of three, one parallel region for both.

enum { QK_CHUNKS = 16 };   // fixed row chunks of the weight-gradient sums

void qknorm_rope_forward_cpu(float *qkv, float *qraw, float *kraw, float *rstd_q, float *rstd_k,
                             const float *wq, const float *wk, const float *cos_t,
                             const float *sin_t, int B, int T, int NH, int HD, float eps) {
    CHECK(HD % 2 == 0 && HD <= 256);
    const int D = NH * HD;
#pragma omp parallel for schedule(static) if (PAR((int64_t)B * T * 2 * D))
    for (int bt = 0; bt < B * T; bt++) {
        const float *c = cos_t + (size_t)(bt % T) * HD, *s = sin_t + (size_t)(bt % T) * HD;
        float y[256];
        for (int part = 0; part < 2; part++) {
            float *raw = (part ? kraw : qraw) + (size_t)bt * D;
            float *rstd = (part ? rstd_k : rstd_q) + (size_t)bt * NH;
            const float *w = part ? wk : wq;
            float *row = qkv + (size_t)bt * 3 * D + (size_t)part * D;
            memcpy(raw, row, sizeof(float) * D);
            for (int h = 0; h < NH; h++) {
                const float *x = raw + h * HD;
                float rs = (float)(1.0 / sqrt(rms_sumsq(x, HD) / HD + eps));
                rstd[h] = rs;
                rms_apply(y, x, HD, rs, w);
                rope_row(row + h * HD, y, c, s, HD);
            }
        }
    }
}

// sw[i] += dy[i] * xhat[i] in double (the rmsnorm weight-gradient term)
CPU_CLONES static void qk_dw_row(double *sw, const float *dy, const float *x, int n, float rs) {
    #pragma omp simd
    for (int i = 0; i < n; i++) sw[i] += (double)dy[i] * (x[i] * rs);
}

void qknorm_rope_backward_cpu(float *dqkv, float *dwq, float *dwk, const float *qraw,
                              const float *kraw, const float *rstd_q, const float *rstd_k,
                              const float *wq, const float *wk, const float *cos_t,
                              const float *sin_t, int B, int T, int NH, int HD) {
    CHECK(HD % 2 == 0 && HD <= 256);
    const int D = NH * HD;
    const int64_t rows = (int64_t)B * T * NH;
    // part[p][k][i]: chunk k's sum of the weight-gradient terms of part p
    // (on the stack: 2 * 16 * HD doubles, 16 KiB at HD 64)
    double part[2][QK_CHUNKS][HD];
#pragma omp parallel for schedule(static) if (PAR(rows * HD * 2))
    for (int task = 0; task < 2 * QK_CHUNKS; task++) {
        const int p = task / QK_CHUNKS, k = task % QK_CHUNKS;
        const int64_t lo = rows * k / QK_CHUNKS, hi = rows * (k + 1) / QK_CHUNKS;
        const float *raw = p ? kraw : qraw, *rstd = p ? rstd_k : rstd_q, *w = p ? wk : wq;
        double *sw = part[p][k];   // this task's own row of partial sums
        for (int i = 0; i < HD; i++) sw[i] = 0.0;
        float dt[256];
        for (int64_t r = lo; r < hi; r++) {
            const int64_t bt = r / NH;
            const int h = (int)(r % NH);
            const float *c = cos_t + (size_t)(bt % T) * HD, *s = sin_t + (size_t)(bt % T) * HD;
            float *g = dqkv + (size_t)bt * 3 * D + (size_t)p * D + h * HD;
            const float *x = raw + (size_t)bt * D + h * HD;
            const float rs = rstd[r];
            rope_row_bwd_set(dt, g, c, s, HD);
            const float mgx = (float)(rms_bwd_dot(dt, x, w, HD, rs) / HD);
            rms_bwd_dx_set(g, dt, x, w, HD, rs, mgx);
            if (p ? dwk != NULL : dwq != NULL) qk_dw_row(sw, dt, x, HD, rs);
        }
    }
    for (int p = 0; p < 2; p++) {
        float *dw = p ? dwk : dwq;
        for (int i = 0; dw && i < HD; i++) {
            double t = 0.0;
            for (int k = 0; k < QK_CHUNKS; k++) t += part[p][k][i];
            dw[i] += (float)t;
        }
    }
}
