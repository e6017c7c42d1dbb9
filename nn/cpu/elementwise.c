// elementwise.c: CPU element-wise helpers (see nn/elementwise.h).
#include "nn/cpu/ops.h"
#include "nn/cpu/par.h"

#include <stddef.h>

#include "core/base.h"

void add_forward_cpu(float *out, const float *a, const float *b, int64_t n) {
    #pragma omp parallel for schedule(static) if (PAR(n))
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}
void add_backward_cpu(float *da, float *db, const float *dout, int64_t n) {
    if (da) {
        #pragma omp parallel for schedule(static) if (PAR(n))
        for (int64_t i = 0; i < n; i++) da[i] += dout[i];
    }
    if (db) {
        #pragma omp parallel for schedule(static) if (PAR(n))
        for (int64_t i = 0; i < n; i++) db[i] += dout[i];
    }
}
void add_inplace_cpu(float *x, const float *y, int64_t n) {
    #pragma omp parallel for schedule(static) if (PAR(n))
    for (int64_t i = 0; i < n; i++) x[i] += y[i];
}

void mul_forward_cpu(float *out, const float *a, const float *b, int64_t n) {
    #pragma omp parallel for schedule(static) if (PAR(n))
    for (int64_t i = 0; i < n; i++) out[i] = a[i] * b[i];
}
void mul_backward_cpu(float *da, float *db, const float *dout, const float *a,
                  const float *b, int64_t n) {
    #pragma omp parallel for schedule(static) if (PAR(n))
    for (int64_t i = 0; i < n; i++) {
        float g = dout[i];
        if (da) da[i] += g * b[i];
        if (db) db[i] += g * a[i];
    }
}

void scale_forward_cpu(float *out, const float *a, float s, int64_t n) {
    #pragma omp parallel for schedule(static) if (PAR(n))
    for (int64_t i = 0; i < n; i++) out[i] = s * a[i];
}
void scale_backward_cpu(float *da, const float *dout, float s, int64_t n) {
    #pragma omp parallel for schedule(static) if (PAR(n))
    for (int64_t i = 0; i < n; i++) da[i] += s * dout[i];
}

void add_channel_bias_forward_cpu(float *out, const float *inp, const float *bias,
                              int B, int C, int HW) {
    // out, inp (B,C,HW), bias (C)
    CHECK(B >= 0 && C > 0 && HW > 0);
    #pragma omp parallel for collapse(2) schedule(static) if (PAR((int64_t)B * C * HW))
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            size_t off = ((size_t)b * C + c) * HW;
            for (int i = 0; i < HW; i++) out[off + i] = inp[off + i] + bias[c];
        }
}
void add_channel_bias_backward_cpu(float *dinp, float *dbias, const float *dout,
                               int B, int C, int HW) {
    // dinp, dout (B,C,HW), dbias (C)
    CHECK(B >= 0 && C > 0 && HW > 0);
    if (dinp) add_inplace_cpu(dinp, dout, (int64_t)B * C * HW);
    if (dbias) {
        #pragma omp parallel for schedule(static) if (PAR((int64_t)B * C * HW))
        for (int c = 0; c < C; c++) {
            double s = 0.0;   // one thread per channel, images in order
            for (int b = 0; b < B; b++) {
                const float *d = dout + ((size_t)b * C + c) * HW;
                for (int i = 0; i < HW; i++) s += d[i];
            }
            dbias[c] += (float)s;
        }
    }
}
