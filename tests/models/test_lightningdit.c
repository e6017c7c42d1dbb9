// Tests for models/lightningdit.h: one block alone and a whole tiny LightningDiT (two blocks,
// D 64, 4 heads) forward and backward against the float64 numpy model of
// tests/ref/gen_dit.py (same weights, loaded by PyTorch name; the numpy
// backward is itself checked by finite differences there), with and without
// q/k norm, patch 1 and 2, a dropped label; the adaLN-Zero init; parameter
// names and counts; bad input and config errors; thread-count independence.
#include <criterion/criterion.h>

#include "core/error.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/lightningdit.h"
#include "core/base.h"
#include "tests/util.h"

static void report(const char *what, const float *x, const float *r, int64_t n,
                   double atol, double rtol) {
    cmp_result c = compare_f32(x, r, n, atol, rtol);
    fprintf(stderr, "[ldit] %-48s max_abs %.3g max_rel %.3g nmse %.3g\n", what, c.max_abs,
            c.max_rel, c.nmse);
    expect_close_f32(what, x, r, n, atol, rtol);
}

static void run_case(const char *prefix, ldit_config cfg, int B) {
    char group[64], name[160];
    snprintf(group, sizeof group, "dit/%s", prefix);
    ldit *m;
    cr_assert_eq(ldit_create(&m, &cfg, B + 1), 0);
    for (int i = 0; i < m->pt.count; i++) {
        int64_t n;
        float *w = ref_f32(group, m->pt.info[i].name, &n);
        cr_assert_eq(n, m->pt.info[i].numel, "%s: %lld vs %lld", m->pt.info[i].name,
                     (long long)n, (long long)m->pt.info[i].numel);
        memcpy(param_data(&m->pt, i), w, n * sizeof(float));
        free(w);
    }
    int64_t nx, nb;
    float *x = ref_f32(group, "in_x", &nx), *t = ref_f32(group, "in_t", &nb);
    float *yf = ref_f32(group, "in_y", &nb), *df = ref_f32(group, "in_drop", &nb);
    float *dv = ref_f32(group, "in_dv", &nx), *vr = ref_f32(group, "out_v", &nx);
    float *dxr = ref_f32(group, "out_dx", &nx);
    cr_assert_eq(nb, B);
    int32_t y[8];
    uint8_t drop[8];
    for (int b = 0; b < B; b++) { y[b] = (int32_t)yf[b]; drop[b] = df[b] != 0.0f; }
    float *v = malloc(nx * 4), *dx = malloc(nx * 4);
    cr_assert_eq(ldit_forward(m, v, x, t, y, drop, B), 0);
    // float32 model vs float64 reference; measured max abs 1.3e-6 on |v| ~ 1
    snprintf(name, sizeof name, "%s v", prefix);
    report(name, v, vr, nx, 1e-5, 1e-4);
    param_zero_grads(&m->pt);
    for (int64_t i = 0; i < nx; i++) dx[i] = 0.5f;
    ldit_backward(m, dx, dv);
    for (int64_t i = 0; i < nx; i++) dx[i] -= 0.5f;
    snprintf(name, sizeof name, "%s dx", prefix);
    report(name, dx, dxr, nx, 1e-5, 1e-4);   // measured max abs 1.9e-6
    for (int i = 0; i < m->pt.count; i++) {
        int64_t n;
        snprintf(name, sizeof name, "grad.%s", m->pt.info[i].name);
        float *g = ref_f32(group, name, &n);
        snprintf(name, sizeof name, "%s %s", prefix, m->pt.info[i].name);
        // gradients summed over B*T tokens (values up to ~100): measured max
        // abs 2.1e-5 (nmse <= 1e-12), see the printed lines
        report(name, param_grad(&m->pt, i), g, n, 1e-4, 1e-4);
        free(g);
    }
    free(x); free(t); free(yf); free(df); free(dv); free(vr); free(dxr); free(v); free(dx);
    ldit_destroy(&m);
    cr_assert_null(m);
}

Test(lightningdit, tiny_vs_numpy, .timeout = 60) {
    ldit_config c;
    cr_assert_eq(ldit_config_preset("tiny", &c), 0);
    run_case("tiny", c, 2);
}

