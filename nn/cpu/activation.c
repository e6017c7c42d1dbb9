// activation.c: CPU element-wise activations (see nn/activation.h).
// No reductions, so results do not depend on the thread count.
#include "nn/cpu/ops.h"

#include <math.h>

#define GELU_K 0.7978845608028654f   // sqrt(2/pi)
#define GELU_A 0.044715f

void relu_forward_cpu(float *out, const float *inp, int64_t n) {
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}
void relu_backward_cpu(float *dinp, const float *dout, const float *inp, int64_t n) {
    // Gradient 0 at x == 0, as PyTorch.
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) if (inp[i] > 0.0f) dinp[i] += dout[i];
}

void silu_forward_cpu(float *out, const float *inp, int64_t n) {
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) out[i] = inp[i] / (1.0f + expf(-inp[i]));
}
void silu_backward_cpu(float *dinp, const float *dout, const float *inp, int64_t n) {
    // d/dx x*s(x) = s(x) * (1 + x*(1 - s(x)))
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float x = inp[i], s = 1.0f / (1.0f + expf(-x));
        dinp[i] += dout[i] * s * (1.0f + x * (1.0f - s));
    }
}

void gelu_forward_cpu(float *out, const float *inp, int64_t n) {
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_K * (x + GELU_A * x * x * x)));
    }
}
void gelu_backward_cpu(float *dinp, const float *dout, const float *inp, int64_t n) {
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_K * (x + GELU_A * x * x * x);
        float t = tanhf(u);
        float du = GELU_K * (1.0f + 3.0f * GELU_A * x * x);
        dinp[i] += dout[i] * (0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du);
    }
}

void leaky_relu_forward_cpu(float *out, const float *inp, int64_t n, float slope) {
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : slope * inp[i];
}
void leaky_relu_backward_cpu(float *dinp, const float *dout, const float *inp,
                         int64_t n, float slope) {
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) dinp[i] += inp[i] > 0.0f ? dout[i] : slope * dout[i];
}
