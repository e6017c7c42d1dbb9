// test_frechet.c: nn/frechet against closed forms (diagonal, shared
// eigenvectors, the 2x2 non-commuting case, 1D) and against scipy's sqrtm
// (tests/ref/gen_frechet.py, pytorch-fid's formula) on seeded feature sets.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "metrics/frechet.h"
#include "tests/util.h"

Test(frechet, diagonal_closed_form) {
    enum { D = 7 };
    double mu1[D], mu2[D], a[D], b[D], S1[D * D] = {0}, S2[D * D] = {0};
    fill_uniform_f64(mu1, D, 1, -2, 2);
    fill_uniform_f64(mu2, D, 2, -2, 2);
    fill_uniform_f64(a, D, 3, 0.1, 4);
    fill_uniform_f64(b, D, 4, 0.1, 4);
    double want = 0;
    for (int i = 0; i < D; i++) {
        S1[i * D + i] = a[i];
        S2[i * D + i] = b[i];
        want += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]) + pow(sqrt(a[i]) - sqrt(b[i]), 2);
    }
    double got, neg;
    cr_assert_eq(frechet_distance(&got, mu1, S1, mu2, S2, D, &neg), 0);
    expect_close_f64("diag frechet", &got, &want, 1, 1e-12, 1e-12);
    cr_assert(neg >= -1e-12, "neg eig %g", neg);
    // Symmetric in its arguments, zero for identical Gaussians.
    double back;
    cr_assert_eq(frechet_distance(&back, mu2, S2, mu1, S1, D, NULL), 0);
    expect_close_f64("swap", &back, &want, 1, 1e-12, 1e-12);
    double self, zero = 0;
    cr_assert_eq(frechet_distance(&self, mu1, S1, mu1, S1, D, NULL), 0);
    expect_close_f64("self", &self, &zero, 1, 1e-12, 0);
}

// Householder reflection I - 2 v v^T / |v|^2: a seeded orthogonal matrix.
static void householder(double *Q, int D, uint64_t seed) {
    double v[64], n2 = 0;
    fill_uniform_f64(v, D, seed, -1, 1);
    for (int i = 0; i < D; i++) n2 += v[i] * v[i];
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) Q[i * D + j] = (i == j) - 2 * v[i] * v[j] / n2;
}

Test(frechet, shared_eigenvectors_closed_form) {
    enum { D = 12 };
    double Q[D * D], a[D], b[D], S1[D * D], S2[D * D], mu[D] = {0};
    householder(Q, D, 7);
    fill_uniform_f64(a, D, 8, 0.01, 3);
    fill_uniform_f64(b, D, 9, 0.01, 3);
    a[0] = 0.0;   // a singular S1: the clamp must keep sqrt(0) finite
    double want = 0;
    for (int k = 0; k < D; k++) want += pow(sqrt(a[k]) - sqrt(b[k]), 2);
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) {
            double s1 = 0, s2 = 0;
            for (int k = 0; k < D; k++) {
                s1 += Q[i * D + k] * a[k] * Q[j * D + k];
                s2 += Q[i * D + k] * b[k] * Q[j * D + k];
            }
            S1[i * D + j] = s1;
            S2[i * D + j] = s2;
        }
    double got;
    cr_assert_eq(frechet_distance(&got, mu, S1, mu, S2, D, NULL), 0);
    cr_log_info("rotated diag: abs err %.3g", fabs(got - want));
    // Rounding of a singular S1 through two eigendecompositions: measured
    // abs error 5e-8 (sqrt of a ~1e-15 rounding eigenvalue), so atol 2e-7.
    expect_close_f64("rotated diag frechet", &got, &want, 1, 2e-7, 1e-10);
}

