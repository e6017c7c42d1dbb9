// toy_encode.c: `encode --model toy`: draws the training points of the
// class-A mixture (seeded), encodes them with a toy tokenizer checkpoint and
// writes mu and sigma (latent shape (2,1,1)) into the store, then the store's
// latent statistics (store_compute_stats, the one normalisation).
// `--identity` stores the raw points (mu = x, sigma = 0): the no-tokenizer
// diagnostic of SPEC section 2. `--diagnostics FILE` also writes the
// tokenizer's own numbers on held-out points (reconstruction MSE through mu
// and through z, latent statistics, the decode(mu + s*eps) robustness curve
// and the decode(mu + sigma*eps) off-manifold floor) as JSON, which eval can
// merge into its report without knowing anything of the tokenizer.
// Resumable: existing indices are verified (identical content) and skipped.
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/toy_gmm.h"
#include "models/toy_tok.h"
#include "nn/checkpoint.h"
#include "core/base.h"
#include "core/mt19937.h"
#include "stages/common/flags.h"
#include "stages/encode/encode.h"
#include "store/store.h"

static const char STAGE[] = "encode";
// Bounds: the points, their moments and sigma are held at once (32 bytes each).
enum { ENCODE_MAX_N = 10000000, ENCODE_MAX_BATCH = 1 << 16 };

