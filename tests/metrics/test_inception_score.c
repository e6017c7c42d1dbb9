// test_inception_score.c: metrics/inception_score.h against ADM's formula in
// numpy (tests/ref/gen_metrics.py) and closed forms.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "core/base.h"
#include "metrics/inception_score.h"
#include "tests/util.h"

static void against_numpy(const char *logits_name, const char *ref_name, int K, int64_t split) {
    int64_t n, nr;
    float *l = ref_f32("metrics", logits_name, &n);
    double *ref = ref_f64("metrics", ref_name, &nr);
    cr_assert_eq(nr, 2);
    double is, sd;
    cr_assert_eq(inception_score(&is, &sd, l, n / K, K, split), 0);
    cr_log_info("%s: C %.12f numpy %.12f", ref_name, is, ref[0]);
    // Both in double from the same float logits: ~1e-15 relative.
    expect_close_f64("inception score vs numpy", &is, &ref[0], 1, 1e-12, 1e-11);
    expect_close_f64("split std vs numpy", &sd, &ref[1], 1, 1e-12, 1e-10);
    free(l); free(ref);
}

Test(inception_score, matches_numpy_with_short_last_split) {
    against_numpy("is_logits", "is_split500", 17, 500);
}
Test(inception_score, matches_numpy_one_split) { against_numpy("is_logits", "is_whole", 17, 5000); }
Test(inception_score, matches_numpy_1008_classes) {
    against_numpy("is_big_logits", "is_big_split30", 1008, 30);
}

Test(inception_score, closed_forms) {
    enum { K = 8, N = 64 };
    float l[N * K];
    // Identical rows: p = marginal, KL 0, IS exactly 1.
    for (int i = 0; i < N; i++)
        for (int k = 0; k < K; k++) l[i * K + k] = (float)(k * 0.3);
    double is, one = 1.0;
    cr_assert_eq(inception_score(&is, NULL, l, N, K, 5000), 0);
    expect_close_f64("identical rows", &is, &one, 1, 1e-12, 0);
    // Confident predictions spread evenly over K classes: IS -> K.
    for (int i = 0; i < N; i++)
        for (int k = 0; k < K; k++) l[i * K + k] = k == i % K ? 60.0f : 0.0f;
    double want = K;
    cr_assert_eq(inception_score(&is, NULL, l, N, K, 5000), 0);
    expect_close_f64("one-hot balanced", &is, &want, 1, 1e-9, 1e-9);
    // Extreme logits: exp underflows to 0 for the losers; still finite.
    for (int i = 0; i < N * K; i++) l[i] = (i % 3) ? -1e4f : 1e4f;
    cr_assert_eq(inception_score(&is, NULL, l, N, K, 7), 0);
    cr_assert(isfinite(is), "IS %g", is);
}

Test(inception_score, bad_arguments) {
    float l[4] = {0};
    double is;
    cr_assert_eq(inception_score(&is, NULL, l, 0, 2, 1), VEL_EINVAL);
    cr_assert_eq(inception_score(&is, NULL, l, 2, 1, 1), VEL_EINVAL);
    cr_assert_eq(inception_score(&is, NULL, l, 2, 2, 0), VEL_EINVAL);
    cr_assert_eq(inception_score(NULL, NULL, l, 2, 2, 1), VEL_EINVAL);
}