Test(frechet, two_by_two_noncommuting_and_1d) {
    // For 2x2 M with nonnegative eigenvalues: Tr sqrt(M) = sqrt(Tr M + 2 sqrt(det M)).
    double S1[4] = {2.0, 0.7, 0.7, 1.0}, S2[4] = {0.5, -0.3, -0.3, 1.5};
    double mu1[2] = {1, 2}, mu2[2] = {0.5, -1};
    double M[4] = {S1[0] * S2[0] + S1[1] * S2[2], S1[0] * S2[1] + S1[1] * S2[3],
                   S1[2] * S2[0] + S1[3] * S2[2], S1[2] * S2[1] + S1[3] * S2[3]};
    double trsq = sqrt(M[0] + M[3] + 2 * sqrt(M[0] * M[3] - M[1] * M[2]));
    double want = 0.25 + 9 + (S1[0] + S1[3]) + (S2[0] + S2[3]) - 2 * trsq;
    double got;
    cr_assert_eq(frechet_distance(&got, mu1, S1, mu2, S2, 2, NULL), 0);
    expect_close_f64("2x2 frechet", &got, &want, 1, 1e-12, 1e-12);
    // 1D: (m1 - m2)^2 + (s1 - s2)^2.
    double a = 4.0, b = 0.25, m1 = 0.3, m2 = -0.2, w1 = 0.25 + pow(2.0 - 0.5, 2);
    cr_assert_eq(frechet_distance(&got, &m1, &a, &m2, &b, 1, NULL), 0);
    expect_close_f64("1d frechet", &got, &w1, 1, 1e-13, 1e-13);
}

static void against_scipy(const char *name) {
    char k[64];
    int64_t n1, n2, nm, nc, nf;
    snprintf(k, sizeof k, "%s_f1", name);
    float *f1 = ref_f32("frechet", k, &n1);
    snprintf(k, sizeof k, "%s_f2", name);
    float *f2 = ref_f32("frechet", k, &n2);
    snprintf(k, sizeof k, "%s_mu1", name);
    double *mu_ref = ref_f64("frechet", k, &nm);
    snprintf(k, sizeof k, "%s_cov1", name);
    double *cov_ref = ref_f64("frechet", k, &nc);
    snprintf(k, sizeof k, "%s_fid", name);
    double *fid_ref = ref_f64("frechet", k, &nf);
    int D = (int)nm;
    cr_assert_eq(nc, (int64_t)D * D);
    double *mu = malloc(sizeof(double) * D), *cov = malloc(sizeof(double) * D * D);
    cr_assert_eq(frechet_stats_f32(mu, cov, f1, n1 / D, D), 0);
    // Float inputs summed in double: agreement to ~1e-15 relative.
    expect_close_f64("mean vs numpy", mu, mu_ref, D, 1e-12, 1e-10);
    expect_close_f64("cov vs numpy.cov", cov, cov_ref, (int64_t)D * D, 1e-12, 1e-10);
    double got;
    cr_assert_eq(frechet_distance_f32(&got, f1, n1 / D, f2, n2 / D, D), 0);
    // Eigen route vs scipy's Schur-based sqrtm of the non-symmetric S1 S2:
    // different algorithms, measured relative difference ~1e-12.
    expect_close_f64("frechet vs scipy sqrtm", &got, fid_ref, 1, 1e-8, 1e-9);
    cr_log_info("frechet %s: C %.12f scipy %.12f", name, got, fid_ref[0]);
    free(f1); free(f2); free(mu_ref); free(cov_ref); free(fid_ref); free(mu); free(cov);
}

Test(frechet, matches_scipy_small) { against_scipy("small"); }
Test(frechet, matches_scipy_wide) { against_scipy("wide"); }

Test(frechet, bad_arguments) {
    double mu = 0, S = 1, out;
    float f[4] = {1, 2, 3, 4};
    cr_assert_eq(frechet_distance(&out, &mu, &S, &mu, &S, 0, NULL), VEL_EINVAL);
    cr_assert_eq(frechet_distance(NULL, &mu, &S, &mu, &S, 1, NULL), VEL_EINVAL);
    double m[2], c[4];
    cr_assert_eq(frechet_stats_f32(m, c, f, 1, 2), VEL_EINVAL);   // N < 2
    cr_assert_eq(frechet_stats_f32(m, c, f, 2, 2), 0);
    cr_assert_float_eq(c[0], 2.0, 1e-12);   // var of {1, 3} with N-1
}
