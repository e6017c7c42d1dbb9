// rope.c: CPU 2D RoPE (see nn/rope.h for the exact formula).
#include "nn/cpu/ops.h"
#include "nn/cpu/par.h"

#include <math.h>

#include "core/base.h"
#include "nn/cpu/fastexp.h"

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
