// Latent statistics and THE normalisation pair, against closed forms:
// records built as mu = m_c + d_c * s with s = +-1 balanced within every
// record and sigma = g_c, so any subset has mean m_c and
// std sqrt(d_c^2 + g_c^2) exactly (store.h: std of z = mu + sigma*eps in
// expectation over eps). Normalise/denormalise on z = m_c + std_c * k give k.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "tests/store/store_testdata.h"
#include "tests/util.h"

#define ASSERT_OK(expr)                                                                  \
    do {                                                                                 \
        int rc_ = (expr);                                                                \
        cr_assert_eq(rc_, 0, "%s -> %d (%s: %s)", #expr, rc_, vel_strerror(rc_),       \
                     vel_error_detail());                                                \
    } while (0)

static const float M[3] = {0.5f, -2.0f, 3.0f}, D[3] = {1.0f, 0.25f, 2.0f}, G[3] = {0.0f, 0.75f, 1.5f};

static store *make_closed_form(const char *dir, int n) {
    store_meta m = td_meta(3, 2, 2, false);
    store *s;
    ASSERT_OK(store_create(&s, dir, &m, NULL));
    for (int i = 0; i < n; i++) {
        float mu[12], sg[12];
        for (int c = 0; c < 3; c++)
            for (int j = 0; j < 4; j++) {
                float sign = ((j + (j >> 1)) & 1) ? 1.0f : -1.0f;   // (h+w) parity: 2 of each
                mu[c * 4 + j] = M[c] + D[c] * sign;
                sg[c * 4 + j] = G[c];
            }
        store_record r = {(uint64_t)i * 3, i % 10, mu, sg, NULL, NULL};
        ASSERT_OK(store_put_batch(s, &r, 1, NULL));
    }
    return s;
}

Test(store_stats, closed_form_all_records_and_subsets) {
    char *dir = test_tmpdir("store-stats");
    store *s = make_closed_form(dir, 40);
    double want_std[3];
    for (int c = 0; c < 3; c++) want_std[c] = sqrt((double)D[c] * D[c] + (double)G[c] * G[c]);
    size_t subsets[3] = {0, 40, 7};   // 0 and >= count: all records
    for (int k = 0; k < 3; k++) {
        float mean[3], std[3];
        ASSERT_OK(store_compute_stats(s, mean, std, subsets[k], 42));
        for (int c = 0; c < 3; c++) {
            // All values are dyadic; the float results are exact to rounding.
            cr_assert(fabs(mean[c] - M[c]) <= 1e-6 * fabs(M[c]), "mean[%d] %.9g want %g", c, mean[c], M[c]);
            cr_assert(fabs(std[c] - want_std[c]) <= 1e-6 * want_std[c], "std[%d] %.9g want %.9g", c, std[c], want_std[c]);
        }
    }
    store_close(&s);
    rm_rf(dir); free(dir);
}

Test(store_stats, seeded_subset_is_deterministic_and_seed_dependent) {
    char *dir = test_tmpdir("store-stats-seed");
    store_meta m = td_meta(4, 3, 3, false);
    store *s;
    ASSERT_OK(store_create(&s, dir, &m, NULL));
    float buf[4 * 36];
    for (uint64_t i = 0; i < 200; i++) {
        store_record r = td_record(buf, i, 36, false);
        ASSERT_OK(store_put_batch(s, &r, 1, NULL));
    }
    float m1[4], s1[4], m2[4], s2[4], m3[4], s3[4], ma[4], sa[4];
    ASSERT_OK(store_compute_stats(s, m1, s1, 50, 7));
    ASSERT_OK(store_compute_stats(s, m2, s2, 50, 7));
    ASSERT_OK(store_compute_stats(s, m3, s3, 50, 8));
    ASSERT_OK(store_compute_stats(s, ma, sa, 0, 7));
    cr_assert_eq(memcmp(m1, m2, sizeof m1), 0, "same seed, same mean");
    cr_assert_eq(memcmp(s1, s2, sizeof s1), 0, "same seed, same std");
    cr_assert_neq(memcmp(m1, m3, sizeof m1), 0, "another seed draws another subset");
    // td data: mu uniform in [-1,1), sigma uniform in [0.01,1.01): the full-set
    // moments approach 0 and sqrt(1/3 + E[sigma^2]) = sqrt(1/3 + 0.3434).
    double want = sqrt(1.0 / 3 + (pow(1.01, 3) - pow(0.01, 3)) / 3);
    for (int c = 0; c < 4; c++) {
        // 1800 samples per channel: mean's standard error ~ 0.58/sqrt(1800) = 0.014.
        cr_assert(fabs(ma[c]) < 0.06, "mean[%d] = %g", c, ma[c]);
        cr_assert(fabs(sa[c] - want) < 0.03, "std[%d] = %g want %g", c, sa[c], want);
    }
    store_close(&s);
    rm_rf(dir); free(dir);
}

