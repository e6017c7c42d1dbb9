// test_inception.c: models/inception.h against pytorch-fid on the CPU, on
// seeded random weights (no package ships the real ones): the committed
// fixture tests/fixtures/inception/ (tests/ref/fixture_inception.py) holds
// PyTorch's pool3, logits and Mixed_6d spatial features for seeded uint8
// images; the weights and images are regenerated here by the same
// generator. Also: the parameter names/shapes are pytorch-fid's state_dict
// (what scripts/convert_inception.py writes), loading a converted file, and
// the resize and pooling ops on closed forms.
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "models/inception.h"
#include "nn/pool.h"
#include "nn/safetensors.h"
#include "tests/util.h"

#define FIX "tests/fixtures/inception"
#define SEED 20151205ull

static float *fixture(const char *name, int64_t *n) {
    char p[256];
    snprintf(p, sizeof p, FIX "/%s.npy", name);
    npy_array a;
    cr_assert_eq(npy_load(p, &a), 0, "cannot read %s", p);
    cr_assert_str_eq(a.dtype, "f4");
    *n = a.numel;
    return a.data;   // npy_free only frees data
}

// The fixture's images: stream "image" of the generator, top byte.
static uint8_t *images(int B, int H, int W) {
    uint64_t h = 14695981039346656037ull;
    for (const char *s = "image"; *s; s++) { h ^= (unsigned char)*s; h *= 1099511628211ull; }
    size_t n = (size_t)B * 3 * H * W;
    uint8_t *img = malloc(n);
    for (size_t i = 0; i < n; i++) img[i] = (uint8_t)(test_mix64((SEED ^ h) + i) >> 56);
    return img;
}

static inception *model;

static void setup(void) {
    cr_assert_eq(inception_create(&model, 2), 0);
    inception_random_weights(model, SEED);
}
static void teardown(void) { inception_destroy(&model); }

Test(inception, names_and_shapes_are_pytorch_fid, .init = setup, .fini = teardown) {
    FILE *f = fopen(FIX "/tensors.txt", "r");
    cr_assert(f);
    const param_table *pt = inception_params(model);
    char line[256];
    int i = 0;
    while (fgets(line, sizeof line, f)) {
        char nm[128];
        int64_t s[4] = {0};
        int k = sscanf(line, "%127s %ld %ld %ld %ld", nm, &s[0], &s[1], &s[2], &s[3]);
        cr_assert_lt(i, pt->count, "more tensors in pytorch-fid than here: %s", nm);
        cr_assert_str_eq(pt->info[i].name, nm);
        cr_assert_eq(pt->info[i].ndim, k - 1, "%s", nm);
        for (int d = 0; d < k - 1; d++) cr_assert_eq(pt->info[i].shape[d], s[d], "%s dim %d", nm, d);
        i++;
    }
    fclose(f);
    cr_assert_eq(i, pt->count);
    cr_log_info("%d tensors, %ld floats", pt->count, (long)pt->total);
}

Test(inception, random_weights_match_the_python_generator, .init = setup, .fini = teardown) {
    npy_array a;
    cr_assert_eq(npy_load(FIX "/weight_sums.npy", &a), 0);
    cr_assert_str_eq(a.dtype, "f8");
    const double *want = a.data;
    const char *names[3] = {"Conv2d_1a_3x3.conv.weight", "Mixed_7c.branch_pool.bn.running_var",
                            "fc.weight"};
    const param_table *pt = inception_params(model);
    for (int k = 0; k < 3; k++) {
        int i = param_find(pt, names[k]);
        cr_assert_geq(i, 0);
        const float *v = param_data(pt, i);
        double s = 0;
        for (int64_t j = 0; j < pt->info[i].numel; j++) s += v[j];
        // Same floats, different summation order: ~1e-12 relative.
        expect_close_f64(names[k], &s, &want[k], 1, 1e-9, 1e-10);
    }
    npy_free(&a);
}