Test(lightningdit, tiny_qknorm_patch2_drop_vs_numpy, .timeout = 60) {
    ldit_config c;
    cr_assert_eq(ldit_config_preset("tiny", &c), 0);
    c.qk_norm = 1;
    c.patch = 2;
    run_case("tinyqk", c, 3);
}

// One block alone (block 0 of a depth-1 model with q/k norm): output, input
// and conditioning gradients and every block parameter gradient.
Test(lightningdit, block_vs_numpy) {
    ldit_config c;
    ldit_config_preset("tiny", &c);
    c.depth = 1;
    c.qk_norm = 1;
    const int B = 2, T = 64, D = 64, n = B * T * D;
    ldit *m;
    cr_assert_eq(ldit_create(&m, &c, B), 0);
    int64_t k;
    for (int i = 0; i < m->pt.count; i++) {
        if (strncmp(m->pt.info[i].name, "blocks.0.", 9)) continue;
        float *w = ref_f32("dit/block", m->pt.info[i].name, &k);
        cr_assert_eq(k, m->pt.info[i].numel);
        memcpy(param_data(&m->pt, i), w, k * 4);
        free(w);
    }
    float *x = ref_f32("dit/block", "in_x", &k), *sc = ref_f32("dit/block", "in_sc", &k);
    float *dout = ref_f32("dit/block", "in_dout", &k), *yr = ref_f32("dit/block", "out_y", &k);
    float *dxr = ref_f32("dit/block", "out_dx", &k), *dscr = ref_f32("dit/block", "out_dsc", &k);
    float *y = malloc(n * 4), *dx = calloc(n, 4), dsc[2 * 64] = {0};
    cr_assert_eq(ldit_block_forward(m, 0, y, x, sc, B), 0);
    report("block y", y, yr, n, 1e-5, 1e-4);     // measured max abs 2.2e-6
    param_zero_grads(&m->pt);
    ldit_block_backward(m, 0, dx, dsc, dout, B);
    report("block dx", dx, dxr, n, 1e-5, 1e-4);   // measured max abs 2.2e-6
    // dsc sums over all tokens (values ~10-100): measured max abs 2.0e-5
    report("block dsc", dsc, dscr, B * D, 1e-4, 1e-4);
    char name[160];
    for (int i = 0; i < m->pt.count; i++) {
        if (strncmp(m->pt.info[i].name, "blocks.0.", 9)) continue;
        snprintf(name, sizeof name, "grad.%s", m->pt.info[i].name);
        float *g = ref_f32("dit/block", name, &k);
        snprintf(name, sizeof name, "block %s", m->pt.info[i].name);
        report(name, param_grad(&m->pt, i), g, k, 1e-4, 1e-4);   // measured <= 2.3e-5
        free(g);
    }
    free(x); free(sc); free(dout); free(yr); free(dxr); free(dscr); free(y); free(dx);
    ldit_destroy(&m);
}

