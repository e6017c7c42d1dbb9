// toy_gmm.h: the tree-shaped 2D Gaussian mixture of the AutoGuidance toy
// example (docs/FORMULAS.md section 2), built exactly from numpy's RandomState(2)
// stream, with its closed forms in double precision:
//   - log-density log p(x) (log-sum-exp over components),
//   - exact sampling,
//   - for the flow path x_t = t*x1 + (1-t)*x0 (x0 ~ N(0, I)): log p_t(x),
//     E[x1 | x_t = x] and the exact velocity v*(x, t) = (E[x1|x] - x)/(1-t).
// These are the ground truth for tests and for the toy metrics. Not here: the
// sampler (models/sampler.h), the metrics (metrics/toy.h).
// A toy_gmm is immutable after toy_gmm_build, so every query may run from
// several threads at once.
#ifndef DATA_TOY_GMM_H
#define DATA_TOY_GMM_H

#include <stdint.h>

#include "core/mt19937.h"

typedef struct {
    int n;              // number of components
    int *cls;           // (n) 0 = class A, 1 = class B
    int *depth;         // (n) tree level 0..6
    double *phi_raw;    // (n) dist * 0.5^depth
    double *phi;        // (n) normalised over the classes built
    double *mu;         // (n, 2)
    double *S;          // (n, 3) covariance as (xx, xy, yy)
    double *chol;       // (n, 3) lower Cholesky factor (l11, l21, l22)
    double *cum;        // (n) cumulative phi, for sampling
} toy_gmm;

// classes: "A" (the paper's data, 1016 components), "B", or "AB" (2032;
// B is generated after A from the same stream, as in the reference).
// Returns 0, VEL_EINVAL for another string, VEL_ENOMEM. Free with
// toy_gmm_destroy.
int toy_gmm_build(toy_gmm **out, const char *classes);
void toy_gmm_destroy(toy_gmm **g);

// log p_t(x) with C_i(t) = t^2 S_i + (1-t)^2 I; t = 1 is the data density.
double toy_gmm_logp_t(const toy_gmm *g, const double x[2], double t);
static inline double toy_gmm_logp(const toy_gmm *g, const double x[2]) {
    return toy_gmm_logp_t(g, x, 1.0);
}
// E[x1 | x_t = x] (posterior mean of the data point), any t in [0, 1].
void toy_gmm_posterior_mean(const toy_gmm *g, const double x[2], double t, double out[2]);
// Exact flow velocity; t must be < 1 (the path's velocity is singular there).
void toy_gmm_velocity(const toy_gmm *g, const double x[2], double t, double v[2]);

// Batched float helpers (OpenMP over points; each point independent, so the
// result does not depend on the thread count). x, v: (n, 2); logp: (n).
void toy_gmm_logp_batch(const toy_gmm *g, const float *x, int64_t n, double *logp);
void toy_gmm_velocity_batch(const toy_gmm *g, float *v, const float *x, int64_t n, double t);

// In place: the mixture of (x - mean) / std per coordinate (means shifted and
// scaled, covariances S_ab / (std_a std_b), Cholesky rows / std), i.e. the
// data in a latent store's normalised coordinates, so that its velocity is
// the exact one for flows trained on that store. std must be > 0.
// data/toy_gmm_norm.c
void toy_gmm_normalise(toy_gmm *g, const double mean[2], const double std[2]);

// n exact samples into out (n, 2): component by inverse CDF on one uniform,
// then mu + L * (randn, randn). Deterministic given the generator state.
void toy_gmm_sample(const toy_gmm *g, mt19937 *rng, float *out, int64_t n);

#endif