static void parity(const char *tag, int B, int H, int W) {
    int64_t np_, nl, ns;
    float *pool_ref = fixture(tag[0] == 's' ? "small_pool3" : "native_pool3", &np_);
    float *log_ref = fixture(tag[0] == 's' ? "small_logits" : "native_logits", &nl);
    float *sp_ref = fixture(tag[0] == 's' ? "small_spatial" : "native_spatial", &ns);
    cr_assert_eq(np_, (int64_t)B * INCEPTION_POOL_DIM);
    cr_assert_eq(nl, (int64_t)B * INCEPTION_LOGITS);
    cr_assert_eq(ns, (int64_t)B * INCEPTION_SPATIAL_DIM);
    uint8_t *img = images(B, H, W);
    float *pool = malloc(sizeof(float) * np_), *lg = malloc(sizeof(float) * nl);
    float *sp = malloc(sizeof(float) * ns);
    double t0 = vel_now();
    cr_assert_eq(inception_forward_u8(model, img, B, H, W, pool, lg, sp), 0);
    cmp_result cp = compare_f32(pool, pool_ref, np_, 1e-4, 0);
    cmp_result cl = compare_f32(lg, log_ref, nl, 1e-4, 1e-5);
    cmp_result cs = compare_f32(sp, sp_ref, ns, 1e-4, 0);
    cr_log_info("%s (%d x %dx%d, %.2f s): pool3 max abs %.3g, logits max abs %.3g, spatial max abs %.3g",
                tag, B, H, W, vel_now() - t0, cp.max_abs, cl.max_abs, cs.max_abs);
    // Targets of the issue: pool3 within 1e-4 (absolute; values are O(1-10));
    // logits (2048-term sums of pool3) 1e-4 + 1e-5 relative; spatial 1e-4.
    expect_close_f32("pool3 vs pytorch-fid", pool, pool_ref, np_, 1e-4, 0);
    expect_close_f32("logits vs pytorch-fid", lg, log_ref, nl, 1e-4, 1e-5);
    expect_close_f32("Mixed_6d spatial vs pytorch-fid", sp, sp_ref, ns, 1e-4, 0);
    free(pool_ref); free(log_ref); free(sp_ref); free(img); free(pool); free(lg); free(sp);
}

Test(inception, matches_pytorch_fid_upsampled_input, .init = setup, .fini = teardown) {
    parity("small", 2, 40, 56);
}
Test(inception, matches_pytorch_fid_native_299, .init = setup, .fini = teardown) {
    parity("native", 1, 299, 299);
}

Test(inception, loads_a_converted_file, .init = setup, .fini = teardown) {
    char *dir = test_tmpdir("inception"), path[512];
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    cr_assert_eq(st_save_params(path, inception_params(model), DT_F32, NULL, 0), 0, "%s", vel_error_detail());
    inception *m2 = NULL;
    cr_assert_eq(inception_create(&m2, 1), 0);
    cr_assert_eq(inception_load(m2, path), 0, "%s", vel_error_detail());
    const param_table *a = inception_params(model), *b = inception_params(m2);
    cr_assert_eq(memcmp(a->values, b->values, sizeof(float) * a->total), 0);
    // A file of some other network: a clear error naming the problem.
    param_table other;
    param_table_init(&other);
    param_add(&other, "fc.weight", 2, (int64_t[]){10, 64});
    cr_assert_eq(param_table_commit(&other), 0);
    cr_assert_eq(st_save_params(path, &other, DT_F32, NULL, 0), 0);
    int rc = inception_load(m2, path);
    cr_assert_lt(rc, 0);
    const char *msg = vel_errmsg(rc);
    cr_log_info("wrong file: %s", msg);
    cr_assert(strstr(msg, "w.safetensors") && strstr(msg, "missing"), "%s", msg);
    param_table_free(&other);
    inception_destroy(&m2);
    rm_rf(dir);
    free(dir);
}

Test(inception, bad_arguments) {
    inception *m = NULL;
    cr_assert_eq(inception_create(&m, 0), VEL_EINVAL);
    cr_assert_null(m);
}

Test(inception_ops, resize_closed_forms) {
    // Same size: identity. Constant: constant. 2x2 -> 4x4 by hand: source
    // coordinates 0, 0.25, 0.75, 1 (clamped / interpolated).
    float in[6] = {1, 2, 3, 4, 5, 6}, out[16];
    inception_resize_bilinear(out, 2, 3, in, 1, 2, 3);
    for (int i = 0; i < 6; i++) cr_assert_eq(out[i], in[i]);
    float q[4] = {0, 4, 8, 12};
    inception_resize_bilinear(out, 4, 4, q, 1, 2, 2);
    const float w[4] = {0, 0.25f, 0.75f, 1};
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++) {
            float want = (1 - w[y]) * ((1 - w[x]) * 0 + w[x] * 4) + w[y] * ((1 - w[x]) * 8 + w[x] * 12);
            cr_assert_float_eq(out[y * 4 + x], want, 1e-6, "(%d,%d) %g vs %g", y, x, out[y * 4 + x], want);
        }
    float c[9], big[299 * 299];
    for (int i = 0; i < 9; i++) c[i] = 0.5f;
    inception_resize_bilinear(big, 299, 299, c, 1, 3, 3);
    for (int i = 0; i < 299 * 299; i++) cr_assert_float_eq(big[i], 0.5f, 1e-7);
}

