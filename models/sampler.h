// sampler.h: flow-matching samplers for any model, in three separate parts
// (as stable-diffusion.cpp splits them): a time grid, the velocity model (a
// callback, so the toy MLP, the exact toy velocity and the DiT all plug in),
// and the integrator (Euler or Heun), with classifier-free guidance.
//
// Convention (docs/FORMULAS.md sections 2 and 4, LightningDiT's): t = 0 is
// noise, t = 1 is data, x_t = t x1 + (1 - t) x0, the model predicts
// v = x1 - x0, and sampling integrates dx/dt = v from t = 0 to t = 1.
// A state is n rows of dim floats; for images a row is (channels, H, W).
//
// Classifier-free guidance: v = v_u + w (v_c - v_u), v_c with the row's
// label, v_u with the null label. Both come from ONE velocity call on a
// doubled batch: rows 0..n-1 are x with the labels y, rows n..2n-1 the same
// x with the null label. Guidance applies only where lo <= t <= hi (t as
// given to the model, i.e. after any time shift); elsewhere, and when w == 1,
// the sampler makes a single conditional call on n rows (v = v_c). With
// guide_channels = k > 0 only the first k channels of a row are guided and
// the rest take v_c (LightningDiT guides 3 channels, an inherited quirk:
// its forward_with_cfg splits model_out[:, :3]); 0 guides all channels.
//
// No allocation: the caller gives scratch of smp_scratch_bytes() (once, at
// setup, for its largest n).
// Not here: noise drawing (the caller fills x with x0 ~ N(0, I)), labels.
#ifndef MODELS_SAMPLER_H
#define MODELS_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

enum {
    SMP_ECONFIG = -560,   // invalid sampler options
};

// v (n, dim) = model(x (n, dim), time t, labels y (n) or NULL for an
// unconditional model). Returns 0 or a negative code (passed through).
typedef int (*smp_velocity_fn)(void *ctx, float *v, const float *x, double t, const int32_t *y,
                               int64_t n);

typedef enum { SMP_EULER = 0, SMP_HEUN = 1 } smp_method;

typedef struct {
    smp_method method;
    float cfg_scale;        // w; 1 = no guidance
    double cfg_lo, cfg_hi;  // guidance where cfg_lo <= t <= cfg_hi
    int channels;           // channels per row (dim % channels == 0); used with guide_channels
    int guide_channels;     // 0: all channels; k: the first k only
    int32_t null_class;     // label of the unconditional half
} smp_opts;

// Euler, w = 1, interval [0, 1], one channel, all channels guided, null 0.
smp_opts smp_opts_default(void);
// 0, or SMP_ECONFIG for an unknown method, a bad interval, channels < 1 or
// not dividing dim, guide_channels outside 0..channels.
int smp_opts_check(const smp_opts *o, int64_t dim);
const char *smp_method_name(smp_method m);           // "euler", "heun"
int smp_method_parse(const char *name, smp_method *out);   // 0 or SMP_ECONFIG

// ts[0..steps] = k / steps (numpy's linspace(0, 1, steps + 1) up to the last
// bit), then the time shift t' = s t / (1 + (s - 1) t) when shift != 1
// (LightningDiT: s = 0.3, more steps near the noise end); the ends stay exactly
// 0 and 1. steps >= 1, shift > 0.
void smp_time_grid(double *ts, int steps, double shift);
double smp_time_shift(double t, double shift);

// Scratch for smp_integrate with n rows of dim (y != NULL: conditional).
size_t smp_scratch_bytes(const smp_opts *o, int64_t n, int64_t dim, int conditional);

// Is an evaluation at time t guided (two halves) under o, for labels y?
int smp_guided_at(const smp_opts *o, double t, const int32_t *y);

// The velocity used by the integrator at time t: one call of vel, doubled and
// combined when smp_guided_at, else conditional (or unconditional when y is
// NULL) on n rows. scratch: smp_scratch_bytes(o, n, dim, y != NULL).
int smp_velocity(float *v, const float *x, double t, const int32_t *y, int64_t n, int64_t dim,
                 const smp_opts *o, smp_velocity_fn vel, void *ctx, void *scratch);

// v (n, dim) = vu + w (vc - vu) on the guided channels, vc elsewhere.
void smp_cfg_combine(float *v, const float *vc, const float *vu, int64_t n, int64_t dim,
                     const smp_opts *o);

// Integrates x (n, dim) in place over ts[0..steps]:
//   Euler: x += h v(x, t_k), h = t_{k+1} - t_k (as float);
//   Heun:  xe = x + h v1, v1 = v(x, t_k); x += h/2 (v1 + v(xe, t_{k+1}))
//          (the model is evaluated at t = 1 on the last step; Euler never is).
// y: labels (n) or NULL (unconditional model, no guidance). Returns 0, the
// callback's code, or SMP_ECONFIG (bad options).
int smp_integrate(float *x, const int32_t *y, int64_t n, int64_t dim, const double *ts, int steps,
                  const smp_opts *o, smp_velocity_fn vel, void *ctx, void *scratch);

#endif
