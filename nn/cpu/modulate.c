// modulate.c: CPU adaLN modulate and gated residual (see nn/modulate.h).
#include "nn/cpu/ops.h"
#include "nn/cpu/par.h"

#include <stddef.h>
#include <string.h>

#include "core/base.h"
#include "nn/cpu/fastexp.h"

// Row helpers built for AVX-512 / AVX2 / x86-64 (CPU_CLONES; the plain loops
// were scalar x86-64 code). Element-wise only, no reordered sums and no
// contraction (ISO C mode), so the bits equal the plain loops' in any width.
CPU_CLONES static void h_mod(float *o, const float *x, const float *sc, const float *sh,
                             int n) {
    #pragma omp simd
    for (int c = 0; c < n; c++) o[c] = x[c] * (1.0f + sc[c]) + sh[c];
}
CPU_CLONES static void h_mod_dx(float *d, const float *g, const float *sc, int n) {
    #pragma omp simd
    for (int c = 0; c < n; c++) d[c] += g[c] * (1.0f + sc[c]);
}
CPU_CLONES static void h_mod_dx_set(float *d, const float *g, const float *sc, int n) {
    #pragma omp simd
    for (int c = 0; c < n; c++) d[c] = g[c] * (1.0f + sc[c]);
}
CPU_CLONES static void h_mul(float *d, const float *a, const float *b, int n) {
    #pragma omp simd
    for (int c = 0; c < n; c++) d[c] = a[c] * b[c];
}
CPU_CLONES static void h_acc(float *d, const float *g, int n) {
    #pragma omp simd
    for (int c = 0; c < n; c++) d[c] += g[c];
}
CPU_CLONES static void h_acc_mul(float *d, const float *a, const float *b, int n) {
    #pragma omp simd
    for (int c = 0; c < n; c++) d[c] += a[c] * b[c];
}
CPU_CLONES static void h_gate(float *o, const float *x, const float *gt, const float *y,
                              int n) {
    #pragma omp simd
    for (int c = 0; c < n; c++) o[c] = x[c] + gt[c] * y[c];
}

void modulate_forward_cpu(float *out, const float *x, const float *shift, const float *scale,
                      int B, int T, int C, int ld) {
    // out, x (B,T,C); shift, scale (B,ld) first C used
    CHECK(ld >= C);
#pragma omp parallel for schedule(static) if (PAR((int64_t)B * T * C))
    for (int bt = 0; bt < B * T; bt++) {
        const float *sh = shift + (size_t)(bt / T) * ld, *sc = scale + (size_t)(bt / T) * ld;
        const float *xi = x + (size_t)bt * C;
        float *o = out + (size_t)bt * C;
        h_mod(o, xi, sc, sh, C);
    }
}

// Backward with the per-image sums (dshift, dscale, dgate): with at least
// FUSE_MIN_B images the work is split by image and dout is read once (each
// image's rows give dx / dy and add into its sums); with fewer images the row
// pass stays split over all B*T rows (more threads than images) and the sums
// take a second pass. Both give the same bits.
#define FUSE_MIN_B 8

// set: dx = (the _set ops) instead of dx +=; the parameter-like gradients
// always accumulate. 0 + v == v except for v = -0 (zero-then-add gives +0),
// so set gives zero-then-add's bits up to the sign of a zero gradient.
static void modulate_bwd(float *dx, float *dshift, float *dscale, const float *dout,
                         const float *x, const float *scale, int B, int T, int C, int ld,
                         int set) {
    // dx, dout, x (B,T,C); dshift, dscale, scale (B,ld) first C used
    CHECK(ld >= C && (dx == NULL || dx != dout));
    if (B >= FUSE_MIN_B && (dshift || dscale)) {
        // one pass over dout: each image's rows give dx and add into its
        // dshift / dscale in row order (the bits of the two passes below)
#pragma omp parallel for schedule(static) if (PAR((int64_t)B * T * C))
        for (int b = 0; b < B; b++) {
            const float *sc = scale + (size_t)b * ld;
            float *dsh = dshift ? dshift + (size_t)b * ld : NULL;
            float *dsc = dscale ? dscale + (size_t)b * ld : NULL;
            for (int t = 0; t < T; t++) {
                const size_t r = ((size_t)b * T + t) * C;
                if (dx && set) h_mod_dx_set(dx + r, dout + r, sc, C);
                else if (dx) h_mod_dx(dx + r, dout + r, sc, C);
                if (dsh) h_acc(dsh, dout + r, C);
                if (dsc) h_acc_mul(dsc, dout + r, x + r, C);
            }
        }
        return;
    }
    if (dx) {
#pragma omp parallel for schedule(static) if (PAR((int64_t)B * T * C))
        for (int bt = 0; bt < B * T; bt++) {
            const float *sc = scale + (size_t)(bt / T) * ld;
            const float *g = dout + (size_t)bt * C;
            float *d = dx + (size_t)bt * C;
            if (set) h_mod_dx_set(d, g, sc, C);
            else h_mod_dx(d, g, sc, C);
        }
    }
    if (!dshift && !dscale) return;
#pragma omp parallel for schedule(static) if (PAR((int64_t)B * T * C))
    for (int b = 0; b < B; b++) {
        float *dsh = dshift ? dshift + (size_t)b * ld : NULL;
        float *dsc = dscale ? dscale + (size_t)b * ld : NULL;
        for (int t = 0; t < T; t++) {
            const float *g = dout + ((size_t)b * T + t) * C, *xi = x + ((size_t)b * T + t) * C;
            if (dsh) h_acc(dsh, g, C);
            if (dsc) h_acc_mul(dsc, g, xi, C);
        }
    }
}

