// metrics_toy.h: sample-quality metrics for 2D points (docs/FORMULAS.md section 5 and
// issue 6), knowing nothing of which model made the points:
//   - percentiles as numpy's default (linear interpolation);
//   - off-manifold rate: share of samples whose log-density under the true
//     mixture is below the 1st percentile of true samples' log-density;
//   - precision / recall with k-NN balls (Kynkaanniemi et al. 2019): squared
//     distances, radius = distance to the k-th nearest *other* point of the
//     own set; precision = share of samples inside some reference ball,
//     recall = share of reference points inside some sample ball.
// Brute force O(n*m) with OpenMP; each output element is computed by one
// thread in a fixed order, so results do not depend on the thread count.
// Not here: the log-densities themselves (data/toy_gmm.h).
#ifndef METRICS_TOY_H
#define METRICS_TOY_H

#include <stdint.h>

// q in [0, 100]; v is not modified (a sorted copy is made). n >= 1.
double toy_percentile(const double *v, int64_t n, double q);
double toy_share_below(const double *v, int64_t n, double thr);
double toy_mean(const double *v, int64_t n);

// radius2 (n) = squared distance from each point of x (n, dim) to its k-th
// nearest other point. Returns 0 or VEL_EINVAL (n <= k).
int toy_knn_radius2(double *radius2, const float *x, int64_t n, int dim, int k);
// Share of points q (nq, dim) that lie within some ball (centres c (nc, dim),
// squared radii r2 (nc)), boundary included.
double toy_coverage(const float *q, int64_t nq, const float *c, const double *r2, int64_t nc,
                    int dim);
// Precision and recall of fake against real with k-NN balls. 0 or VEL_EINVAL.
int toy_precision_recall(double *precision, double *recall, const float *real, int64_t nr,
                         const float *fake, int64_t nf, int dim, int k);

#endif
