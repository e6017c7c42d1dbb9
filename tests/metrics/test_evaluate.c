// test_evaluate.c: metrics/evaluate.h and metrics/featnet.h: a set scored
// against its own reference statistics (FID and sFID 0 to 1e-6, precision and
// recall 1, IS as inception_score), the classifier network's features equal
// the model's own outputs, gray images equal replicated RGB for Inception,
// and statistics of one network are refused by another.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "metrics/evaluate.h"
#include "metrics/featnet.h"
#include "metrics/inception_score.h"
#include "models/classifier.h"
#include "nn/safetensors.h"
#include "tests/util.h"

Test(evaluate, self_scores) {
    enum { N = 300, D = 16, DS = 8, K = 10 };
    float *pool = malloc(sizeof(float) * N * D), *sp = malloc(sizeof(float) * N * DS);
    float *lg = malloc(sizeof(float) * N * K);
    fill_normal(pool, N * D, 1, 1.0f);
    fill_normal(sp, N * DS, 2, 3.0f);
    fill_normal(lg, N * K, 3, 2.0f);
    refstats *ref = NULL;
    cr_assert_eq(refstats_from_features(&ref, "net", "00000000000000aa", pool, N, D, sp, DS, N), 0);
    image_scores s;
    cr_assert_eq(evaluate_features(&s, ref, pool, N, D, lg, K, sp, DS), 0);
    double zero = 0, one = 1, is;
    cr_assert_eq(inception_score(&is, NULL, lg, N, K, IS_SPLIT_ADM), 0);
    cr_log_info("self: FID %.3g sFID %.3g IS %.4f P %.3f R %.3f", s.fid, s.sfid, s.is, s.precision, s.recall);
    expect_close_f64("self FID", &s.fid, &zero, 1, 1e-6, 0);
    expect_close_f64("self sFID", &s.sfid, &zero, 1, 1e-6, 0);
    expect_close_f64("IS", &s.is, &is, 1, 0, 1e-15);
    expect_close_f64("precision", &s.precision, &one, 1, 0, 0);
    expect_close_f64("recall", &s.recall, &one, 1, 0, 0);
    cr_assert_eq(s.n, N);
    // Without spatial input, logits or kept features: those metrics are NaN.
    refstats *bare = NULL;
    cr_assert_eq(refstats_from_features(&bare, "net", "00000000000000aa", pool, N, D, NULL, 0, 0), 0);
    cr_assert_eq(evaluate_features(&s, bare, pool + D, N - 1, D, NULL, 0, NULL, 0), 0);
    cr_assert(isfinite(s.fid) && s.fid > 0);
    cr_assert(isnan(s.sfid) && isnan(s.is) && isnan(s.precision) && isnan(s.recall));
    // Sizes that disagree with the reference.
    cr_assert_eq(evaluate_features(&s, ref, pool, N, D - 1, NULL, 0, NULL, 0), VEL_EINVAL);
    cr_assert_eq(evaluate_features(&s, ref, pool, N, D, NULL, 0, sp, DS + 1), VEL_EINVAL);
    refstats_destroy(&ref);
    refstats_destroy(&bare);
    free(pool); free(sp); free(lg);
}