void modulate_backward_cpu(float *dx, float *dshift, float *dscale, const float *dout,
                           const float *x, const float *scale, int B, int T, int C, int ld) {
    modulate_bwd(dx, dshift, dscale, dout, x, scale, B, T, C, ld, 0);
}
void modulate_backward_set_cpu(float *dx, float *dshift, float *dscale, const float *dout,
                               const float *x, const float *scale, int B, int T, int C, int ld) {
    modulate_bwd(dx, dshift, dscale, dout, x, scale, B, T, C, ld, 1);
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
        h_gate(o, xi, gt, yi, C);
    }
}

static void gate_bwd(float *dx, float *dy, float *dgate, const float *dout, const float *y,
                     const float *gate, int B, int T, int C, int ld, int set) {
    // dx, dy, dout, y (B,T,C); dgate, gate (B,ld) first C used
    CHECK(ld >= C && dx != dout && dy != dout);
    if (B >= FUSE_MIN_B && dgate) {
        // one pass over dout, as modulate_bwd's (the bits of the two passes below)
#pragma omp parallel for schedule(static) if (PAR((int64_t)B * T * C))
        for (int b = 0; b < B; b++) {
            const float *gt = gate + (size_t)b * ld;
            float *dg = dgate + (size_t)b * ld;
            for (int t = 0; t < T; t++) {
                const size_t r = ((size_t)b * T + t) * C;
                const float *g = dout + r;
                if (dx && set) memcpy(dx + r, g, sizeof(float) * C);
                else if (dx) h_acc(dx + r, g, C);
                if (dy && set) h_mul(dy + r, gt, g, C);
                else if (dy) h_acc_mul(dy + r, gt, g, C);
                h_acc_mul(dg, g, y + r, C);
            }
        }
        return;
    }
    if (dx || dy) {
#pragma omp parallel for schedule(static) if (PAR((int64_t)B * T * C))
        for (int bt = 0; bt < B * T; bt++) {
            const float *gt = gate + (size_t)(bt / T) * ld;
            const float *g = dout + (size_t)bt * C;
            if (dx && set) memcpy(dx + (size_t)bt * C, g, sizeof(float) * C);
            else if (dx) h_acc(dx + (size_t)bt * C, g, C);
            if (dy && set) h_mul(dy + (size_t)bt * C, gt, g, C);
            else if (dy) h_acc_mul(dy + (size_t)bt * C, gt, g, C);
        }
    }
    if (!dgate) return;
#pragma omp parallel for schedule(static) if (PAR((int64_t)B * T * C))
    for (int b = 0; b < B; b++) {
        float *dg = dgate + (size_t)b * ld;
        for (int t = 0; t < T; t++) {
            const float *g = dout + ((size_t)b * T + t) * C, *yi = y + ((size_t)b * T + t) * C;
            h_acc_mul(dg, g, yi, C);
        }
    }
}

void gate_residual_backward_cpu(float *dx, float *dy, float *dgate, const float *dout,
                                const float *y, const float *gate, int B, int T, int C, int ld) {
    gate_bwd(dx, dy, dgate, dout, y, gate, B, T, C, ld, 0);
}
void gate_residual_backward_set_cpu(float *dx, float *dy, float *dgate, const float *dout,
                                    const float *y, const float *gate, int B, int T, int C,
                                    int ld) {
    gate_bwd(dx, dy, dgate, dout, y, gate, B, T, C, ld, 1);
}
