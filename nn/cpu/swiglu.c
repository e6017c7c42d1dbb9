// swiglu.c: CPU SwiGLU gate (see nn/swiglu.h).
// d/da silu(a) = s + a s (1 - s), s = sigmoid(a).
#include "nn/cpu/ops.h"
#include "nn/cpu/par.h"

#include <math.h>

#include "nn/cpu/fastexp.h"

#include "core/base.h"

// One row each, vectorised (nn/cpu/fastexp.h; OpenMP bodies cannot carry
// the clones themselves).
CPU_CLONES static void row_fwd(float *o, const float *a, const float *b, int H) {
    #pragma omp simd
    for (int i = 0; i < H; i++) o[i] = a[i] * fast_sigmoidf(a[i]) * b[i];
}
CPU_CLONES static void row_bwd(float *da, float *db, const float *g, const float *a,
                               const float *b, int H) {
    #pragma omp simd
    for (int i = 0; i < H; i++) {
        const float s = fast_sigmoidf(a[i]);
        da[i] += g[i] * b[i] * (s + a[i] * s * (1.0f - s));
        db[i] += g[i] * a[i] * s;
    }
}

CPU_CLONES static void row_bwd_set(float *da, float *db, const float *g, const float *a,
                                   const float *b, int H) {
    #pragma omp simd
    for (int i = 0; i < H; i++) {
        const float s = fast_sigmoidf(a[i]);
        da[i] = g[i] * b[i] * (s + a[i] * s * (1.0f - s));
        db[i] = g[i] * a[i] * s;
    }
}

void swiglu_forward_cpu(float *h, const float *x12, int N, int H) {
    // h (N,H), x12 (N,2H)
    CHECK(N >= 0 && H > 0);
#pragma omp parallel for schedule(static) if (PAR((int64_t)N * H))
    for (int n = 0; n < N; n++) {
        const float *a = x12 + (size_t)n * 2 * H, *b = a + H;
        row_fwd(h + (size_t)n * H, a, b, H);
    }
}

// set: dx12 = (swiglu_backward_set) instead of +=; same bits as zero-then-add.
static void swiglu_bwd(float *dx12, const float *dh, const float *x12, int N, int H, int set) {
    // dx12 (N,2H), dh (N,H), x12 (N,2H)
    CHECK(N >= 0 && H > 0);
#pragma omp parallel for schedule(static) if (PAR((int64_t)N * H))
    for (int n = 0; n < N; n++) {
        const float *a = x12 + (size_t)n * 2 * H, *b = a + H;
        float *da = dx12 + (size_t)n * 2 * H;
        if (set) row_bwd_set(da, da + H, dh + (size_t)n * H, a, b, H);
        else row_bwd(da, da + H, dh + (size_t)n * H, a, b, H);
    }
}

void swiglu_backward_cpu(float *dx12, const float *dh, const float *x12, int N, int H) {
    swiglu_bwd(dx12, dh, x12, N, H, 0);
}
void swiglu_backward_set_cpu(float *dx12, const float *dh, const float *x12, int N, int H) {
    swiglu_bwd(dx12, dh, x12, N, H, 1);
}
