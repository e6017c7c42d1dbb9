// loss_vae_terms.h: the per-element bodies of the CUDA latent-side losses
// (loss_vae.cu: KL, VE, magnitude regularisers, reparameterisation; the
// semantics are nn/loss.h's). Written once as plain C functions that nvcc
// compiles for the device and a C compiler for the host, so
// tests/cuda/test_toy_loss_emul runs the kernels' arithmetic on the CPU
// against nn/cpu/loss_vae.c without a GPU. Each formula is the CPU's, in the
// same precision (double terms and gradient scales, float z and reparam
// gradient), so device and host differ by the device's exp/expm1 and by
// nvcc's FMA contraction (--fmad=true, the default: a*b + c becomes one
// fused multiply-add, e.g. reparam's mu + sigma * eps and its gradient's +=;
// seen in the PTX), i.e. a rounding or so per term. The host emulation's
// bit equality covers the formulas, not the device's last bits.
// Not here: the reductions and launches (loss_vae.cu).
#ifndef NN_CUDA_LOSS_VAE_TERMS_H
#define NN_CUDA_LOSS_VAE_TERMS_H

#include <math.h>
#include <stdint.h>

#include "nn/loss.h"

#ifdef __CUDACC__
#define LVT_FN static __host__ __device__ inline
#else
#define LVT_FN static inline
#endif

LVT_FN float lvt_clamp(float lv) { return lv < LOGVAR_MIN ? LOGVAR_MIN : (lv > LOGVAR_MAX ? LOGVAR_MAX : lv); }
// torch.clamp's gradient rule: passes on the closed interval.
LVT_FN int lvt_inside(float lv) { return lv >= LOGVAR_MIN && lv <= LOGVAR_MAX; }

// ---- summed terms (the forward values: sum / count, as the CPU) ------------
LVT_FN double lvt_kl_term(float mu, float lv) {
    double l = lvt_clamp(lv);
    return (double)mu * mu + exp(l) - 1.0 - l;
}
LVT_FN double lvt_ve_term(float lv, int kind, double delta) {
    double l = lvt_clamp(lv);
    if (kind == VE_INV_VAR) return 1.0 / (exp(l) + delta);
    if (kind == VE_NEG_VAR) return -exp(l);
    return -0.5 * l;
}
LVT_FN double lvt_mag_term(float mu, double tau) {
    double e = fabs((double)mu) - tau;
    return e > 0.0 ? expm1(e) : 0.0;
}
LVT_FN double lvt_sq_diff(float p, float t) {
    double d = (double)p - t;
    return d * d;
}

// ---- element i of each backward / element-wise op ---------------------------
// k = dloss / B (KL), dloss / n (VE, magnitude (a)).
LVT_FN void lvt_kl_bwd(float *dmu, float *dlv, const float *mu, const float *lv, int64_t i, double k) {
    if (dmu) dmu[i] += (float)(k * mu[i]);
    if (dlv && lvt_inside(lv[i])) dlv[i] += (float)(k * 0.5 * (exp((double)lv[i]) - 1.0));
}
LVT_FN void lvt_ve_bwd(float *dlv, const float *lv, int64_t i, int kind, double delta, double k) {
    if (!lvt_inside(lv[i])) return;
    double v = exp((double)lv[i]), g;
    if (kind == VE_INV_VAR) {
        double d = v + delta;
        g = -v / (d * d);
    } else if (kind == VE_NEG_VAR) {
        g = -v;
    } else {
        g = -0.5;
    }
    dlv[i] += (float)(k * g);
}
LVT_FN void lvt_mag_elem_bwd(float *dmu, const float *mu, int64_t i, double tau, double k) {
    double a = fabs((double)mu[i]) - tau;
    if (a > 0.0) dmu[i] += (float)(k * exp(a) * (mu[i] > 0.0f ? 1.0 : -1.0));
}
// Magnitude (b): element i of mu viewed as (B, C, inner); ssq[c] = sum over
// (B, inner) of mu^2 for channel c; M = B * inner.
LVT_FN void lvt_mag_global_bwd(float *dmu, const float *mu, int64_t i, const double *ssq, int C,
                               int inner, double M, double tau, double dloss) {
    int c = (int)((i / inner) % C);
    double m = sqrt(ssq[c] / M);
    if (!(m > tau) || m <= 0.0) return;
    double k = dloss * exp(m - tau) / ((double)C * M * m);
    dmu[i] += (float)(k * mu[i]);
}
LVT_FN void lvt_reparam_fwd(float *z, const float *mu, const float *lv, const float *eps, int64_t i) {
    z[i] = mu[i] + expf(0.5f * lvt_clamp(lv[i])) * eps[i];
}
LVT_FN void lvt_reparam_bwd(float *dmu, float *dlv, const float *dz, const float *lv, const float *eps,
                            int64_t i) {
    if (dmu) dmu[i] += dz[i];
    if (dlv && lvt_inside(lv[i])) dlv[i] += dz[i] * eps[i] * 0.5f * expf(0.5f * lv[i]);
}

#endif
