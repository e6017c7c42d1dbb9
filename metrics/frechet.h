// frechet.h: the Frechet distance between two Gaussians fitted to feature
// sets (FID when the features are Inception pool3; here also the features of
// the project's own Fashion-MNIST classifier, which must be labelled so).
// SPEC section 5:
//   d = |mu1 - mu2|^2 + Tr(S1) + Tr(S2) - 2 Tr(sqrtm(S1 S2)),
// with Tr(sqrtm(S1 S2)) = sum_i sqrt(lambda_i(sqrt(S1) S2 sqrt(S1))), both
// square roots from LAPACK's symmetric eigensolver (dsyevd), in double.
// Not here: the feature networks (models/), precision/recall.
//
// Unlike the training ops these functions allocate their own scratch (they
// run once per evaluation, not inside a step) and report VEL_ENOMEM.
#ifndef METRICS_FRECHET_H
#define METRICS_FRECHET_H

#include <stdint.h>

// Mean and unbiased covariance (divide by N-1, as numpy.cov) of feats (N, D)
// in double: mu (D), cov (D, D) row-major. N >= 2. Returns 0, VEL_EINVAL or
// VEL_ENOMEM.
int frechet_stats_f32(double *mu, double *cov, const float *feats, int64_t N, int D);

// Frechet distance between N(mu1, S1) and N(mu2, S2), S symmetric positive
// semi-definite (D, D). Tiny negative eigenvalues from rounding are clamped
// to zero; *neg_eig (if not NULL) gets the most negative eigenvalue seen
// relative to the largest, a diagnostic for ill-conditioned covariances
// (pytorch-fid adds eps*I in that case; we clamp and report instead).
// Returns 0, VEL_EINVAL, VEL_ENOMEM or VEL_ERANGE (LAPACK did not converge).
int frechet_distance(double *out, const double *mu1, const double *S1, const double *mu2,
                     const double *S2, int D, double *neg_eig);

// Convenience: stats of both feature sets, then the distance.
int frechet_distance_f32(double *out, const float *feats1, int64_t N1, const float *feats2,
                         int64_t N2, int D);

#endif
