// precision_recall.h: improved precision and recall (Kynkaanniemi et al.
// 2019) of high-dimensional feature sets, as ADM's evaluator computes them
// (guided-diffusion evaluations/evaluator.py, ManifoldEstimator, k = 3):
//   - squared Euclidean distances d(a, b) = |a|^2 + |b|^2 - 2 a.b, clamped
//     at 0, from float GEMMs (ADM rounds them through fp16, we do not);
//   - radius of a point = d to its k-th nearest *other* point of its own set
//     (ADM takes index k of the sorted row, self included at index 0);
//   - precision = share of fake points with d(fake, real_i) <= radius(real_i)
//     for some i; recall = share of real points with d(real, fake_j) <=
//     radius(fake_j) for some j.
// Features are Inception pool3 (2048) or, on Fashion-MNIST, the project
// classifier's penultimate layer ("classifier features, not Inception").
// Cost: three N x N x D GEMMs in row chunks; memory O(chunk * N).
// Threads: GEMMs on OpenBLAS; the scans over a chunk are per-row OpenMP with
// a fixed order, so results do not depend on the thread count.
// Not here: 2-D toy points (metrics/toy.h has a brute-force version).
#ifndef METRICS_PRECISION_RECALL_H
#define METRICS_PRECISION_RECALL_H

#include <stdint.h>

#define PR_K_ADM 3

// radius2 (n) for x (n, dim); n > k >= 1. Returns 0, VEL_EINVAL or VEL_ENOMEM.
int pr_radii(double *radius2, const float *x, int64_t n, int dim, int k);
// real (nr, dim), fake (nf, dim); both sets larger than k. Returns 0,
// VEL_EINVAL or VEL_ENOMEM.
int precision_recall(double *precision, double *recall, const float *real, int64_t nr,
                     const float *fake, int64_t nf, int dim, int k);

#endif
