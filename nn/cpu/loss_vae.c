// loss_vae.c: CPU latent-side losses (see nn/loss.h): KL, the VE terms, the
// magnitude regularisers and the reparameterised sample. logvar is clamped to
// [LOGVAR_MIN, LOGVAR_MAX] with torch.clamp's gradient rule (passes on the
// closed interval, zero strictly outside).
#include "nn/cpu/ops.h"
#include "nn/cpu/par.h"

#include <math.h>
#include <stddef.h>

#include "core/base.h"
#include "nn/cpu/reduce.h"

static inline float lv_clamp(float lv) {
    return lv < LOGVAR_MIN ? LOGVAR_MIN : (lv > LOGVAR_MAX ? LOGVAR_MAX : lv);
}
static inline int lv_inside(float lv) { return lv >= LOGVAR_MIN && lv <= LOGVAR_MAX; }

// ---- KL -------------------------------------------------------------------

static inline double kl_term(float mu, float lv) {
    double l = lv_clamp(lv);
    return (double)mu * mu + exp(l) - 1.0 - l;
}

double kl_loss_forward_cpu(const float *mu, const float *logvar, int B, int64_t per_image) {
    CHECK(B > 0 && per_image > 0);
    double s;
    FIXED_ORDER_SUM(s, (int64_t)B * per_image, i, kl_term(mu[i], logvar[i]));
    return 0.5 * s / B;
}

void kl_loss_backward_cpu(float *dmu, float *dlogvar, const float *mu, const float *logvar,
                      int B, int64_t per_image, float dloss) {
    CHECK(B > 0 && per_image > 0);
    const int64_t n = (int64_t)B * per_image;
    const double k = (double)dloss / B;
    #pragma omp parallel for schedule(static) if (PAR(n))
    for (int64_t i = 0; i < n; i++) {
        if (dmu) dmu[i] += (float)(k * mu[i]);
        if (dlogvar && lv_inside(logvar[i]))
            dlogvar[i] += (float)(k * 0.5 * (exp((double)logvar[i]) - 1.0));
    }
}

// ---- VE terms -------------------------------------------------------------

static inline double ve_term(float lv, ve_kind kind, double delta) {
    double l = lv_clamp(lv);
    switch (kind) {
    case VE_INV_VAR: return 1.0 / (exp(l) + delta);
    case VE_NEG_VAR: return -exp(l);
    default:         return -0.5 * l;
    }
}

double ve_loss_forward_cpu(const float *logvar, int64_t n, ve_kind kind, float delta) {
    CHECK(n > 0 && (kind == VE_INV_VAR || kind == VE_NEG_VAR || kind == VE_NEG_LOGSTD));
    double s;
    FIXED_ORDER_SUM(s, n, i, ve_term(logvar[i], kind, delta));
    return s / (double)n;
}

void ve_loss_backward_cpu(float *dlogvar, const float *logvar, int64_t n, ve_kind kind,
                      float delta, float dloss) {
    CHECK(n > 0 && (kind == VE_INV_VAR || kind == VE_NEG_VAR || kind == VE_NEG_LOGSTD));
    const double k = (double)dloss / (double)n;
    #pragma omp parallel for schedule(static) if (PAR(n))
    for (int64_t i = 0; i < n; i++) {
        if (!lv_inside(logvar[i])) continue;
        double v = exp((double)logvar[i]), g;
        if (kind == VE_INV_VAR) { double d = v + delta; g = -v / (d * d); }
        else if (kind == VE_NEG_VAR) g = -v;
        else g = -0.5;
        dlogvar[i] += (float)(k * g);
    }
}

// ---- magnitude regularisers -------------------------------------------------

static inline double mag_term(float mu, double tau) {
    double e = fabs((double)mu) - tau;
    return e > 0.0 ? expm1(e) : 0.0;
}

double mag_reg_elem_forward_cpu(const float *mu, int64_t n, float tau) {
    CHECK(n > 0);
    double s;
    FIXED_ORDER_SUM(s, n, i, mag_term(mu[i], tau));
    return s / (double)n;
}

void mag_reg_elem_backward_cpu(float *dmu, const float *mu, int64_t n, float tau, float dloss) {
    CHECK(n > 0);
    const double k = (double)dloss / (double)n;
    #pragma omp parallel for schedule(static) if (PAR(n))
    for (int64_t i = 0; i < n; i++) {
        double a = fabs((double)mu[i]) - tau;
        if (a > 0.0) dmu[i] += (float)(k * exp(a) * (mu[i] > 0.0f ? 1.0 : -1.0));
    }
}

// RMS of channel c over (B, inner), one thread per channel, fixed order.
static double channel_rms(const float *mu, int B, int C, int inner, int c) {
    double s = 0.0;
    for (int b = 0; b < B; b++) {
        const float *x = mu + ((size_t)b * C + c) * inner;
        for (int j = 0; j < inner; j++) s += (double)x[j] * x[j];
    }
    return sqrt(s / ((double)B * inner));
}

static double global_term(const float *mu, int B, int C, int inner, int c, double tau) {
    double e = channel_rms(mu, B, C, inner, c) - tau;
    return e > 0.0 ? expm1(e) : 0.0;
}

double mag_reg_global_forward_cpu(const float *mu, int B, int C, int inner, float tau) {
    CHECK(B > 0 && C > 0 && inner > 0);
    double s;
    FIXED_ORDER_SUM(s, C, c, global_term(mu, B, C, inner, (int)c, tau));
    return s / C;
}

void mag_reg_global_backward_cpu(float *dmu, const float *mu, int B, int C, int inner,
                             float tau, float dloss) {
    CHECK(B > 0 && C > 0 && inner > 0);
    const double M = (double)B * inner;
    #pragma omp parallel for schedule(static) if (PAR((int64_t)B * C * inner))
    for (int c = 0; c < C; c++) {
        double m = channel_rms(mu, B, C, inner, c);
        // m > tau and m > 0: dL/dmu = exp(m - tau)/C * mu / (M m)
        if (!(m > tau) || m <= 0.0) continue;
        double k = (double)dloss * exp(m - tau) / ((double)C * M * m);
        for (int b = 0; b < B; b++) {
            size_t off = ((size_t)b * C + c) * inner;
            for (int j = 0; j < inner; j++) dmu[off + j] += (float)(k * mu[off + j]);
        }
    }
}

// ---- reparameterisation -----------------------------------------------------

void reparam_forward_cpu(float *z, const float *mu, const float *logvar,
                     const float *eps, int64_t n) {
    // z, mu, logvar, eps (n)
    #pragma omp parallel for schedule(static) if (PAR(n))
    for (int64_t i = 0; i < n; i++) z[i] = mu[i] + expf(0.5f * lv_clamp(logvar[i])) * eps[i];
}

void reparam_backward_cpu(float *dmu, float *dlogvar, const float *dz,
                      const float *logvar, const float *eps, int64_t n) {
    #pragma omp parallel for schedule(static) if (PAR(n))
    for (int64_t i = 0; i < n; i++) {
        if (dmu) dmu[i] += dz[i];
        if (dlogvar && lv_inside(logvar[i]))
            dlogvar[i] += dz[i] * eps[i] * 0.5f * expf(0.5f * logvar[i]);
    }
}
