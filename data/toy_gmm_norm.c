// toy_gmm_norm.c: the toy mixture in normalised coordinates (toy_gmm.h).
// Flows are trained and sampled on the store's normalised data
// x_n = (x - mean) / std, with x0 ~ N(0, I) in those coordinates, so the
// sampler floor they should be compared with is the exact velocity of the
// mixture of x_n, not of x (a different path: N(0, I) there is not N(0, I)
// in data space).
#include "data/toy_gmm.h"

#include "core/base.h"

void toy_gmm_normalise(toy_gmm *g, const double mean[2], const double std[2]) {
    CHECK(std[0] > 0 && std[1] > 0);
    for (int i = 0; i < g->n; i++) {
        double *mu = g->mu + 2 * i, *S = g->S + 3 * i, *L = g->chol + 3 * i;
        mu[0] = (mu[0] - mean[0]) / std[0];
        mu[1] = (mu[1] - mean[1]) / std[1];
        S[0] /= std[0] * std[0];
        S[1] /= std[0] * std[1];
        S[2] /= std[1] * std[1];
        // D^-1 L stays lower triangular with a positive diagonal: the
        // Cholesky factor of D^-1 S D^-1.
        L[0] /= std[0];
        L[1] /= std[1];
        L[2] /= std[1];
    }
}
