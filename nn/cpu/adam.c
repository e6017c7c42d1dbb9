// adam.c: the host Adam / AdamW update (see adam.h).
// Built with -fno-math-errno (Makefile): with errno semantics gcc keeps
// sqrtf a scalar call and cannot vectorise the loop; the square root itself
// is the same correctly rounded IEEE operation either way.
#include "nn/cpu/adam.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "nn/cpu/fastexp.h"
#include "nn/cpu/par.h"

// Longest piece handed to one adam_chunk call (every element is
// independent, so how the elements are split never changes the bits).
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

CPU_CLONES double sumsq_cpu(const float *g, int64_t n) {
    double s = 0.0;
    #pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return s;
}

// The EMA of one piece: the same plain loop as nn/ema.c's (ISO C mode,
// -std=c11, does not contract s*d + p*w into one FMA, so the shadow has
// ema_update's bits; no CPU_CLONES: the loop is memory-bound).
static void ema_piece(float *s, const float *p, int64_t n, float d, float w) {
    for (int64_t k = 0; k < n; k++) s[k] = s[k] * d + p[k] * w;
}

void adam_tail_cpu(const adam_job *J, int64_t lo, int64_t len) {
    if (J->shadow) ema_piece(J->shadow + lo, J->p + lo, len, J->ema_d, J->ema_w);
    if (J->zero_g) memset(J->g + lo, 0, sizeof(float) * (size_t)len);
}

void adam_update_all_cpu(const adam_job *jobs, int njobs) {
    int64_t total = 0;
    for (int j = 0; j < njobs; j++) total += jobs[j].n;
    #pragma omp parallel if (PAR(total))
    {
        // This thread's share [e0, e1) of the concatenated elements, walked
        // job by job in pieces of at most ADAM_CHUNK.
        const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
        const int64_t e0 = total * t / nt, e1 = total * (t + 1) / nt;
        int64_t base = 0;
        for (int j = 0; j < njobs && base < e1; base += jobs[j].n, j++) {
            const adam_job *J = &jobs[j];
            int64_t lo = e0 > base ? e0 - base : 0, hi = e1 - base < J->n ? e1 - base : J->n;
            for (; lo < hi; lo += ADAM_CHUNK) {
                const int64_t len = hi - lo < ADAM_CHUNK ? hi - lo : ADAM_CHUNK;
                adam_chunk(J->p + lo, J->g + lo, J->m + lo, J->v + lo, len, &J->k);
                adam_tail_cpu(J, lo, len);
            }
        }
    }
}
