// rms_rows.h (private to nn/cpu): the per-row RMSNorm helpers of
// nn/cpu/norm.c, shared with the fused q/k norm + RoPE of nn/cpu/rope.c so
// both compute every row with the same code (the same bits).
#ifndef NN_CPU_RMS_ROWS_H
#define NN_CPU_RMS_ROWS_H

#include "nn/cpu/fastexp.h"

// unused: each file that includes this uses only some of them
#define RMS_ROW CPU_CLONES static __attribute__((unused))

// Built for AVX-512 / AVX2 / x86-64 (CPU_CLONES). The double sums are
// vectorised in a fixed lane order (so they depend on the data and the
// CPU's vector width, never on the thread count); the element-wise loops
// give the same bits in any width.

RMS_ROW double rms_sumsq(const float *x, int n) {
    double s = 0.0;
    #pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}
RMS_ROW void rms_apply(float *y, const float *x, int n, float rs, const float *w) {
    if (w) {
        #pragma omp simd
        for (int i = 0; i < n; i++) y[i] = x[i] * rs * w[i];
    } else {
        #pragma omp simd
        for (int i = 0; i < n; i++) y[i] = x[i] * rs;
    }
}
// sum of g * xhat with g = dy * w, xhat = x * rs
RMS_ROW double rms_bwd_dot(const float *dy, const float *x, const float *w, int n, float rs) {
    double s = 0.0;
    if (w) {
        #pragma omp simd reduction(+ : s)
        for (int i = 0; i < n; i++) s += (double)dy[i] * w[i] * (x[i] * rs);
    } else {
        #pragma omp simd reduction(+ : s)
        for (int i = 0; i < n; i++) s += (double)dy[i] * (x[i] * rs);
    }
    return s;
}
RMS_ROW void rms_bwd_dx(float *dx, const float *dy, const float *x, const float *w, int n,
                        float rs, float mgx) {
    if (w) {
        #pragma omp simd
        for (int i = 0; i < n; i++) dx[i] += rs * (dy[i] * w[i] - x[i] * rs * mgx);
    } else {
        #pragma omp simd
        for (int i = 0; i < n; i++) dx[i] += rs * (dy[i] - x[i] * rs * mgx);
    }
}

RMS_ROW void rms_bwd_dx_set(float *dx, const float *dy, const float *x, const float *w, int n,
                            float rs, float mgx) {
    if (w) {
        #pragma omp simd
        for (int i = 0; i < n; i++) dx[i] = rs * (dy[i] * w[i] - x[i] * rs * mgx);
    } else {
        #pragma omp simd
        for (int i = 0; i < n; i++) dx[i] = rs * (dy[i] - x[i] * rs * mgx);
    }
}

#endif
