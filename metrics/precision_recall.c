// precision_recall.c: see precision_recall.h.
#include "metrics/precision_recall.h"

#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "nn/matmul.h"

#define PR_CHUNK 256

static void sq_norms(double *out, const float *x, int64_t n, int dim) {
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int d = 0; d < dim; d++) s += (double)x[i * dim + d] * x[i * dim + d];
        out[i] = s;
    }
}

// dot (rows, n) = a[i0 .. i0+rows) . b^T
static void dots(float *dot, const float *a, int64_t rows, const float *b, int64_t n, int dim) {
    matmul_batched(1, 0, 1, (int)rows, (int)n, dim, 1.0f, a, dim, 0, b, dim, 0, 0.0f, dot,
                   (int)n, 0);
}

static inline double dist2(double na, double nb, float dot) {
    double d = na + nb - 2.0 * (double)dot;
    return d > 0 ? d : 0.0;
}

int pr_radii(double *radius2, const float *x, int64_t n, int dim, int k) {
    if (!radius2 || !x || dim < 1 || k < 1 || n <= k || n > INT32_MAX) return VEL_EINVAL;
    double *nx = malloc(sizeof(double) * n);
    float *dot = malloc(sizeof(float) * PR_CHUNK * n);
    double *row = malloc(sizeof(double) * PR_CHUNK * (k + 1));
    if (!nx || !dot || !row) { free(nx); free(dot); free(row); return VEL_ENOMEM; }
    sq_norms(nx, x, n, dim);
    for (int64_t i0 = 0; i0 < n; i0 += PR_CHUNK) {
        int64_t rows = n - i0 < PR_CHUNK ? n - i0 : PR_CHUNK;
        dots(dot, x + i0 * dim, rows, x, n, dim);
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            // Insertion into the k smallest, ascending; self excluded by index.
            double *best = row + r * (k + 1);
            int cnt = 0;
            int64_t i = i0 + r;
            for (int64_t j = 0; j < n; j++) {
                if (j == i) continue;
                double d = dist2(nx[i], nx[j], dot[r * n + j]);
                if (cnt == k && d >= best[k - 1]) continue;
                int p = cnt < k ? cnt++ : k - 1;
                while (p > 0 && best[p - 1] > d) { best[p] = best[p - 1]; p--; }
                best[p] = d;
            }
            radius2[i] = best[k - 1];
        }
    }
    free(nx); free(dot); free(row);
    return 0;
}

int precision_recall(double *precision, double *recall, const float *real, int64_t nr,
                     const float *fake, int64_t nf, int dim, int k) {
    if (!precision || !recall || !real || !fake || dim < 1 || k < 1 || nr <= k || nf <= k ||
        nr > INT32_MAX || nf > INT32_MAX)
        return VEL_EINVAL;
    double *rr = malloc(sizeof(double) * nr), *rf = malloc(sizeof(double) * nf);
    double *nrm = malloc(sizeof(double) * nr), *nfm = malloc(sizeof(double) * nf);
    float *dot = malloc(sizeof(float) * PR_CHUNK * nf);
    unsigned char *fake_in = calloc(nf, 1), *real_in = calloc(nr, 1);
    int rc = VEL_ENOMEM;
    if (!rr || !rf || !nrm || !nfm || !dot || !fake_in || !real_in) goto done;
    if ((rc = pr_radii(rr, real, nr, dim, k)) || (rc = pr_radii(rf, fake, nf, dim, k))) goto done;
    sq_norms(nrm, real, nr, dim);
    sq_norms(nfm, fake, nf, dim);
    // One pass over real x fake distances marks both directions: per chunk,
    // real rows by one loop and fake columns by another, each element owned
    // by one thread (no races, any thread count gives the same marks).
    for (int64_t i0 = 0; i0 < nr; i0 += PR_CHUNK) {
        int64_t rows = nr - i0 < PR_CHUNK ? nr - i0 : PR_CHUNK;
        dots(dot, real + i0 * dim, rows, fake, nf, dim);
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            int64_t i = i0 + r;
            for (int64_t j = 0; j < nf && !real_in[i]; j++)
                if (dist2(nrm[i], nfm[j], dot[r * nf + j]) <= rf[j]) real_in[i] = 1;
        }
#pragma omp parallel for schedule(static)
        for (int64_t j = 0; j < nf; j++)
            for (int64_t r = 0; r < rows && !fake_in[j]; r++)
                if (dist2(nrm[i0 + r], nfm[j], dot[r * nf + j]) <= rr[i0 + r]) fake_in[j] = 1;
    }
    int64_t hp = 0, hr = 0;
    for (int64_t j = 0; j < nf; j++) hp += fake_in[j];
    for (int64_t i = 0; i < nr; i++) hr += real_in[i];
    *precision = (double)hp / (double)nf;
    *recall = (double)hr / (double)nr;
    rc = 0;
done:
    free(rr); free(rf); free(nrm); free(nfm); free(dot); free(fake_in); free(real_in);
    return rc;
}
