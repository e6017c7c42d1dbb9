// dense_check.h: helpers shared by the dense-op tests (test_linear.c,
// test_conv.c, test_norm.c, test_activation.c, test_shape_ops.c,
// test_loss.c): load one case of a numpy reference group, compare a float
// result against a float64 reference while logging the measured max abs/rel
// error (the numbers quoted in reports come from these lines), and check
// that a backward pass accumulated onto its initial gradient contents.
// Header-only (static functions) because the Makefile builds each test_*.c
// as its own binary with only tests/util.c beside it.
#ifndef TESTS_NN_DENSE_CHECK_H
#define TESTS_NN_DENSE_CHECK_H

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/util.h"

// Loads build/ref/<group>/<prefix>c<ci>_<name>.npy (generators name every
// tensor of case ci that way; prefix tells op families apart in one group).
static inline float *pcase_f32(const char *group, const char *prefix, int ci,
                               const char *name, int64_t *n) {
    char key[128];
    snprintf(key, sizeof key, "%sc%d_%s", prefix, ci, name);
    return ref_f32(group, key, n);
}

static inline double *pcase_f64(const char *group, const char *prefix, int ci,
                                const char *name, int64_t *n) {
    char key[128];
    snprintf(key, sizeof key, "%sc%d_%s", prefix, ci, name);
    return ref_f64(group, key, n);
}

static inline float *case_f32(const char *group, int ci, const char *name, int64_t *n) {
    return pcase_f32(group, "", ci, name, n);
}

static inline double *case_f64(const char *group, int ci, const char *name, int64_t *n) {
    return pcase_f64(group, "", ci, name, n);
}

// Compares x (float) with ref (double) and logs "ERR what: max_abs max_rel".
static inline void check_vs(const char *what, const float *x, const double *ref, int64_t n,
                            double atol, double rtol) {
    double *xd = malloc(sizeof(double) * (n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) xd[i] = x[i];
    cmp_result r = compare_f64(xd, ref, n, atol, rtol);
    cr_log_info("ERR %-40s n=%-7lld max_abs=%.3g max_rel=%.3g nmse=%.3g", what,
                (long long)n, r.max_abs, r.max_rel, r.nmse);
    expect_close_f64(what, xd, ref, n, atol, rtol);
    free(xd);
}

// Backward accumulates: the gradient buffer started as g0, so the result
// must equal g0 + dref.
static inline void check_grad(const char *what, const float *g, const float *g0,
                              const double *dref, int64_t n, double atol, double rtol) {
    double *want = malloc(sizeof(double) * (n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) want[i] = (double)g0[i] + dref[i];
    check_vs(what, g, want, n, atol, rtol);
    free(want);
}

static inline float *copy_f32(const float *x, int64_t n) {
    float *y = malloc(sizeof(float) * (n > 0 ? n : 1));
    memcpy(y, x, sizeof(float) * n);
    return y;
}

static inline void expect_same_bits(const char *what, const float *a, const float *b, int64_t n) {
    int64_t bad = -1;
    for (int64_t i = 0; i < n && bad < 0; i++)
        if (memcmp(a + i, b + i, sizeof(float))) bad = i;
    cr_expect(bad < 0, "%s: results differ at %lld (%.9g vs %.9g)",
              what, (long long)bad, bad >= 0 ? a[bad] : 0.0, bad >= 0 ? b[bad] : 0.0);
}

// Threads in an OpenMP team started now: a 1-vs-2-thread test checks it is 2
// (so the comparison really ran two threads).
static inline int omp_team_size(void) {
    int n = 0;
    #pragma omp parallel
    {
        #pragma omp single
        n = omp_get_num_threads();
    }
    return n;
}

#endif
