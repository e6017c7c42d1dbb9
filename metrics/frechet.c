// frechet.c: see frechet.h. Everything in double; covariances by BLAS dsyrk
// over row chunks so a (10000, 2048) feature set never needs a double copy of
// the whole matrix.
#include "metrics/frechet.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"

#define STATS_CHUNK 512

int frechet_stats_f32(double *mu, double *cov, const float *feats, int64_t N, int D) {
    // mu (D), cov (D, D), feats (N, D)
    if (!mu || !cov || !feats || N < 2 || D <= 0) return VEL_EINVAL;
    double *xc = malloc(sizeof(double) * STATS_CHUNK * (size_t)D);
    if (!xc) return VEL_ENOMEM;
    memset(mu, 0, sizeof(double) * D);
    for (int64_t i = 0; i < N; i++)
        for (int d = 0; d < D; d++) mu[d] += feats[i * D + d];
    for (int d = 0; d < D; d++) mu[d] /= (double)N;
    memset(cov, 0, sizeof(double) * D * D);
    // Centre first, then sum outer products: the two-pass form avoids the
    // cancellation of E[x x^T] - mu mu^T when features have a large mean.
    for (int64_t i0 = 0; i0 < N; i0 += STATS_CHUNK) {
        int64_t rows = N - i0 < STATS_CHUNK ? N - i0 : STATS_CHUNK;
        for (int64_t r = 0; r < rows; r++)
            for (int d = 0; d < D; d++) xc[r * D + d] = feats[(i0 + r) * D + d] - mu[d];
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, D, (int)rows, 1.0, xc, D, 1.0,
                    cov, D);
    }
    for (int i = 0; i < D; i++)
        for (int j = i; j < D; j++) {
            double v = cov[i * D + j] / (double)(N - 1);
            cov[i * D + j] = v;
            cov[j * D + i] = v;
        }
    free(xc);
    return 0;
}

// sym (D, D) -> its eigenvalues w (D) and eigenvectors in sym's rows'
// columns (LAPACK row-major: column k of the result is eigenvector k).
static int eig_sym(double *sym, double *w, int D) {
    lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', D, sym, D, w);
    return info == 0 ? 0 : VEL_ERANGE;
}

int frechet_distance(double *out, const double *mu1, const double *S1, const double *mu2,
                     const double *S2, int D, double *neg_eig) {
    if (!out || !mu1 || !S1 || !mu2 || !S2 || D <= 0) return VEL_EINVAL;
    size_t dd = (size_t)D * D;
    double *v = malloc(sizeof(double) * dd), *w = malloc(sizeof(double) * D);
    double *r = malloc(sizeof(double) * dd), *t = malloc(sizeof(double) * dd);
    int rc = 0;
    if (!v || !w || !r || !t) { rc = VEL_ENOMEM; goto done; }
    double worst = 0.0;

    // sqrt(S1) = V diag(sqrt(max(w, 0))) V^T
    memcpy(v, S1, sizeof(double) * dd);
    if ((rc = eig_sym(v, w, D))) goto done;
    double wmax = fabs(w[D - 1]) > 0 ? fabs(w[D - 1]) : 1.0;   // dsyevd sorts ascending
    for (int k = 0; k < D; k++) if (w[k] / wmax < worst) worst = w[k] / wmax;
    for (int i = 0; i < D; i++)
        for (int k = 0; k < D; k++) t[i * D + k] = v[i * D + k] * sqrt(w[k] > 0 ? w[k] : 0.0);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, D, D, D, 1.0, t, D, v, D, 0.0, r, D);
    // M = sqrt(S1) S2 sqrt(S1), symmetrised against rounding.
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, D, D, D, 1.0, r, D, S2, D, 0.0,
                t, D);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, D, D, D, 1.0, t, D, r, D, 0.0,
                v, D);
    for (int i = 0; i < D; i++)
        for (int j = i + 1; j < D; j++) {
            double s = 0.5 * (v[i * D + j] + v[j * D + i]);
            v[i * D + j] = v[j * D + i] = s;
        }
    if ((rc = eig_sym(v, w, D))) goto done;
    double trsq = 0.0;
    wmax = fabs(w[D - 1]) > 0 ? fabs(w[D - 1]) : 1.0;
    for (int k = 0; k < D; k++) {
        if (w[k] / wmax < worst) worst = w[k] / wmax;
        if (w[k] > 0) trsq += sqrt(w[k]);
    }
    double dmu = 0.0, tr1 = 0.0, tr2 = 0.0;
    for (int i = 0; i < D; i++) {
        double d = mu1[i] - mu2[i];
        dmu += d * d;
        tr1 += S1[i * D + i];
        tr2 += S2[i * D + i];
    }
    *out = dmu + tr1 + tr2 - 2.0 * trsq;
    if (neg_eig) *neg_eig = worst;
done:
    free(v); free(w); free(r); free(t);
    return rc;
}

int frechet_distance_f32(double *out, const float *feats1, int64_t N1, const float *feats2,
                         int64_t N2, int D) {
    if (D <= 0) return VEL_EINVAL;
    size_t dd = (size_t)D * D;
    double *m1 = malloc(sizeof(double) * D), *m2 = malloc(sizeof(double) * D);
    double *s1 = malloc(sizeof(double) * dd), *s2 = malloc(sizeof(double) * dd);
    int rc = VEL_ENOMEM;
    if (m1 && m2 && s1 && s2) {
        rc = frechet_stats_f32(m1, s1, feats1, N1, D);
        if (!rc) rc = frechet_stats_f32(m2, s2, feats2, N2, D);
        if (!rc) rc = frechet_distance(out, m1, s1, m2, s2, D, NULL);
    }
    free(m1); free(m2); free(s1); free(s2);
    return rc;
}