Test(featnet, classifier_features_are_the_models) {
    enum { B = 5 };
    classifier *c = NULL;
    cr_assert_eq(classifier_create(&c, B, 0), 0);
    classifier_init_params(c, 7);
    char *dir = test_tmpdir("featnet"), path[512];
    snprintf(path, sizeof path, "%s/classifier.safetensors", dir);
    cr_assert_eq(st_save_params(path, &c->pt, DT_F32, NULL, 0), 0, "%s", vel_error_detail());
    featnet *f = NULL;
    cr_assert_eq(featnet_open(&f, FEATNET_CLASSIFIER, path, 2), 0, "%s", vel_error_detail());
    cr_assert_str_eq(featnet_name(f), FEATNET_CLASSIFIER_NAME);
    cr_assert_str_eq(featnet_label(f), "classifier features, not Inception");
    int D, K, Ds;
    featnet_dims(f, &D, &K, &Ds);
    cr_assert_eq(D, CLASSIFIER_FEAT_DIM);
    cr_assert_eq(K, CLASSIFIER_CLASSES);
    cr_assert_eq(Ds, CLASSIFIER_SPATIAL_DIM);
    uint8_t img[B * 1024];
    float x[B * 1024];
    for (int i = 0; i < B * 1024; i++) {
        img[i] = (uint8_t)((i * 37 + i / 1024 * 11) & 255);
        x[i] = img[i] / 127.5f - 1.0f;
    }
    float pool[B * CLASSIFIER_FEAT_DIM], lg[B * CLASSIFIER_CLASSES], sp[B * CLASSIFIER_SPATIAL_DIM];
    cr_assert_eq(featnet_run(f, img, B, 1, 32, 32, pool, lg, sp), 0);   // in chunks of 2
    // One pass of 5 here vs chunks of 2 there: the conv GEMMs group images
    // differently, so last-bit differences (measured max abs 4.5e-8).
    const float *want_lg = classifier_forward(c, x, B);
    expect_close_f32("logits", lg, want_lg, B * CLASSIFIER_CLASSES, 1e-6, 1e-5);
    expect_close_f32("features", pool, classifier_features(c), B * CLASSIFIER_FEAT_DIM, 1e-6, 1e-5);
    float want_sp[B * CLASSIFIER_SPATIAL_DIM];
    classifier_spatial(c, want_sp, B);
    expect_close_f32("spatial", sp, want_sp, B * CLASSIFIER_SPATIAL_DIM, 1e-6, 1e-5);
    // Spatial order (h, w, c): element (h=2, w=3, c=4) of image 1.
    const vtape_buf *blk = &c->t.bufs[c->spatial];
    cr_assert_eq(want_sp[CLASSIFIER_SPATIAL_DIM + (2 * 16 + 3) * 7 + 4],
                 blk->v[blk->per + 4 * 256 + 2 * 16 + 3]);
    cr_assert_eq(featnet_run(f, img, B, 3, 32, 32, NULL, lg, NULL), VEL_EINVAL);
    cr_assert_eq(featnet_run(f, img, 1, 1, 28, 28, NULL, lg, NULL), VEL_EINVAL);
    // Stats of this network are refused by Inception, and by other classifier weights.
    refstats *ref = NULL, *back = NULL;
    cr_assert_eq(refstats_from_features(&ref, featnet_name(f), featnet_hash_str(f), pool, B,
                                        CLASSIFIER_FEAT_DIM, NULL, 0, 0), 0);
    snprintf(path, sizeof path, "%s/ref.safetensors", dir);
    cr_assert_eq(refstats_save(path, ref), 0, "%s", vel_error_detail());
    featnet *inc = NULL;
    cr_assert_eq(featnet_open_random_inception(&inc, 1, 1), 0);
    cr_assert_eq(refstats_load(&back, path, featnet_name(inc), featnet_hash_str(inc)),
                 METRICS_ENET);
    cr_log_info("%s", vel_error_detail());
    char other[17];
    snprintf(other, sizeof other, "%s", featnet_hash_str(f));
    other[0] = other[0] == '0' ? '1' : '0';
    cr_assert_eq(refstats_load(&back, path, featnet_name(f), other), METRICS_ENET);
    cr_assert_eq(refstats_load(&back, path, featnet_name(f), featnet_hash_str(f)), 0, "%s", vel_error_detail());
    refstats_destroy(&back);
    refstats_destroy(&ref);
    featnet_close(&inc);
    featnet_close(&f);
    cr_assert_null(f);
    // Wrong weights file: a clear error.
    cr_assert_lt(featnet_open(&f, FEATNET_CLASSIFIER, path, 2), 0);
    cr_assert_null(f);
    cr_log_info("%s", vel_error_detail());
    classifier_destroy(&c);
    rm_rf(dir);
    free(dir);
}

Test(featnet, inception_gray_equals_replicated_rgb) {
    enum { H = 20, W = 24 };
    featnet *f = NULL;
    cr_assert_eq(featnet_open_random_inception(&f, 3, 1), 0);
    cr_assert_str_eq(featnet_name(f), "inception-v3-fid");
    uint8_t gray[2 * H * W], rgb[2 * 3 * H * W];
    for (int i = 0; i < 2 * H * W; i++) gray[i] = (uint8_t)(i * 7);
    for (int b = 0; b < 2; b++)
        for (int c = 0; c < 3; c++) memcpy(rgb + (b * 3 + c) * H * W, gray + b * H * W, H * W);
    float *a = malloc(sizeof(float) * 2 * 2048), *b = malloc(sizeof(float) * 2 * 2048);
    cr_assert_eq(featnet_run(f, gray, 2, 1, H, W, a, NULL, NULL), 0);
    cr_assert_eq(featnet_run(f, rgb, 2, 3, H, W, b, NULL, NULL), 0);
    expect_close_f32("gray vs rgb pool3", a, b, 2 * 2048, 0, 0);
    cr_assert_eq(featnet_run(f, gray, 2, 2, H, W, a, NULL, NULL), VEL_EINVAL);
    free(a); free(b);
    featnet_close(&f);
}