Test(inception_ops, pooling_closed_forms) {
    // 4x4 input 0..15.
    float x[16], y[16];
    for (int i = 0; i < 16; i++) x[i] = (float)i;
    cr_assert_eq(pool2d_out_size(4, 3, 2, 0), 1);
    maxpool2d_forward(y, x, 1, 1, 4, 4, 3, 2, 0);
    cr_assert_eq(y[0], 10.0f);
    // 3x3 stride 1 pad 1: corner windows hold 4 taps.
    maxpool2d_forward(y, x, 1, 1, 4, 4, 3, 1, 1);
    cr_assert_eq(y[0], 5.0f);
    cr_assert_eq(y[15], 15.0f);
    float neg[4] = {-5, -6, -7, -8};   // padding never wins a max
    maxpool2d_forward(y, neg, 1, 1, 2, 2, 3, 1, 1);
    for (int i = 0; i < 4; i++) cr_assert_eq(y[i], -5.0f);
    avgpool2d_forward(y, x, 1, 1, 4, 4, 3, 1, 1, 0);
    cr_assert_float_eq(y[0], (0 + 1 + 4 + 5) / 4.0f, 1e-6);        // 4 taps inside
    cr_assert_float_eq(y[5], (0 + 1 + 2 + 4 + 5 + 6 + 8 + 9 + 10) / 9.0f, 1e-6);
    avgpool2d_forward(y, x, 1, 1, 4, 4, 3, 1, 1, 1);
    cr_assert_float_eq(y[0], (0 + 1 + 4 + 5) / 9.0f, 1e-6);        // padding counted
    float g[2];
    pool_global_avg(g, x, 1, 2, 8);
    cr_assert_float_eq(g[0], 3.5f, 1e-7);
    cr_assert_float_eq(g[1], 11.5f, 1e-7);
}

static void expect_same_bits(const char *what, const float *a, const float *b, int64_t n) {
    int64_t bad = -1;
    for (int64_t i = 0; i < n && bad < 0; i++)
        if (memcmp(a + i, b + i, sizeof(float))) bad = i;
    cr_expect(bad < 0, "%s: differ at %lld (%.9g vs %.9g)", what, (long long)bad,
              bad >= 0 ? a[bad] : 0.0, bad >= 0 ? b[bad] : 0.0);
}

// The whole forward at 1 and 2 OpenMP threads gives the same bits (every
// kernel splits its work by shape only).
Test(inception, same_bits_at_1_and_2_threads, .init = setup, .fini = teardown) {
    const int B = 2, H = 40, W = 56;
    uint8_t *img = images(B, H, W);
    float *out[2][3];
    int saved = omp_get_max_threads();
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t + 1);
        out[t][0] = malloc(sizeof(float) * B * INCEPTION_POOL_DIM);
        out[t][1] = malloc(sizeof(float) * B * INCEPTION_LOGITS);
        out[t][2] = malloc(sizeof(float) * B * INCEPTION_SPATIAL_DIM);
        cr_assert_eq(inception_forward_u8(model, img, B, H, W, out[t][0], out[t][1], out[t][2]), 0);
    }
    omp_set_num_threads(saved);
    expect_same_bits("pool3, 1 vs 2 threads", out[0][0], out[1][0], B * INCEPTION_POOL_DIM);
    expect_same_bits("logits, 1 vs 2 threads", out[0][1], out[1][1], B * INCEPTION_LOGITS);
    expect_same_bits("spatial, 1 vs 2 threads", out[0][2], out[1][2], B * INCEPTION_SPATIAL_DIM);
    for (int t = 0; t < 2; t++) for (int k = 0; k < 3; k++) free(out[t][k]);
    free(img);
}
