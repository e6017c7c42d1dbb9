// test_precision_recall.c: metrics/precision_recall.h against a numpy k-NN
// reference (tests/ref/gen_metrics.py, k = 3) and small closed cases; the
// result does not depend on the thread count.
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/base.h"
#include "metrics/precision_recall.h"
#include "metrics/toy.h"
#include "tests/util.h"

static void against_numpy(const char *name, int dim) {
    char k[64];
    int64_t nr, nf, nrad, npr;
    snprintf(k, sizeof k, "%s_real", name);
    float *real = ref_f32("metrics", k, &nr);
    snprintf(k, sizeof k, "%s_fake", name);
    float *fake = ref_f32("metrics", k, &nf);
    snprintf(k, sizeof k, "%s_radii", name);
    double *rad_ref = ref_f64("metrics", k, &nrad);
    snprintf(k, sizeof k, "%s_pr", name);
    double *pr_ref = ref_f64("metrics", k, &npr);
    nr /= dim;
    nf /= dim;
    cr_assert_eq(nrad, nr);
    double *rad = malloc(sizeof(double) * nr);
    cr_assert_eq(pr_radii(rad, real, nr, dim, PR_K_ADM), 0);
    // Float GEMM distances vs float64 numpy: measured relative error ~2e-7.
    expect_close_f64("radii vs numpy", rad, rad_ref, nr, 1e-5, 2e-6);
    double p, r;
    for (int th = 1; th <= 2; th++) {
        omp_set_num_threads(th);
        cr_assert_eq(precision_recall(&p, &r, real, nr, fake, nf, dim, PR_K_ADM), 0);
        // The generator keeps every comparison 2e-6 (relative) away from a tie,
        // so the counts are exact.
        cr_assert_eq(p, pr_ref[0], "%s precision %.6f numpy %.6f (%d threads)", name, p, pr_ref[0], th);
        cr_assert_eq(r, pr_ref[1], "%s recall %.6f numpy %.6f (%d threads)", name, r, pr_ref[1], th);
    }
    cr_log_info("%s: precision %.4f recall %.4f", name, p, r);
    // The brute-force toy version (double distances) agrees too.
    double tp, tr;
    cr_assert_eq(toy_precision_recall(&tp, &tr, real, nr, fake, nf, dim, PR_K_ADM), 0);
    cr_assert_eq(tp, p);
    cr_assert_eq(tr, r);
    free(real); free(fake); free(rad_ref); free(pr_ref); free(rad);
}

Test(precision_recall, matches_numpy_small) { against_numpy("pr_small", 16); }
Test(precision_recall, matches_numpy_wide) { against_numpy("pr_wide", 64); }

Test(precision_recall, closed_cases) {
    // Points on a line: real at 0..9, k = 3 -> radius of an interior point 4
    // (second neighbour on one side at distance 2, squared).
    enum { N = 10 };
    float real[N], fake[N], far[N];
    for (int i = 0; i < N; i++) { real[i] = (float)i; fake[i] = (float)i + 0.5f; far[i] = 100.0f + i; }
    double rad[N];
    cr_assert_eq(pr_radii(rad, real, N, 1, 3), 0);
    cr_assert_eq(rad[5], 4.0);   // neighbours 4,6 (1), 3,7 (4): 3rd nearest at 4
    cr_assert_eq(rad[0], 9.0);   // 1, 2, 3 -> 9
    double p, r;
    cr_assert_eq(precision_recall(&p, &r, real, N, real, N, 1, 3), 0);
    cr_assert_eq(p, 1.0);
    cr_assert_eq(r, 1.0);
    cr_assert_eq(precision_recall(&p, &r, real, N, fake, N, 1, 3), 0);
    cr_assert_eq(p, 1.0);
    cr_assert_eq(r, 1.0);
    // Disjoint sets far apart: nothing covered either way.
    cr_assert_eq(precision_recall(&p, &r, real, N, far, N, 1, 3), 0);
    cr_assert_eq(p, 0.0);
    cr_assert_eq(r, 0.0);
}

Test(precision_recall, bad_arguments) {
    float x[6] = {0, 1, 2, 3, 4, 5};
    double rad[6], p, r;
    cr_assert_eq(pr_radii(rad, x, 3, 1, 3), VEL_EINVAL);   // n must exceed k
    cr_assert_eq(pr_radii(rad, x, 6, 0, 3), VEL_EINVAL);
    cr_assert_eq(precision_recall(&p, &r, x, 6, x, 3, 1, 3), VEL_EINVAL);
    cr_assert_eq(precision_recall(&p, &r, x, 6, x, 6, 1, 0), VEL_EINVAL);
}