Test(store_stats, set_stats_persists_and_normalise_pair) {
    char *dir = test_tmpdir("store-norm");
    store *s = make_closed_form(dir, 8);
    float z[2 * 12], zn[2 * 12], back[2 * 12];
    cr_assert_eq(store_normalise(zn, z, store_get_meta(s), 2), STORE_ENOSTATS);
    cr_assert_eq(store_denormalise(z, zn, store_get_meta(s), 2), STORE_ENOSTATS);
    float mean[3], std[3];
    ASSERT_OK(store_compute_stats(s, mean, std, 0, 1));
    ASSERT_OK(store_set_stats(s, mean, std));
    cr_assert(store_get_meta(s)->has_stats);
    store_close(&s);
    int64_t shape[3] = {3, 2, 2};
    ASSERT_OK(store_open(&s, dir, "sha256:tok-test", shape, NULL));
    const store_meta *m = store_get_meta(s);
    cr_assert(m->has_stats);
    cr_assert_eq(memcmp(m->mean, mean, sizeof mean), 0, "mean persisted bit-exactly");
    cr_assert_eq(memcmp(m->std, std, sizeof std), 0, "std persisted bit-exactly");
    // z = mean_c + std_c * k  ->  zn = k (closed form), for k in a small grid.
    float k[2 * 12];
    for (int b = 0; b < 2; b++)
        for (int c = 0; c < 3; c++)
            for (int j = 0; j < 4; j++) {
                int i = (b * 3 + c) * 4 + j;
                k[i] = (float)(i % 7) - 3.0f;
                z[i] = (float)((double)m->mean[c] + (double)m->std[c] * k[i]);
            }
    ASSERT_OK(store_normalise(zn, z, m, 2));
    // Roundings in z, z - mean and the division: a few ulp of |k| + |mean/std|.
    expect_close_f32("normalise", zn, k, 24, 2e-6, 1e-6);
    ASSERT_OK(store_denormalise(back, zn, m, 2));
    expect_close_f32("denormalise(normalise(z))", back, z, 24, 2e-6, 1e-6);
    // In place.
    memcpy(back, z, sizeof z);
    ASSERT_OK(store_normalise(back, back, m, 2));
    cr_assert_eq(memcmp(back, zn, sizeof zn), 0, "in place = out of place");
    ASSERT_OK(store_denormalise(back, back, m, 2));
    expect_close_f32("in-place round trip", back, z, 24, 2e-6, 1e-6);
    store_close(&s);
    rm_rf(dir); free(dir);
}

Test(store_stats, empty_cache_and_reload) {
    char *dir = test_tmpdir("store-stats-empty");
    store_meta meta = td_meta(2, 1, 1, false);
    store *s;
    ASSERT_OK(store_create(&s, dir, &meta, NULL));
    float mean[2], std[2];
    cr_assert_eq(store_compute_stats(s, mean, std, 0, 1), STORE_ENOKEY);
    float bad_std[2] = {1.0f, 0.0f}, ok_mean[2] = {0.1f, 0.2f}, ok_std[2] = {1.5f, 2.5f};
    cr_assert_eq(store_set_stats(s, ok_mean, bad_std), STORE_EMETA);
    cr_assert(!store_get_meta(s)->has_stats);
    ASSERT_OK(store_set_stats(s, ok_mean, ok_std));
    ASSERT_OK(store_meta_reload(s));
    cr_assert(store_get_meta(s)->has_stats);
    cr_assert_eq(store_get_meta(s)->std[1], 2.5f);
    // A constant channel with zero sigma cannot be normalised.
    float mu[2] = {1.0f, 2.0f}, sg[2] = {0.5f, 0.0f};
    store_record r = {0, 0, mu, sg, NULL, NULL};
    ASSERT_OK(store_put_batch(s, &r, 1, NULL));
    cr_assert_eq(store_compute_stats(s, mean, std, 0, 1), VEL_ERANGE);
    cr_assert(strstr(vel_error_detail(), "channel 1"), "%s", vel_error_detail());
    store_close(&s);
    rm_rf(dir); free(dir);
}
