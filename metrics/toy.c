// metrics_toy.c: see metrics_toy.h.
#include "metrics/toy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double toy_percentile(const double *v, int64_t n, double q) {
    CHECK(n >= 1 && q >= 0 && q <= 100);
    double *s = xmalloc(sizeof(double) * n);
    memcpy(s, v, sizeof(double) * n);
    qsort(s, n, sizeof(double), cmp_double);
    double pos = q / 100.0 * (double)(n - 1);
    int64_t lo = (int64_t)floor(pos);
    int64_t hi = lo + 1 < n ? lo + 1 : lo;
    double frac = pos - (double)lo;
    double r = s[lo] + (s[hi] - s[lo]) * frac;
    free(s);
    return r;
}

double toy_share_below(const double *v, int64_t n, double thr) {
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++) c += v[i] < thr;
    return n > 0 ? (double)c / n : 0.0;
}

double toy_mean(const double *v, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += v[i];
    return n > 0 ? s / n : 0.0;
}

static inline double dist2(const float *a, const float *b, int dim) {
    double s = 0;
    for (int d = 0; d < dim; d++) {
        double e = (double)a[d] - b[d];
        s += e * e;
    }
    return s;
}

int toy_knn_radius2(double *radius2, const float *x, int64_t n, int dim, int k) {
    if (k < 1 || k > 64 || n <= k) return VEL_EINVAL;
#pragma omp parallel for schedule(dynamic, 64)
    for (int64_t i = 0; i < n; i++) {
        double best[64];   // k smallest, ascending
        int cnt = 0;
        for (int64_t j = 0; j < n; j++) {
            if (j == i) continue;
            double d = dist2(x + i * dim, x + j * dim, dim);
            if (cnt == k && d >= best[k - 1]) continue;
            int p = cnt < k ? cnt++ : k - 1;
            while (p > 0 && best[p - 1] > d) {
                best[p] = best[p - 1];
                p--;
            }
            best[p] = d;
        }
        radius2[i] = best[k - 1];
    }
    return 0;
}

double toy_coverage(const float *q, int64_t nq, const float *c, const double *r2, int64_t nc,
                    int dim) {
    int64_t hit = 0;
#pragma omp parallel for schedule(dynamic, 64) reduction(+ : hit)
    for (int64_t i = 0; i < nq; i++) {
        for (int64_t j = 0; j < nc; j++)
            if (dist2(q + i * dim, c + j * dim, dim) <= r2[j]) {
                hit++;
                break;
            }
    }
    return nq > 0 ? (double)hit / nq : 0.0;
}

int toy_precision_recall(double *precision, double *recall, const float *real, int64_t nr,
                         const float *fake, int64_t nf, int dim, int k) {
    if (nr <= k || nf <= k) return VEL_EINVAL;
    double *rr = malloc(sizeof(double) * nr), *rf = malloc(sizeof(double) * nf);
    if (!rr || !rf) {
        free(rr);
        free(rf);
        return VEL_ENOMEM;
    }
    int rc = toy_knn_radius2(rr, real, nr, dim, k);
    if (!rc) rc = toy_knn_radius2(rf, fake, nf, dim, k);
    if (!rc) {
        *precision = toy_coverage(fake, nf, real, rr, nr, dim);
        *recall = toy_coverage(real, nr, fake, rf, nf, dim);
    }
    free(rr);
    free(rf);
    return rc;
}
