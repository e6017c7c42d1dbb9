// activation.c: CPU element-wise activations (see nn/activation.h).
// No reductions, so results do not depend on the thread count.
#include "nn/cpu/ops.h"
#include "nn/cpu/par.h"

#include <math.h>

#include "nn/cpu/fastexp.h"

#define GELU_K 0.7978845608028654f   // sqrt(2/pi)
#define GELU_A 0.044715f

// ReLU, SiLU and GELU run in fixed chunks through CPU_CLONES leaf functions (the
// vectorised e^x of nn/cpu/fastexp.h instead of libm's scalar expf/tanhf);
// the chunk loop is the parallel one.
#define ACT_CHUNK 4096

CPU_CLONES static void silu_fwd_chunk(float *out, const float *inp, int64_t n) {
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) out[i] = inp[i] * fast_sigmoidf(inp[i]);
}
CPU_CLONES static void silu_bwd_chunk(float *dinp, const float *dout, const float *inp,
                                      int64_t n) {
    // d/dx x*s(x) = s(x) * (1 + x*(1 - s(x)))
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float x = inp[i], s = fast_sigmoidf(x);
        dinp[i] += dout[i] * s * (1.0f + x * (1.0f - s));
    }
}
CPU_CLONES static void silu_bwd_set_chunk(float *dinp, const float *dout, const float *inp,
                                          int64_t n) {
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float x = inp[i], s = fast_sigmoidf(x);
        dinp[i] = dout[i] * s * (1.0f + x * (1.0f - s));
    }
}
CPU_CLONES static void gelu_fwd_chunk(float *out, const float *inp, int64_t n) {
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + fast_tanhf(GELU_K * (x + GELU_A * x * x * x)));
    }
}
CPU_CLONES static void gelu_bwd_chunk(float *dinp, const float *dout, const float *inp,
                                      int64_t n) {
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_K * (x + GELU_A * x * x * x);
        float t = fast_tanhf(u);
        float du = GELU_K * (1.0f + 3.0f * GELU_A * x * x);
        dinp[i] += dout[i] * (0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du);
    }
}

CPU_CLONES static void relu_fwd_chunk(float *out, const float *inp, int64_t n) {
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}
CPU_CLONES static void relu_bwd_chunk(float *dinp, const float *dout, const float *inp,
                                      int64_t n) {
    // Gradient 0 at x == 0, as PyTorch.
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) dinp[i] += inp[i] > 0.0f ? dout[i] : 0.0f;
}
CPU_CLONES static void relu_bwd_set_chunk(float *dinp, const float *dout, const float *inp,
                                          int64_t n) {
    // 0 + (...): the bits of adding to a zeroed dinp (a -0 gradient becomes +0).
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) dinp[i] = 0.0f + (inp[i] > 0.0f ? dout[i] : 0.0f);
}

#define CHUNKED(n, CALL)                                                       \
    do {                                                                       \
        const int64_t nc_ = ((n) + ACT_CHUNK - 1) / ACT_CHUNK;                 \
        _Pragma("omp parallel for schedule(static) if (PAR(n))")               \
        for (int64_t c_ = 0; c_ < nc_; c_++) {                                 \
            const int64_t o = c_ * ACT_CHUNK;                                  \
            const int64_t m = (n) - o < ACT_CHUNK ? (n) - o : ACT_CHUNK;       \
            CALL;                                                              \
        }                                                                      \
    } while (0)

void relu_forward_cpu(float *out, const float *inp, int64_t n) {
    CHUNKED(n, relu_fwd_chunk(out + o, inp + o, m));
}
void relu_backward_cpu(float *dinp, const float *dout, const float *inp, int64_t n) {
    CHUNKED(n, relu_bwd_chunk(dinp + o, dout + o, inp + o, m));
}
void relu_backward_set_cpu(float *dinp, const float *dout, const float *inp, int64_t n) {
    CHUNKED(n, relu_bwd_set_chunk(dinp + o, dout + o, inp + o, m));
}
void silu_forward_cpu(float *out, const float *inp, int64_t n) {
    CHUNKED(n, silu_fwd_chunk(out + o, inp + o, m));
}
void silu_backward_cpu(float *dinp, const float *dout, const float *inp, int64_t n) {
    CHUNKED(n, silu_bwd_chunk(dinp + o, dout + o, inp + o, m));
}
void silu_backward_set_cpu(float *dinp, const float *dout, const float *inp, int64_t n) {
    CHUNKED(n, silu_bwd_set_chunk(dinp + o, dout + o, inp + o, m));
}
void gelu_forward_cpu(float *out, const float *inp, int64_t n) {
    CHUNKED(n, gelu_fwd_chunk(out + o, inp + o, m));
}
void gelu_backward_cpu(float *dinp, const float *dout, const float *inp, int64_t n) {
    CHUNKED(n, gelu_bwd_chunk(dinp + o, dout + o, inp + o, m));
}

void leaky_relu_forward_cpu(float *out, const float *inp, int64_t n, float slope) {
    #pragma omp parallel for schedule(static) if (PAR(n))
    for (int64_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : slope * inp[i];
}
void leaky_relu_backward_cpu(float *dinp, const float *dout, const float *inp,
                         int64_t n, float slope) {
    #pragma omp parallel for schedule(static) if (PAR(n))
    for (int64_t i = 0; i < n; i++) dinp[i] += inp[i] > 0.0f ? dout[i] : slope * dout[i];
}
