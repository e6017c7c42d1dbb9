// toy_sampler.h: flow sampling as three separate parts (HACKING.md, from
// stable-diffusion.cpp): a time schedule (a grid of times), the velocity
// parameterisation (the model, passed as a callback), and the integrator
// (Euler here). Used by the toy's sample stage with the trained flow model,
// and by tests with the exact velocity v* of data/toy_gmm.h.
// Not here: noise drawing (the caller fills x with x0 ~ N(0, I)).
#ifndef MODELS_TOY_SAMPLER_H
#define MODELS_TOY_SAMPLER_H

#include <stdint.h>

// v (n, dim) = velocity at (x (n, dim), time t). ctx is the caller's.
typedef void (*toy_velocity_fn)(void *ctx, float *v, const float *x, double t, int64_t n);

// Uniform grid ts[0..steps] = k / steps (0 = noise, 1 = data), as edm2's toy
// and SPEC section 2 use (20 steps).
void toy_time_grid_uniform(double *ts, int steps);

// Euler: x <- x + (ts[k+1] - ts[k]) * v(x, ts[k]) for k = 0..steps-1, in
// place on x (n, dim). scratch holds n*dim floats. The model is never
// evaluated at ts[steps] (t = 1, where v* is singular).
void toy_euler(float *x, int64_t n, int dim, const double *ts, int steps, toy_velocity_fn vel,
               void *ctx, float *scratch);

#endif