static void help(void) {
    printf("usage: encode --model toy --store DIR (--ckpt TOKENIZER.safetensors | --identity) [options]\n"
           "Encodes N training points of the class-A mixture into the latent store.\n"
           "  --n N              training points (default 20000)\n"
           "  --data-seed S      seed of the training points (default 1)\n"
           "  --batch N          encoder batch (default 4096)\n"
           "  --identity         no tokenizer: mu = x, sigma = 0 (raw-data flow diagnostic)\n"
           "  --diagnostics F    write tokenizer diagnostics on held-out points to F (JSON)\n"
           "  --n-holdout N      held-out points for diagnostics (default 10000, seed 777)\n"
           DEVICE_HELP);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// numpy's default (linear) percentile; v is sorted in place.
static double percentile_sorted(double *v, int64_t n, double q) {
    qsort(v, n, sizeof(double), cmp_d);
    double pos = q / 100.0 * (double)(n - 1);
    int64_t lo = (int64_t)floor(pos), hi = lo + 1 < n ? lo + 1 : lo;
    return v[lo] + (v[hi] - v[lo]) * (pos - (double)lo);
}

typedef struct { double mean_logp, off_rate; } logp_stats;

static logp_stats score(const toy_gmm *g, const float *x, int64_t n, double thr, double *lp) {
    toy_gmm_logp_batch(g, x, n, lp);
    logp_stats s = {0, 0};
    for (int64_t i = 0; i < n; i++) s.mean_logp += lp[i], s.off_rate += lp[i] < thr;
    s.mean_logp /= n;
    s.off_rate /= n;
    return s;
}

static int diagnostics(const char *path, toy_tok *t, const toy_gmm *g, int n) {
    float *x = malloc(sizeof(float) * 2 * n), *mu = malloc(sizeof(float) * 2 * n);
    float *lv = malloc(sizeof(float) * 2 * n), *z = malloc(sizeof(float) * 2 * n);
    float *xr = malloc(sizeof(float) * 2 * n), *eps = malloc(sizeof(float) * 2 * n);
    double *lp = malloc(sizeof(double) * n), *tmp = malloc(sizeof(double) * n);
    if (!x || !mu || !lv || !z || !xr || !eps || !lp || !tmp) return VEL_ENOMEM;
    mt19937 r;
    mt_seed(&r, 777);
    toy_gmm_sample(g, &r, x, n);
    for (int i = 0; i < 2 * n; i++) eps[i] = (float)mt_randn(&r);
    toy_gmm_logp_batch(g, x, n, lp);
    double true_mean = 0;
    for (int i = 0; i < n; i++) true_mean += lp[i];
    true_mean /= n;
    memcpy(tmp, lp, sizeof(double) * n);
    double thr = percentile_sorted(tmp, n, 1.0);
    toy_tok_encode(t, mu, lv, x, n);
    // reconstruction through mu and through z = mu + sigma * eps
    double mse_mu = 0, mse_z = 0, ms = 0, m[2] = {0, 0}, v[2] = {0, 0};
    toy_tok_decode(t, xr, mu, n);
    for (int i = 0; i < 2 * n; i++) mse_mu += ((double)xr[i] - x[i]) * ((double)xr[i] - x[i]);
    for (int i = 0; i < 2 * n; i++) z[i] = mu[i] + expf(0.5f * lv[i]) * eps[i];
    toy_tok_decode(t, xr, z, n);
    for (int i = 0; i < 2 * n; i++) mse_z += ((double)xr[i] - x[i]) * ((double)xr[i] - x[i]);
    logp_stats floor_ = score(g, xr, n, thr, tmp);
    for (int i = 0; i < 2 * n; i++) ms += expf(0.5f * lv[i]), m[i % 2] += mu[i];
    for (int d = 0; d < 2; d++) m[d] /= n;
    for (int i = 0; i < 2 * n; i++) v[i % 2] += (mu[i] - m[i % 2]) * (mu[i] - m[i % 2]);
    double spread = sqrt((v[0] + v[1]) / (2.0 * (n - 1)));   // RMS over dims of std(mu)
    ms /= 2.0 * n;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "n_holdout", n);
    cJSON_AddNumberToObject(j, "true_mean_logp", true_mean);
    cJSON_AddNumberToObject(j, "off_threshold_logp", thr);
    cJSON_AddNumberToObject(j, "rec_mse_mu", mse_mu / n);
    cJSON_AddNumberToObject(j, "rec_mse_z", mse_z / n);
    cJSON_AddNumberToObject(j, "mean_sigma", ms);
    cJSON_AddNumberToObject(j, "mu_spread", spread);
    cJSON_AddNumberToObject(j, "sigma_over_spread", ms / spread);
    cJSON_AddNumberToObject(j, "floor_mean_logp", floor_.mean_logp);
    cJSON_AddNumberToObject(j, "floor_off_manifold", floor_.off_rate);
    // robustness: decode(mu + s * spread * eps), s relative to the latent spread
    // so that arms with different latent scales are compared fairly
    cJSON *rob = cJSON_AddArrayToObject(j, "robustness");
    const double ss[] = {0.0, 0.01, 0.03, 0.1, 0.3};
    for (size_t k = 0; k < sizeof ss / sizeof *ss; k++) {
        for (int i = 0; i < 2 * n; i++) z[i] = mu[i] + (float)(ss[k] * spread) * eps[i];
        toy_tok_decode(t, xr, z, n);
        logp_stats s = score(g, xr, n, thr, tmp);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "s_rel", ss[k]);
        cJSON_AddNumberToObject(e, "mean_logp", s.mean_logp);
        cJSON_AddNumberToObject(e, "off_manifold", s.off_rate);
        cJSON_AddItemToArray(rob, e);
    }
    char *txt = cJSON_Print(j);
    FILE *f = fopen(path, "w");
    int rc = (!txt || !f || fputs(txt, f) < 0) ? VEL_EIO : 0;
    if (f && fclose(f)) rc = VEL_EIO;
    fprintf(stderr, "[encode toy] diagnostics: rec_mse_mu %.4g rec_mse_z %.4g mean_sigma %.4g spread %.4g floor_off %.4f\n",
            mse_mu / n, mse_z / n, ms, spread, floor_.off_rate);
    free(txt);
    cJSON_Delete(j);
    free(x); free(mu); free(lv); free(z); free(xr); free(eps); free(lp); free(tmp);
    return rc;
}