Test(lightningdit, names_and_counts) {
    ldit_config c;
    cr_assert_eq(ldit_config_preset("B", &c), 0);
    // closed form: per block 2D + (3D^2+3D) + (D^2+D) + (2HD+2H) + (DH+D) + (6D^2+6D)
    const int64_t D = 768, H = 2048, P = 32;
    const int64_t blk = 2 * D + 3 * D * D + 3 * D + D * D + D + 2 * H * D + 2 * H + D * H + D +
                        6 * D * D + 6 * D;
    const int64_t want = (D * P + D) + (256 * D + D) + (D * D + D) + 1001 * D + 12 * blk +
                         D + (P * D + P) + (2 * D * D + 2 * D);
    cr_assert_eq(ldit_param_count(&c), want, "%lld vs %lld", (long long)ldit_param_count(&c),
                 (long long)want);
    fprintf(stderr, "[ldit] LightningDiT-B params: %lld\n", (long long)want);
    cr_assert_eq(ldit_mlp_hidden(&c), 2048);
    ldit_config_preset("tiny", &c);
    c.qk_norm = 1;
    ldit *m;
    cr_assert_eq(ldit_create(&m, &c, 1), 0);
    const char *names[] = {"x_embedder.proj.weight", "t_embedder.mlp.0.weight",
                           "t_embedder.mlp.2.bias", "y_embedder.embedding_table.weight",
                           "blocks.0.adaLN_modulation.1.weight", "blocks.1.attn.qkv.weight",
                           "blocks.1.attn.q_norm.weight", "blocks.0.mlp.w12.weight",
                           "blocks.0.mlp.w3.bias", "final_layer.linear.weight",
                           "final_layer.adaLN_modulation.1.bias", "final_layer.norm_final.weight"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        cr_assert(param_find(&m->pt, names[i]) >= 0, "missing %s", names[i]);
    int i = param_find(&m->pt, "blocks.0.mlp.w12.weight");
    cr_assert(m->pt.info[i].shape[0] == 2 * 170 && m->pt.info[i].shape[1] == 64);
    i = param_find(&m->pt, "x_embedder.proj.weight");
    cr_assert(m->pt.info[i].ndim == 4 && m->pt.info[i].shape[1] == 4);
    cr_assert_eq(m->pt.info[param_find(&m->pt, "y_embedder.embedding_table.weight")].shape[0], 11);
    int64_t sum = 0;
    for (int k = 0; k < m->pt.count; k++) sum += m->pt.info[k].numel;
    cr_assert_eq(ldit_param_count(&c), sum);
    ldit_destroy(&m);
}

Test(lightningdit, adaln_zero_init) {
    ldit_config c;
    ldit_config_preset("tiny", &c);
    ldit *m;
    cr_assert_eq(ldit_create(&m, &c, 2), 0);
    ldit_init_params(m, 42);
    param_table *pt = &m->pt;
    for (int i = 0; i < pt->count; i++) {
        const param_info *pi = &pt->info[i];
        const float *w = param_data(pt, i);
        double s = 0, s2 = 0, mx = 0;
        for (int64_t k = 0; k < pi->numel; k++) {
            s += w[k]; s2 += (double)w[k] * w[k];
            if (fabs(w[k]) > mx) mx = fabs(w[k]);
        }
        const double sd = sqrt(s2 / pi->numel);
        if (strstr(pi->name, "adaLN_modulation") || strstr(pi->name, ".bias") ||
            !strcmp(pi->name, "final_layer.linear.weight"))
            cr_assert(mx == 0.0, "%s not zero", pi->name);
        else if (strstr(pi->name, "norm"))
            cr_assert(mx == 1.0 && s == pi->numel, "%s not ones", pi->name);
        else if (strstr(pi->name, "embedding_table") || strstr(pi->name, "t_embedder"))
            cr_assert(fabs(sd - 0.02) < 0.002, "%s std %g", pi->name, sd);
        else {
            const double fo = pi->shape[0], fi = pi->numel / fo, a = sqrt(6 / (fi + fo));
            cr_assert(mx <= a && mx > 0.9 * a && fabs(sd - a / sqrt(3)) < 0.05 * a,
                      "%s: max %g std %g bound %g", pi->name, mx, sd, a);
        }
    }
    // adaLN-Zero: the output is exactly the zero final bias
    float x[2 * 4 * 64], t[2] = {0.3f, 0.9f}, v[2 * 4 * 64];
    int32_t y[2] = {3, 7};
    fill_normal(x, 2 * 4 * 64, 5, 1.0f);
    cr_assert_eq(ldit_forward(m, v, x, t, y, NULL, 2), 0);
    for (int i = 0; i < 2 * 4 * 64; i++) cr_assert(v[i] == 0.0f);
    // same seed, same weights
    ldit *m2;
    cr_assert_eq(ldit_create(&m2, &c, 1), 0);
    ldit_init_params(m2, 42);
    cr_assert(memcmp(m->pt.values, m2->pt.values, m->pt.total * 4) == 0);
    ldit_destroy(&m);
    ldit_destroy(&m2);
}

Test(lightningdit, bad_inputs_and_configs) {
    ldit_config c;
    ldit_config_preset("tiny", &c);
    ldit *m;
    cr_assert_eq(ldit_create(&m, &c, 2), 0);
    float x[3 * 4 * 64] = {0}, t[3] = {0}, v[3 * 4 * 64];
    int32_t y[3] = {0, 11, 0};
    cr_assert_eq(ldit_forward(m, v, x, t, y, NULL, 2), LDIT_ELABEL);
    y[1] = -1;
    cr_assert_eq(ldit_forward(m, v, x, t, y, NULL, 2), LDIT_ELABEL);
    y[1] = 10;   // the null id itself is allowed
    cr_assert_eq(ldit_forward(m, v, x, t, y, NULL, 2), 0);
    cr_assert_eq(ldit_forward(m, v, x, t, y, NULL, 3), LDIT_EBATCH);
    cr_assert_eq(ldit_forward(m, v, x, t, y, NULL, 0), LDIT_EBATCH);
    ldit_destroy(&m);
    ldit_config bad = c;
    bad.heads = 3;
    cr_assert_eq(ldit_config_validate(&bad), LDIT_ECONFIG);
    const char *msg = vel_errmsg(LDIT_ECONFIG);
    cr_assert(strstr(msg, "lightningdit: invalid configuration: ") && strstr(msg, "heads"), "%s", msg);
    bad = c; bad.heads = 8;   // head dim 8 ok; 64/16 = 4 ok; 64/32 = 2 not
    cr_assert_eq(ldit_config_validate(&bad), 0);
    bad.heads = 32;
    cr_assert_eq(ldit_config_validate(&bad), LDIT_ECONFIG);
    msg = vel_errmsg(LDIT_ECONFIG);
    cr_assert(strstr(msg, "divisible by 4"), "%s", msg);
    bad = c; bad.patch = 3;
    cr_assert_eq(ldit_config_validate(&bad), LDIT_ECONFIG);
    bad = c; bad.depth = 0;
    cr_assert_eq(ldit_create(&m, &bad, 1), LDIT_ECONFIG);
    cr_assert_null(m);
    cr_assert_eq(ldit_config_preset("huge", &bad), LDIT_ECONFIG);
    cr_assert_str_eq(vel_strerror(LDIT_EBATCH), "lightningdit: batch size outside 1..Bmax");
}

Test(lightningdit, thread_count_independent) {
    ldit_config c;
    ldit_config_preset("tiny", &c);
    c.qk_norm = 1;
    ldit *m;
    cr_assert_eq(ldit_create(&m, &c, 2), 0);
    // random weights everywhere (not adaLN-Zero) so every path is exercised
    fill_normal(m->pt.values, m->pt.total, 9, 0.1f);
    const int n = 2 * 4 * 64;
    float x[2 * 4 * 64], t[2] = {0.2f, 0.7f}, dv[2 * 4 * 64], v1[2 * 4 * 64], v2[2 * 4 * 64];
    int32_t y[2] = {1, 2};
    fill_normal(x, n, 1, 1.0f);
    fill_normal(dv, n, 2, 1.0f);
    float *g1 = malloc(m->pt.total * 4);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    param_zero_grads(&m->pt);
    cr_assert_eq(ldit_forward(m, v1, x, t, y, NULL, 2), 0);
    ldit_backward(m, NULL, dv);
    memcpy(g1, m->pt.grads, m->pt.total * 4);
    omp_set_num_threads(2);
    param_zero_grads(&m->pt);
    cr_assert_eq(ldit_forward(m, v2, x, t, y, NULL, 2), 0);
    ldit_backward(m, NULL, dv);
    omp_set_num_threads(saved);
    cr_assert(memcmp(v1, v2, sizeof v1) == 0, "v differs between 1 and 2 threads");
    cr_assert(memcmp(g1, m->pt.grads, m->pt.total * 4) == 0, "grads differ");
    // a second backward accumulates: grads double exactly
    ldit_backward(m, NULL, dv);
    for (int64_t i = 0; i < m->pt.total; i++) cr_assert(m->pt.grads[i] == 2 * g1[i]);
    free(g1);
    ldit_destroy(&m);
}
