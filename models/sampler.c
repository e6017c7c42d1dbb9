// sampler.c: see sampler.h.
// Scratch layout (floats and int32, both 4 bytes, so no padding):
//   guided part (conditional and w != 1): xx (2n, dim), vv (2n, dim), yy (2n)
//   v1 (n, dim); Heun adds xe (n, dim) and v2 (n, dim).
#include "models/sampler.h"

#include <math.h>
#include <string.h>

#include "core/base.h"

smp_opts smp_opts_default(void) {
    return (smp_opts){.method = SMP_EULER, .cfg_scale = 1.0f, .cfg_lo = 0.0, .cfg_hi = 1.0,
                      .channels = 1, .guide_channels = 0, .null_class = 0};
}

int smp_opts_check(const smp_opts *o, int64_t dim) {
    if (o->method != SMP_EULER && o->method != SMP_HEUN) return SMP_ECONFIG;
    if (!isfinite(o->cfg_scale) || !isfinite(o->cfg_lo) || !isfinite(o->cfg_hi) || o->cfg_lo > o->cfg_hi)
        return SMP_ECONFIG;
    if (o->channels < 1 || dim < 1 || dim % o->channels != 0) return SMP_ECONFIG;
    if (o->guide_channels < 0 || o->guide_channels > o->channels) return SMP_ECONFIG;
    return 0;
}

const char *smp_method_name(smp_method m) { return m == SMP_HEUN ? "heun" : "euler"; }

int smp_method_parse(const char *name, smp_method *out) {
    if (!strcmp(name, "euler")) *out = SMP_EULER;
    else if (!strcmp(name, "heun")) *out = SMP_HEUN;
    else return SMP_ECONFIG;
    return 0;
}

double smp_time_shift(double t, double shift) { return shift * t / (1.0 + (shift - 1.0) * t); }

void smp_time_grid(double *ts, int steps, double shift) {
    CHECK(steps >= 1 && shift > 0.0);
    for (int k = 0; k <= steps; k++) ts[k] = (double)k / steps;
    // shift == 1 would leave every value unchanged; skipping it keeps the
    // unshifted grid free of any rounding question. The ends stay exactly 0
    // and 1 (s / (1 + (s - 1)) need not round to 1).
    if (shift != 1.0)
        for (int k = 1; k < steps; k++) ts[k] = smp_time_shift(ts[k], shift);
}

static int guided_part(const smp_opts *o, int conditional) { return conditional && o->cfg_scale != 1.0f; }

size_t smp_scratch_bytes(const smp_opts *o, int64_t n, int64_t dim, int conditional) {
    size_t m = (size_t)n * (size_t)dim, f = m * (o->method == SMP_HEUN ? 3 : 1);
    size_t bytes = sizeof(float) * f;
    if (guided_part(o, conditional)) bytes += sizeof(float) * 4 * m + sizeof(int32_t) * 2 * (size_t)n;
    return bytes;
}

int smp_guided_at(const smp_opts *o, double t, const int32_t *y) {
    return y && o->cfg_scale != 1.0f && t >= o->cfg_lo && t <= o->cfg_hi;
}

void smp_cfg_combine(float *v, const float *vc, const float *vu, int64_t n, int64_t dim,
                     const smp_opts *o) {
    // v, vc, vu (n, dim); guided prefix of each row: g elements
    int64_t g = o->guide_channels ? o->guide_channels * (dim / o->channels) : dim;
    float w = o->cfg_scale;
    for (int64_t r = 0; r < n; r++) {
        const float *c = vc + r * dim, *u = vu + r * dim;
        float *out = v + r * dim;
        for (int64_t i = 0; i < g; i++) out[i] = u[i] + w * (c[i] - u[i]);
        for (int64_t i = g; i < dim; i++) out[i] = c[i];
    }
}

int smp_velocity(float *v, const float *x, double t, const int32_t *y, int64_t n, int64_t dim,
                 const smp_opts *o, smp_velocity_fn vel, void *ctx, void *scratch) {
    if (!smp_guided_at(o, t, y)) return vel(ctx, v, x, t, y, n);
    // x, v (n, dim); the doubled batch: xx = [x; x], yy = [y; null], vv = model(xx)
    size_t m = (size_t)n * (size_t)dim;
    float *xx = scratch, *vv = xx + 2 * m;
    int32_t *yy = (int32_t *)(vv + 2 * m);
    memcpy(xx, x, sizeof(float) * m);
    memcpy(xx + m, x, sizeof(float) * m);
    memcpy(yy, y, sizeof(int32_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) yy[n + i] = o->null_class;
    int rc = vel(ctx, vv, xx, t, yy, 2 * n);
    if (rc) return rc;
    smp_cfg_combine(v, vv, vv + m, n, dim, o);
    return 0;
}

int smp_integrate(float *x, const int32_t *y, int64_t n, int64_t dim, const double *ts, int steps,
                  const smp_opts *o, smp_velocity_fn vel, void *ctx, void *scratch) {
    // x (n, dim) in place, y (n) or NULL, ts (steps + 1)
    int rc = smp_opts_check(o, dim);
    if (rc) return rc;
    if (n < 1 || steps < 1) return SMP_ECONFIG;
    size_t m = (size_t)n * (size_t)dim;
    char *gs = scratch;   // the guided part comes first (smp_velocity's scratch)
    size_t gbytes = guided_part(o, y != NULL) ? sizeof(float) * 4 * m + sizeof(int32_t) * 2 * (size_t)n : 0;
    float *v1 = (float *)(gs + gbytes), *xe = v1 + m, *v2 = xe + m;
    for (int k = 0; k < steps; k++) {
        float h = (float)(ts[k + 1] - ts[k]);
        if ((rc = smp_velocity(v1, x, ts[k], y, n, dim, o, vel, ctx, gs))) return rc;
        if (o->method == SMP_EULER) {
            for (size_t i = 0; i < m; i++) x[i] += h * v1[i];
            continue;
        }
        for (size_t i = 0; i < m; i++) xe[i] = x[i] + h * v1[i];
        if ((rc = smp_velocity(v2, xe, ts[k + 1], y, n, dim, o, vel, ctx, gs))) return rc;
        float hh = 0.5f * h;
        for (size_t i = 0; i < m; i++) x[i] += hh * (v1[i] + v2[i]);
    }
    return 0;
}
