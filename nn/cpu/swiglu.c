// swiglu.c: CPU SwiGLU gate (see nn/swiglu.h).
// d/da silu(a) = s + a s (1 - s), s = sigmoid(a).
#include "nn/cpu/ops.h"

#include <math.h>

#include "core/base.h"

void swiglu_forward_cpu(float *h, const float *x12, int N, int H) {
    // h (N,H), x12 (N,2H)
    CHECK(N >= 0 && H > 0);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *a = x12 + (size_t)n * 2 * H, *b = a + H;
        float *o = h + (size_t)n * H;
        for (int i = 0; i < H; i++) o[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
    }
}

void swiglu_backward_cpu(float *dx12, const float *dh, const float *x12, int N, int H) {
    // dx12 (N,2H), dh (N,H), x12 (N,2H)
    CHECK(N >= 0 && H > 0);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *a = x12 + (size_t)n * 2 * H, *b = a + H;
        const float *g = dh + (size_t)n * H;
        float *da = dx12 + (size_t)n * 2 * H, *db = da + H;
        for (int i = 0; i < H; i++) {
            const float s = 1.0f / (1.0f + expf(-a[i]));
            da[i] += g[i] * b[i] * (s + a[i] * s * (1.0f - s));
            db[i] += g[i] * a[i] * s;
        }
    }
}
