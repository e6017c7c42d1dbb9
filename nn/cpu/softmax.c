// softmax.c: CPU softmax over the last dim (see nn/activation.h).
// One row per thread iteration; row sums in double, in index order.
#include "nn/cpu/ops.h"
#include "nn/cpu/par.h"

#include <math.h>

#include "core/base.h"

void softmax_forward_cpu(float *out, const float *inp, int N, int C) {
    // out, inp (N,C)
    CHECK(N >= 0 && C > 0);
    #pragma omp parallel for schedule(static) if (PAR((int64_t)N * C))
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *y = out + (size_t)n * C;
        float mx = x[0];
        for (int i = 1; i < C; i++) if (x[i] > mx) mx = x[i];
        double s = 0.0;
        for (int i = 0; i < C; i++) { y[i] = expf(x[i] - mx); s += y[i]; }
        float inv = (float)(1.0 / s);
        for (int i = 0; i < C; i++) y[i] *= inv;
    }
}

void softmax_backward_cpu(float *dinp, const float *dout, const float *out, int N, int C) {
    // dinp, dout, out (N,C)
    CHECK(N >= 0 && C > 0);
    #pragma omp parallel for schedule(static) if (PAR((int64_t)N * C))
    for (int n = 0; n < N; n++) {
        const float *y = out + (size_t)n * C, *dy = dout + (size_t)n * C;
        double s = 0.0;
        for (int i = 0; i < C; i++) s += (double)dy[i] * y[i];
        float sf = (float)s;
        float *dx = dinp + (size_t)n * C;
        for (int i = 0; i < C; i++) dx[i] += y[i] * (dy[i] - sf);
    }
}