int encode_toy_main(int argc, char **argv) {
    const char *ckpt = NULL, *spath = NULL, *diag = NULL;
    int n = 20000, seed = 1, batch = 4096, identity = 0, nhold = 10000;
    const flag_spec F[] = {
        FLAG_STR_("ckpt", &ckpt), FLAG_STR_("store", &spath), FLAG_INT_("n", &n, 4, ENCODE_MAX_N),
        FLAG_INT_("data-seed", &seed, INT_MIN, INT_MAX), FLAG_INT_("batch", &batch, 1, ENCODE_MAX_BATCH),
        FLAG_BOOL_("identity", &identity), FLAG_STR_("diagnostics", &diag),
        FLAG_INT_("n-holdout", &nhold, 100, ENCODE_MAX_N), FLAG_DEVICE_};
    int help_asked;
    if (flag_parse(STAGE, argc, argv, F, FLAG_COUNT(F), &help_asked, NULL)) return 2;
    if (help_asked) { help(); return 0; }
    if (!spath || (!ckpt && !identity) || (ckpt && identity)) {
        fprintf(stderr, "encode: need --store DIR and exactly one of --ckpt FILE or --identity\n");
        return 2;
    }
    char hash[17] = "identity";
    toy_tok *t = NULL;
    if (ckpt) {
        int rc = toy_tok_load(&t, ckpt, batch);
        if (rc) { fprintf(stderr, "encode: cannot load tokenizer: %s\n", vel_errmsg(rc)); return vel_exit_code(rc); }
        if (ckpt_file_hash(ckpt, hash)) { fprintf(stderr, "encode: cannot read %s\n", ckpt); toy_tok_destroy(&t); return 1; }
    }
    toy_gmm *g = NULL;
    if (toy_gmm_build(&g, "A")) { toy_tok_destroy(&t); return 1; }
    int rc = 1;
    float *x = malloc(sizeof(float) * 2 * n), *mu = malloc(sizeof(float) * 2 * n);
    float *lv = malloc(sizeof(float) * 2 * n), *sg = malloc(sizeof(float) * 2 * n);
    store_record *recs = malloc(sizeof(store_record) * batch);
    store *st = NULL;
    if (!x || !mu || !lv || !sg || !recs) { fprintf(stderr, "encode: out of memory\n"); goto done; }
    mt19937 r;
    mt_seed(&r, (uint32_t)seed);
    toy_gmm_sample(g, &r, x, n);
    if (identity) {
        memcpy(mu, x, sizeof(float) * 2 * n);
        memset(sg, 0, sizeof(float) * 2 * n);
    } else {
        toy_tok_encode(t, mu, lv, x, n);
        for (int i = 0; i < 2 * n; i++) sg[i] = expf(0.5f * lv[i]);
    }
    store_meta meta;
    char dataset[64];
    snprintf(dataset, sizeof dataset, "toy-gmm-A-seed%d", seed);
    if (store_meta_init(&meta, hash, 2, 1, 1, false, dataset, (uint64_t)n, "toy-v1")) goto done;
    int e = store_create(&st, spath, &meta, NULL);
    if (e) {
        fprintf(stderr, "encode: cannot create store %s: %s (%s)\n", spath, vel_strerror(e), vel_error_detail());
        goto done;
    }
    size_t written = 0, skipped = 0;
    for (int s = 0; s < n; s += batch) {
        int m = n - s < batch ? n - s : batch;
        for (int i = 0; i < m; i++)
            recs[i] = (store_record){.index = (uint64_t)(s + i), .label = -1, .mu = mu + 2 * (s + i),
                                     .sigma = sg + 2 * (s + i)};
        store_put_result res;
        if ((e = store_put_batch(st, recs, m, &res))) {
            fprintf(stderr, "encode: writing %s: %s (%s)\n", spath, vel_strerror(e), vel_error_detail());
            goto done;
        }
        written += res.written, skipped += res.skipped;
    }
    float mean[2], std[2];
    if ((e = store_compute_stats(st, mean, std, (size_t)n, 0)) || (e = store_set_stats(st, mean, std))) {
        fprintf(stderr, "encode: latent statistics: %s (%s)\n", vel_strerror(e), vel_error_detail());
        goto done;
    }
    fprintf(stderr, "[encode toy] %s: %zu written, %zu already present; latent mean (%.4g, %.4g) std (%.4g, %.4g)\n",
            spath, written, skipped, mean[0], mean[1], std[0], std[1]);
    if (diag && t && stage_mkdir_parent(STAGE, diag)) goto done;
    if (diag && t && (e = diagnostics(diag, t, g, nhold))) {
        fprintf(stderr, "encode: cannot write diagnostics %s: %s\n", diag, vel_strerror(e));
        goto done;
    }
    rc = 0;
done:
    store_close(&st);
    free(x); free(mu); free(lv); free(sg); free(recs);
    toy_tok_destroy(&t);
    toy_gmm_destroy(&g);
    return rc;
}
