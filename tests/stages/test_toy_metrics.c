// Tests for metrics/toy.c: percentiles (numpy's linear rule),
// k-NN radii, precision/recall (k = 3) against a numpy brute force, thread
// independence, and the degenerate inputs.
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "core/base.h"
#include "metrics/toy.h"
#include "tests/util.h"

Test(toy_metrics, percentile_matches_numpy) {
    int64_t n, nq;
    double *v = ref_f64("toy", "pct_v", &n), *q = ref_f64("toy", "pct_q", &nq);
    double *r = ref_f64("toy", "pct_r", NULL), got[8];
    for (int i = 0; i < nq; i++) got[i] = toy_percentile(v, n, q[i]);
    expect_close_f64("percentile", got, r, nq, 1e-12, 1e-12);
    cr_assert_eq(toy_share_below(v, n, r[3]), 50.0 / 101);   // below the median of 101
    free(v); free(q); free(r);
}

Test(toy_metrics, precision_recall_matches_numpy) {
    int64_t nr, nf;
    float *real = ref_f32("toy", "pr_real", &nr), *fake = ref_f32("toy", "pr_fake", &nf);
    double *want = ref_f64("toy", "pr", NULL), *rr_want = ref_f64("toy", "pr_radius2_real", NULL);
    nr /= 2, nf /= 2;
    double *rr = malloc(sizeof(double) * nr);
    cr_assert_eq(toy_knn_radius2(rr, real, nr, 2, 3), 0);
    expect_close_f64("knn radius^2", rr, rr_want, nr, 1e-12, 1e-12);
    double p, r;
    cr_assert_eq(toy_precision_recall(&p, &r, real, nr, fake, nf, 2, 3), 0);
    cr_assert_eq(p, want[0], "precision %.6f vs %.6f", p, want[0]);
    cr_assert_eq(r, want[1], "recall %.6f vs %.6f", r, want[1]);
    // same answer on one thread
    int th = omp_get_max_threads();
    omp_set_num_threads(1);
    double p1, r1;
    cr_assert_eq(toy_precision_recall(&p1, &r1, real, nr, fake, nf, 2, 3), 0);
    omp_set_num_threads(th);
    cr_assert(p1 == p && r1 == r);
    // identical sets: everything covered
    cr_assert_eq(toy_precision_recall(&p, &r, real, nr, real, nr, 2, 3), 0);
    cr_assert(p == 1.0 && r == 1.0);
    free(real); free(fake); free(want); free(rr_want); free(rr);
}

Test(toy_metrics, too_few_points) {
    float x[6] = {0, 0, 1, 1, 2, 2};
    double r2[3], p, r;
    cr_assert_eq(toy_knn_radius2(r2, x, 3, 2, 3), VEL_EINVAL);
    cr_assert_eq(toy_precision_recall(&p, &r, x, 3, x, 3, 2, 3), VEL_EINVAL);
    cr_assert_eq(toy_knn_radius2(r2, x, 3, 2, 2), 0);
    cr_assert_eq(r2[0], 8.0);   // (0,0): neighbours at 2 and 8
}
