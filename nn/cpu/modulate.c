// modulate.c: CPU adaLN modulate and gated residual (see nn/modulate.h).
#include "nn/cpu/ops.h"
#include "nn/cpu/par.h"

#include <stddef.h>

#include "core/base.h"

void modulate_forward_cpu(float *out, const float *x, const float *shift, const float *scale,
                      int B, int T, int C, int ld) {
    // out, x (B,T,C); shift, scale (B,ld) first C used
    CHECK(ld >= C);
#pragma omp parallel for schedule(static) if (PAR((int64_t)B * T * C))
    for (int bt = 0; bt < B * T; bt++) {
        const float *sh = shift + (size_t)(bt / T) * ld, *sc = scale + (size_t)(bt / T) * ld;
        const float *xi = x + (size_t)bt * C;
        float *o = out + (size_t)bt * C;
        for (int c = 0; c < C; c++) o[c] = xi[c] * (1.0f + sc[c]) + sh[c];
    }
}

void modulate_backward_cpu(float *dx, float *dshift, float *dscale, const float *dout,
                       const float *x, const float *scale, int B, int T, int C, int ld) {
    // dx, dout, x (B,T,C); dshift, dscale, scale (B,ld) first C used
    CHECK(ld >= C && (dx == NULL || dx != dout));
    if (dx) {
#pragma omp parallel for schedule(static) if (PAR((int64_t)B * T * C))
        for (int bt = 0; bt < B * T; bt++) {
            const float *sc = scale + (size_t)(bt / T) * ld;
            const float *g = dout + (size_t)bt * C;
            float *d = dx + (size_t)bt * C;
            for (int c = 0; c < C; c++) d[c] += g[c] * (1.0f + sc[c]);
        }
    }
    if (!dshift && !dscale) return;
#pragma omp parallel for schedule(static) if (PAR((int64_t)B * T * C))
    for (int b = 0; b < B; b++) {
        float *dsh = dshift ? dshift + (size_t)b * ld : NULL;
        float *dsc = dscale ? dscale + (size_t)b * ld : NULL;
        for (int t = 0; t < T; t++) {
            const float *g = dout + ((size_t)b * T + t) * C, *xi = x + ((size_t)b * T + t) * C;
            if (dsh) for (int c = 0; c < C; c++) dsh[c] += g[c];
            if (dsc) for (int c = 0; c < C; c++) dsc[c] += g[c] * xi[c];
        }
    }
}

void gate_residual_forward_cpu(float *out, const float *x, const float *y, const float *gate,
                           int B, int T, int C, int ld) {
    // out, x, y (B,T,C); gate (B,ld) first C used
    CHECK(ld >= C);
#pragma omp parallel for schedule(static) if (PAR((int64_t)B * T * C))
    for (int bt = 0; bt < B * T; bt++) {
        const float *gt = gate + (size_t)(bt / T) * ld;
        const float *xi = x + (size_t)bt * C, *yi = y + (size_t)bt * C;
        float *o = out + (size_t)bt * C;
        for (int c = 0; c < C; c++) o[c] = xi[c] + gt[c] * yi[c];
    }
}

void gate_residual_backward_cpu(float *dx, float *dy, float *dgate, const float *dout,
                            const float *y, const float *gate, int B, int T, int C, int ld) {
    // dx, dy, dout, y (B,T,C); dgate, gate (B,ld) first C used
    CHECK(ld >= C && dx != dout && dy != dout);
    if (dx || dy) {
#pragma omp parallel for schedule(static) if (PAR((int64_t)B * T * C))
        for (int bt = 0; bt < B * T; bt++) {
            const float *gt = gate + (size_t)(bt / T) * ld;
            const float *g = dout + (size_t)bt * C;
            if (dx) { float *d = dx + (size_t)bt * C; for (int c = 0; c < C; c++) d[c] += g[c]; }
            if (dy) { float *d = dy + (size_t)bt * C; for (int c = 0; c < C; c++) d[c] += gt[c] * g[c]; }
        }
    }
    if (!dgate) return;
#pragma omp parallel for schedule(static) if (PAR((int64_t)B * T * C))
    for (int b = 0; b < B; b++) {
        float *dg = dgate + (size_t)b * ld;
        for (int t = 0; t < T; t++) {
            const float *g = dout + ((size_t)b * T + t) * C, *yi = y + ((size_t)b * T + t) * C;
            for (int c = 0; c < C; c++) dg[c] += g[c] * yi[c];
        }
    }
}
