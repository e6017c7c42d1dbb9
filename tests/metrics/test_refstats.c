// test_refstats.c: metrics/refstats.h: round trip to double precision (hi/lo
// pairs), FID of a set against its own cached statistics is 0 (to 1e-6),
// statistics of another network or other weights are refused, and malformed
// files are clear errors, never a crash.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/base.h"
#include "metrics/frechet.h"
#include "metrics/refstats.h"
#include "nn/safetensors.h"
#include "tests/util.h"

enum { N = 400, D = 24, DS = 10, NF = 50 };

typedef struct {
    float feats[N * D], spat[N * DS];
    double mu[D], sigma[D * D], mu_s[DS], sigma_s[DS * DS];
    refstats r;
} fixture;

static void make(fixture *f) {
    fill_normal(f->feats, N * D, 11, 1.0f);
    for (int i = 0; i < N * D; i++) f->feats[i] += 3.0f + 0.01f * (i % D);   // non-zero mean
    fill_normal(f->spat, N * DS, 12, 2.0f);
    cr_assert_eq(frechet_stats_f32(f->mu, f->sigma, f->feats, N, D), 0);
    cr_assert_eq(frechet_stats_f32(f->mu_s, f->sigma_s, f->spat, N, DS), 0);
    memset(&f->r, 0, sizeof f->r);
    snprintf(f->r.net, sizeof f->r.net, "test-net");
    snprintf(f->r.net_hash, sizeof f->r.net_hash, "0123456789abcdef");
    f->r.count = N;
    f->r.D = D; f->r.mu = f->mu; f->r.sigma = f->sigma;
    f->r.Ds = DS; f->r.mu_s = f->mu_s; f->r.sigma_s = f->sigma_s;
    f->r.nfeats = NF; f->r.feats = f->feats;
}

// Fixture statistics saved to a new temp dir (returned) as path.
static char *make_saved(fixture *f, char path[512]) {
    make(f);
    char *dir = test_tmpdir("refstats");
    snprintf(path, 512, "%s/ref.safetensors", dir);
    cr_assert_eq(refstats_save(path, &f->r), 0, "%s", vel_error_detail());
    return dir;
}

Test(refstats, round_trip_and_self_fid_zero) {
    static fixture f;
    char path[512], *dir = make_saved(&f, path);
    refstats *r = NULL;
    cr_assert_eq(refstats_load(&r, path, "test-net", "0123456789abcdef"), 0, "%s", vel_error_detail());
    cr_assert_eq(r->D, D);
    cr_assert_eq(r->Ds, DS);
    cr_assert_eq(r->count, N);
    cr_assert_eq(r->nfeats, NF);
    // hi + lo keeps ~48 bits: relative error below 1e-13.
    expect_close_f64("mu", r->mu, f.mu, D, 0, 1e-13);
    expect_close_f64("sigma", r->sigma, f.sigma, D * D, 1e-15, 1e-13);
    expect_close_f64("mu_s", r->mu_s, f.mu_s, DS, 0, 1e-13);
    expect_close_f64("sigma_s", r->sigma_s, f.sigma_s, DS * DS, 1e-15, 1e-13);
    cr_assert_eq(memcmp(r->feats, f.feats, sizeof(float) * NF * D), 0);
    double fid, sfid, zero = 0;
    cr_assert_eq(frechet_distance(&fid, f.mu, f.sigma, r->mu, r->sigma, D, NULL), 0);
    cr_assert_eq(frechet_distance(&sfid, f.mu_s, f.sigma_s, r->mu_s, r->sigma_s, DS, NULL), 0);
    cr_log_info("self FID from cached stats %.3g, sFID %.3g", fid, sfid);
    expect_close_f64("self FID", &fid, &zero, 1, 1e-6, 0);
    expect_close_f64("self sFID", &sfid, &zero, 1, 1e-6, 0);
    refstats_destroy(&r);
    cr_assert_null(r);
    // Without the optional parts.
    f.r.Ds = 0; f.r.mu_s = f.r.sigma_s = NULL; f.r.nfeats = 0; f.r.feats = NULL;
    cr_assert_eq(refstats_save(path, &f.r), 0, "%s", vel_error_detail());
    cr_assert_eq(refstats_load(&r, path, "test-net", "0123456789abcdef"), 0, "%s", vel_error_detail());
    cr_assert_eq(r->Ds, 0);
    cr_assert_null(r->sigma_s);
    cr_assert_null(r->feats);
    refstats_destroy(&r);
    rm_rf(dir);
    free(dir);
}

Test(refstats, other_network_is_refused) {
    static fixture f;
    char path[512], *dir = make_saved(&f, path);
    refstats *r = NULL;
    cr_assert_eq(refstats_load(&r, path, "inception-v3-fid", "0123456789abcdef"),
                 METRICS_ENET);
    cr_assert_null(r);
    const char *msg = vel_errmsg(METRICS_ENET);
    cr_assert(strstr(msg, "test-net") && strstr(msg, "inception-v3-fid"), "message: %s", msg);
    cr_assert_eq(refstats_load(&r, path, "test-net", "0123456789abcdee"),
                 METRICS_ENET);
    cr_log_info("%s", vel_error_detail());
    cr_assert_str_eq(vel_strerror(METRICS_ENET),
                     "metrics: statistics were computed with another feature network");
    rm_rf(dir);
    free(dir);
}

