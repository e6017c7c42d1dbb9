// adam.c: the host Adam / AdamW update (see adam.h).
// Built with -fno-math-errno (Makefile): with errno semantics gcc keeps
// sqrtf a scalar call and cannot vectorise the loop; the square root itself
// is the same correctly rounded IEEE operation either way.
#include "nn/cpu/adam.h"

#include <math.h>

#include "nn/cpu/fastexp.h"
#include "nn/cpu/par.h"

// Elements per task: fixed, so the split never depends on the thread count
// (it could not change the bits anyway: every element is independent).
enum { ADAM_CHUNK = 16384 };

// One element, torch's expression order: lerp for m (PyTorch's two-branch
// form, w1 < 0.5 selects the first), addcmul for v ((value*t1)*t2), and
// addcdiv for p ((value*t1)/t2). MODE: 0 no decay, 1 AdamW, 2 Adam L2.
// The loop once per (mode, lerp form) so each copy is branch-free and
// vectorised (the constants in locals: read through k they could alias the
// stores); the clones make it AVX-512 / AVX2 / x86-64.
#define ADAM_LOOP(MODE, LO)                                                     \
    do {                                                                        \
        _Pragma("omp simd")                                                     \
        for (int64_t i = 0; i < n; i++) {                                       \
            float gk = g[i], pk = p[i];                                         \
            if (MODE == 1) pk = pk * decay;                                     \
            else if (MODE == 2) gk = gk + wd * pk;                              \
            float mk = LO ? m[i] + w1 * (gk - m[i]) : gk - (gk - m[i]) * (1.0f - w1); \
            float vk = v[i] * b2 + w2 * gk * gk;                                \
            float denom = sqrtf(vk) / bc2_sqrt + eps;                           \
            m[i] = mk;                                                          \
            v[i] = vk;                                                          \
            p[i] = pk + (-step_size) * mk / denom;                              \
        }                                                                       \
    } while (0)

CPU_CLONES static void adam_chunk(float *p, const float *g, float *m, float *v, int64_t n,
                                  const adam_consts *k) {
    const float step_size = k->step_size, bc2_sqrt = k->bc2_sqrt, decay = k->decay;
    const float wd = k->wd, w1 = k->w1, b2 = k->b2, w2 = k->w2, eps = k->eps;
    const int mode = wd == 0.0f ? 0 : k->decoupled ? 1 : 2;
    switch (mode * 2 + (w1 < 0.5f)) {
    case 0: ADAM_LOOP(0, 0); break;
    case 1: ADAM_LOOP(0, 1); break;
    case 2: ADAM_LOOP(1, 0); break;
    case 3: ADAM_LOOP(1, 1); break;
    case 4: ADAM_LOOP(2, 0); break;
    default: ADAM_LOOP(2, 1); break;
    }
}

void adam_update_cpu(float *p, const float *g, float *m, float *v, int64_t n,
                     const adam_consts *k) {
    const int64_t chunks = (n + ADAM_CHUNK - 1) / ADAM_CHUNK;
    #pragma omp parallel for schedule(static) if (chunks > 1 && PAR(n))
    for (int64_t c = 0; c < chunks; c++) {
        const int64_t lo = c * ADAM_CHUNK, len = n - lo < ADAM_CHUNK ? n - lo : ADAM_CHUNK;
        adam_chunk(p + lo, g + lo, m + lo, v + lo, len, k);
    }
}

CPU_CLONES double sumsq_cpu(const float *g, int64_t n) {
    double s = 0.0;
    #pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return s;
}
