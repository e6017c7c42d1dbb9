// test_toy_gmm_norm.c: toy_gmm_normalise (data/toy_gmm_norm.c), the mixture
// in a store's normalised coordinates x_n = (x - m) / s, against closed forms:
// its density is the change of variables of the data density, its exact
// samples are the normalised data samples, and its velocity satisfies the
// score identity of its own path (x0 ~ N(0, I) in normalised coordinates).
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "core/mt19937.h"
#include "data/toy_gmm.h"

// The raw-data store's stats are about these (store_compute_stats).
static const double M[2] = {0.372, 0.365}, S[2] = {0.333, 0.341};

static void build_pair(toy_gmm **raw, toy_gmm **nrm) {
    cr_assert_eq(toy_gmm_build(raw, "A"), 0);
    cr_assert_eq(toy_gmm_build(nrm, "A"), 0);
    toy_gmm_normalise(*nrm, M, S);
}

Test(toy_gmm_norm, density_is_change_of_variables) {
    toy_gmm *raw, *nrm;
    build_pair(&raw, &nrm);
    const double xs[5][2] = {{0.0, 0.0}, {1.2, -0.7}, {-1.5, 2.0}, {0.4, 0.9}, {-0.2, -1.1}};
    for (int i = 0; i < 5; i++) {
        double x[2] = {xs[i][0] * S[0] + M[0], xs[i][1] * S[1] + M[1]};
        double want = toy_gmm_logp(raw, x) + log(S[0] * S[1]);
        double got = toy_gmm_logp(nrm, xs[i]);
        cr_assert(fabs(got - want) < 1e-10 * fmax(1.0, fabs(want)), "x_n=(%g,%g): %.12g vs %.12g",
                  xs[i][0], xs[i][1], got, want);
    }
    toy_gmm_destroy(&raw), toy_gmm_destroy(&nrm);
}

Test(toy_gmm_norm, samples_are_normalised_samples) {
    toy_gmm *raw, *nrm;
    build_pair(&raw, &nrm);
    enum { N = 2000 };
    static float a[2 * N], b[2 * N];
    mt19937 r;
    mt_seed(&r, 5);
    toy_gmm_sample(raw, &r, a, N);
    mt_seed(&r, 5);
    toy_gmm_sample(nrm, &r, b, N);
    for (int i = 0; i < N; i++)
        for (int d = 0; d < 2; d++) {
            double want = ((double)a[2 * i + d] - M[d]) / S[d];
            cr_assert(fabs(b[2 * i + d] - want) < 1e-5 * fmax(1.0, fabs(want)), "sample %d dim %d: %g vs %g",
                      i, d, b[2 * i + d], want);
        }
    toy_gmm_destroy(&raw), toy_gmm_destroy(&nrm);
}

// E[x1 | x_t = x] = (x + (1-t)^2 grad log p_t(x)) / t for x_t = t x1 + (1-t) x0,
// x0 ~ N(0, I): checked on the normalised mixture's own path, and that path
// is not the data-space one mapped over (the floors differ for that reason).
Test(toy_gmm_norm, velocity_is_its_own_score_identity) {
    toy_gmm *raw, *nrm;
    build_pair(&raw, &nrm);
    const double ts[3] = {0.2, 0.5, 0.85}, xs[3][2] = {{0.3, -0.4}, {-1.0, 1.1}, {0.8, 0.6}};
    double maxdiff = 0;
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 3; i++) {
            double t = ts[k], h = 1e-5, grad[2], v[2], e[2];
            for (int d = 0; d < 2; d++) {
                double xp[2] = {xs[i][0], xs[i][1]}, xm[2] = {xs[i][0], xs[i][1]};
                xp[d] += h;
                xm[d] -= h;
                grad[d] = (toy_gmm_logp_t(nrm, xp, t) - toy_gmm_logp_t(nrm, xm, t)) / (2 * h);
            }
            toy_gmm_velocity(nrm, xs[i], t, v);
            for (int d = 0; d < 2; d++) {
                double want = (xs[i][d] + (1 - t) * (1 - t) * grad[d]) / t;
                double got = xs[i][d] + (1 - t) * v[d];   // v = (E - x) / (1 - t)
                cr_assert(fabs(got - want) < 1e-6 * fmax(1.0, fabs(want)), "t=%g i=%d d=%d: %.10g vs %.10g",
                          t, i, d, got, want);
            }
            double xr[2] = {xs[i][0] * S[0] + M[0], xs[i][1] * S[1] + M[1]};
            toy_gmm_posterior_mean(raw, xr, t, e);
            for (int d = 0; d < 2; d++) {
                double mapped = (e[d] - M[d]) / S[d];
                double got = xs[i][d] + (1 - t) * v[d];
                maxdiff = fmax(maxdiff, fabs(got - mapped));
            }
        }
    cr_assert(maxdiff > 1e-2, "the normalised path should differ from the raw one mapped over (%g)", maxdiff);
    toy_gmm_destroy(&raw), toy_gmm_destroy(&nrm);
}