Test(refstats, weight_hash_sees_every_value) {
    param_table pt;
    param_table_init(&pt);
    param_add(&pt, "a.weight", 2, (int64_t[]){3, 4});
    param_add(&pt, "a.bias", 1, (int64_t[]){3});
    cr_assert_eq(param_table_commit(&pt), 0);
    fill_uniform(pt.values, pt.total, 3, -1, 1);
    uint64_t h0 = featnet_hash(&pt);
    cr_assert_eq(featnet_hash(&pt), h0);
    float *bias = param_data(&pt, 1);
    bias[2] = nextafterf(bias[2], 2.0f);
    cr_assert_neq(featnet_hash(&pt), h0);
    char hex[17];
    featnet_hash_hex(hex, 0xabcull);
    cr_assert_str_eq(hex, "0000000000000abc");
    param_table_free(&pt);
}

// Writes tensors + metadata with the safetensors writer (valid container,
// wrong contents).
static void write_raw(const char *path, const st_tensor_out *t, int n, const st_kv *meta, int nm) {
    cr_assert_eq(st_write(path, t, n, meta, nm), 0, "%s", vel_error_detail());
}

Test(refstats, malformed_files_are_clear_errors) {
    char *dir = test_tmpdir("refstats"), path[512];
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    float v[16] = {0};
    int64_t s4[1] = {4}, s44[2] = {4, 4}, s43[2] = {4, 3}, s3[1] = {3}, s25[2] = {2, 5};
    st_kv good[4] = {{"format", REFSTATS_FORMAT}, {"feature_net", "n"},
                     {"feature_net_hash", "0000000000000000"}, {"count", "7"}};
    st_tensor_out base[4] = {{"mu", DT_F32, 1, s4, v}, {"mu.lo", DT_F32, 1, s4, v},
                             {"sigma", DT_F32, 2, s44, v}, {"sigma.lo", DT_F32, 2, s44, v}};
    refstats *r = NULL;
    // The well-formed base loads.
    write_raw(path, base, 4, good, 4);
    cr_assert_eq(refstats_load(&r, path, "n", "0000000000000000"), 0, "%s", vel_error_detail());
    refstats_destroy(&r);
    struct { const char *what; int n; st_tensor_out t[5]; int nm; const char *count; int want; } cases[] = {
        {"sigma missing", 3, {base[0], base[1], base[3]}, 4, "7", METRICS_ESTATS},
        {"sigma.lo missing", 3, {base[0], base[1], base[2]}, 4, "7", METRICS_ESTATS},
        {"sigma not square", 4, {base[0], base[1], {"sigma", DT_F32, 2, s43, v}, base[3]}, 4, "7",
         METRICS_ESTATS},
        {"mu.lo of another length", 4, {base[0], {"mu.lo", DT_F32, 1, s3, v}, base[2], base[3]}, 4,
         "7", METRICS_ESTATS},
        {"mu 2-D", 4, {{"mu", DT_F32, 2, s44, v}, base[1], base[2], base[3]}, 4, "7", METRICS_ESTATS},
        {"unknown tensor", 5, {base[0], base[1], base[2], base[3], {"extra", DT_F32, 1, s4, v}}, 4,
         "7", METRICS_ESTATS},
        {"feats of another width", 5, {base[0], base[1], base[2], base[3], {"feats", DT_F32, 2, s25, v}},
         4, "7", METRICS_ESTATS},
        {"no metadata", 4, {base[0], base[1], base[2], base[3]}, 0, "7", METRICS_ESTATS},
        {"bad count", 4, {base[0], base[1], base[2], base[3]}, 4, "7x", METRICS_ESTATS},
        {"zero count", 4, {base[0], base[1], base[2], base[3]}, 4, "0", METRICS_ESTATS},
        {"mu_s without sigma_s", 5, {base[0], base[1], base[2], base[3], {"mu_s", DT_F32, 1, s4, v}},
         4, "7", METRICS_ESTATS},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        st_kv meta[4];
        memcpy(meta, good, sizeof meta);
        meta[3].value = cases[c].count;
        write_raw(path, cases[c].t, cases[c].n, meta, cases[c].nm);
        vel_error_clear();
        int rc = refstats_load(&r, path, "n", "0000000000000000");
        cr_assert_null(r);
        cr_expect_eq(rc, cases[c].want, "%s: got %d (%s), want %d", cases[c].what, rc,
                     vel_errmsg(rc), cases[c].want);
        cr_expect(vel_error_detail()[0], "%s: no detail", cases[c].what);
        cr_log_info("%s -> %s", cases[c].what, vel_errmsg(rc));
    }
    // Not a safetensors file at all, truncated, missing.
    FILE *fp = fopen(path, "wb");
    fputs("not a stats file", fp);
    fclose(fp);
    cr_assert_lt(refstats_load(&r, path, "n", "0000000000000000"), 0);
    cr_assert_null(r);
    write_raw(path, base, 4, good, 4);
    cr_assert_eq(truncate(path, 100), 0);
    cr_assert_lt(refstats_load(&r, path, "n", "0000000000000000"), 0);
    cr_assert_null(r);
    snprintf(path, sizeof path, "%s/none.safetensors", dir);
    cr_assert_lt(refstats_load(&r, path, "n", "0000000000000000"), 0);
    cr_assert_null(r);
    rm_rf(dir);
    free(dir);
}
