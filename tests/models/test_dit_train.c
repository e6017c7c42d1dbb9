// test_dit_train.c: the flow-matching training math of models/dit_train.h:
// a tiny DiT overfits 32 cached latents and its Euler samples land nearest
// their own class; label dropout rate and the null class; logit-normal and
// uniform t statistics; the loss gradient (MSE + cosine) against finite
// differences; the presets' parameter counts against the reference.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "core/philox.h"
#include "models/dit_train.h"
#include "nn/optim.h"
#include "store/store.h"
#include "tests/stages/dit_fixture.h"
#include "tests/util.h"

static ldit_config tiny_cfg(int classes) {
    return (ldit_config){.depth = 2, .hidden = 64, .heads = 4, .patch = 1, .in_channels = 4,
                         .input_size = 4, .num_classes = classes};
}

// Random (not adaLN-zero) weights so that every path carries signal.
static void randomise(ldit *m, uint64_t seed, float std) {
    fill_normal(m->pt.values, m->pt.total, seed, std);
}

Test(dit_train, presets_match_reference_counts) {
    struct { const char *name; int64_t n; } want[] = {
        {"B/1", 130359584}, {"L/2", 458087520}, {"XL/1", 674961824}};
    for (int i = 0; i < 3; i++) {
        ldit_config c = {.in_channels = 32, .input_size = 16, .num_classes = 1000};
        cr_assert_eq(dit_preset(want[i].name, &c), 0);
        cr_expect_eq(ldit_param_count(&c), want[i].n, "%s: %lld parameters, reference %lld", want[i].name,
                     (long long)ldit_param_count(&c), (long long)want[i].n);
    }
    ldit_config c = {0};
    cr_expect_eq(dit_preset("B/3", &c), LDIT_ECONFIG);
}

Test(dit_train, label_dropout_rate_and_null_class) {
    ldit_config c = tiny_cfg(5);
    ldit *m = NULL;
    dit_trainer *tr = NULL;
    cr_assert_eq(ldit_create(&m, &c, 64), 0);
    dit_fm_cfg fm = dit_fm_defaults();
    cr_assert_eq(dit_trainer_create(&tr, m, &fm, 64), 0);
    // Rate: 2000 steps x 64 = 128000 draws; binomial sd 0.00084, bound 6 sd.
    int64_t drops = 0, n = 0;
    for (int s = 0; s < 2000; s++) {
        dit_draw_step(tr, 64, 3, (uint64_t)s * 64);
        for (int b = 0; b < 64; b++) drops += tr->drop[b];
        n += 64;
    }
    double p = (double)drops / (double)n;
    cr_expect(fabs(p - 0.1) < 0.005, "label dropout rate %.5f, want 0.1", p);
    // A dropped label runs the model exactly as the null class id does.
    randomise(m, 7, 0.05f);
    int B = 8;
    int64_t numel = tr->numel;
    float *x = malloc(sizeof(float) * B * numel), *v1 = malloc(sizeof(float) * B * numel),
          *v2 = malloc(sizeof(float) * B * numel), t[8];
    fill_normal(x, B * numel, 1, 1.0f);
    int32_t y[8], ynull[8];
    uint8_t drop[8];
    for (int b = 0; b < B; b++) {
        t[b] = 0.1f * (float)b;
        y[b] = b % 5;
        drop[b] = b & 1;
        ynull[b] = drop[b] ? c.num_classes : y[b];
    }
    cr_assert_eq(ldit_forward(m, v1, x, t, y, drop, B), 0);
    cr_assert_eq(ldit_forward(m, v2, x, t, ynull, NULL, B), 0);
    cr_expect_eq(memcmp(v1, v2, sizeof(float) * B * numel), 0, "dropped label differs from the null class");
    // ... and differs from the kept label (the null row is its own embedding).
    cr_assert_eq(ldit_forward(m, v2, x, t, y, NULL, B), 0);
    cr_expect_neq(memcmp(v1 + numel, v2 + numel, sizeof(float) * numel), 0);
    // Same positions, same draws (the resume / data-parallel contract).
    dit_draw_step(tr, 64, 3, 640);
    uint8_t keep[64];
    memcpy(keep, tr->drop, 64);
    dit_draw_step(tr, 32, 3, 640 + 32);
    cr_expect_eq(memcmp(keep + 32, tr->drop, 32), 0, "draws depend on more than the position");
    free(x); free(v1); free(v2);
    dit_trainer_destroy(&tr);
    ldit_destroy(&m);
}

Test(dit_train, time_statistics) {
    ldit_config c = tiny_cfg(3);
    ldit *m = NULL;
    dit_trainer *tr = NULL;
    cr_assert_eq(ldit_create(&m, &c, 100), 0);
    dit_fm_cfg fm = dit_fm_defaults();
    cr_assert_eq(fm.time, DIT_T_LOGIT_NORMAL);
    cr_assert_eq(dit_trainer_create(&tr, m, &fm, 100), 0);
    // logit(t) ~ N(0, 1): 100000 draws, mean sd 0.0032, std-estimate sd 0.0022.
    double s1 = 0, s2 = 0, below = 0;
    int n = 0;
    for (int k = 0; k < 1000; k++) {
        dit_draw_step(tr, 100, 11, (uint64_t)k * 100);
        for (int b = 0; b < 100; b++) {
            float t = tr->t[b];
            cr_assert(t > 0 && t < 1, "t = %g outside (0, 1)", t);
            double l = log(t / (1.0 - t));
            s1 += l, s2 += l * l, below += t < 0.5f;
            n++;
        }
    }
    double mean = s1 / n, sd = sqrt(s2 / n - mean * mean);
    cr_expect(fabs(mean) < 0.02, "logit(t) mean %.4f", mean);
    cr_expect(fabs(sd - 1.0) < 0.015, "logit(t) std %.4f", sd);
    cr_expect(fabs(below / n - 0.5) < 0.01, "P(t < 0.5) = %.4f", below / n);
    dit_trainer_destroy(&tr);
    // Uniform: mean 1/2, variance 1/12.
    fm.time = DIT_T_UNIFORM;
    cr_assert_eq(dit_trainer_create(&tr, m, &fm, 100), 0);
    s1 = s2 = 0;
    n = 0;
    for (int k = 0; k < 1000; k++) {
        dit_draw_step(tr, 100, 11, (uint64_t)k * 100);
        for (int b = 0; b < 100; b++) s1 += tr->t[b], s2 += (double)tr->t[b] * tr->t[b], n++;
    }
    mean = s1 / n;
    cr_expect(fabs(mean - 0.5) < 0.005, "uniform mean %.4f", mean);
    cr_expect(fabs(s2 / n - mean * mean - 1.0 / 12) < 0.003, "uniform variance %.4f", s2 / n - mean * mean);
    dit_trainer_destroy(&tr);
    ldit_destroy(&m);
}

// d(MSE + w*cos)/d(param) from dit_loss_backward against central
// differences of dit_loss_forward on the same draws, for a few elements of
// several parameters.
Test(dit_train, loss_gradient_matches_finite_differences) {
    ldit_config c = tiny_cfg(4);
    ldit *m = NULL;
    dit_trainer *tr = NULL;
    cr_assert_eq(ldit_create(&m, &c, 4), 0);
    dit_fm_cfg fm = dit_fm_defaults();
    fm.cos_weight = 2.0f;   // weight the cosine part so an error in it shows
    cr_assert_eq(dit_trainer_create(&tr, m, &fm, 4), 0);
    randomise(m, 5, 0.08f);
    int B = 4;
    float *x1 = malloc(sizeof(float) * B * tr->numel);
    fill_normal(x1, B * tr->numel, 9, 1.0f);
    int32_t y[4] = {0, 1, 2, 3};
    dit_draw_step(tr, B, 1, 0);
    memset(tr->drop, 0, 4);
    tr->drop[2] = 1;
    param_zero_grads(&m->pt);
    dit_losses L;
    cr_assert_eq(dit_loss_backward(tr, x1, y, B, &L), 0);
    cr_assert(L.cos > 0.05, "cosine term too small to test (%g)", L.cos);
    const char *names[] = {"final_layer.linear.weight", "blocks.1.mlp.w3.weight", "blocks.0.attn.qkv.weight",
                           "y_embedder.embedding_table.weight", "blocks.0.adaLN_modulation.1.bias"};
    int checked = 0;
    for (int k = 0; k < 5; k++) {
        int i = param_find(&m->pt, names[k]);
        cr_assert_geq(i, 0, "%s", names[k]);
        float *p = param_data(&m->pt, i), *g = param_grad(&m->pt, i);
        int64_t numel = m->pt.info[i].numel;
        for (int r = 0; r < 4; r++) {
            int64_t j = (int64_t)((r * 7919 + k * 104729) % numel);
            float keep = p[j];
            const float h = 2e-3f;
            dit_losses lp, lm;
            p[j] = keep + h;
            cr_assert_eq(dit_loss_forward(tr, x1, y, B, &lp), 0);
            p[j] = keep - h;
            cr_assert_eq(dit_loss_forward(tr, x1, y, B, &lm), 0);
            p[j] = keep;
            double fd = (lp.loss - lm.loss) / (2.0 * h);
            // fp32 forward, double loss sums: measured |g - fd| <= 2.4e-6 here.
            cr_expect(fabs(g[j] - fd) <= 1e-5 + 0.02 * fabs(fd), "%s[%lld]: backward %g, finite difference %g",
                      names[k], (long long)j, (double)g[j], fd);
            checked += fabs(fd) > 1e-5;
            if (getenv("DIT_TEST_VERBOSE")) fprintf(stderr, "%s[%lld] g %g fd %g\n", names[k], (long long)j, (double)g[j], fd);
        }
    }
    cr_expect_geq(checked, 10, "too few gradients large enough to be meaningful (%d)", checked);
    free(x1);
    dit_trainer_destroy(&tr);
    ldit_destroy(&m);
}

// 32 cached latents of 4 classes: AdamW on the flow loss for 300 steps at
// batch 32 takes the loss below 15% of its start (measured 2.147 -> 0.163), and Euler samples of
// each class end nearer that class's mean latent than any other's.
Test(dit_train, tiny_dit_overfits_32_cached_latents, .timeout = 120) {
    char *dir = test_tmpdir("dit_overfit");
    char path[1024];
    snprintf(path, sizeof path, "%s/cache", dir);
    const int N = 32, K = 4, C = 4, S = 4;
    cr_assert_eq(dfx_make(path, "h", N, K, C, S, 0, 0), 0);
    store *st = NULL;
    cr_assert_eq(store_open(&st, path, NULL, NULL, NULL), 0);
    int64_t numel = C * S * S;
    float *mu = malloc(sizeof(float) * N * numel), *sg = malloc(sizeof(float) * N * numel),
          *z = malloc(sizeof(float) * N * numel);
    int32_t lab[32];
    uint64_t idx[32];
    for (int i = 0; i < N; i++) idx[i] = (uint64_t)i;
    cr_assert_eq(store_read_batch(st, mu, sg, lab, idx, NULL, N), 0);
    ldit_config c = tiny_cfg(K);
    ldit *m = NULL;
    dit_trainer *tr = NULL;
    optim *opt = NULL;
    cr_assert_eq(ldit_create(&m, &c, N), 0);
    ldit_init_params(m, 0);
    dit_fm_cfg fm = dit_fm_defaults();
    cr_assert_eq(dit_trainer_create(&tr, m, &fm, N), 0);
    optim_config oc = optim_defaults(OPTIM_ADAMW);
    oc.beta1 = 0.9, oc.beta2 = 0.95, oc.weight_decay = 0;
    cr_assert_eq(optim_create(&opt, &m->pt, &oc), 0);
    double first = 0, last = 0;
    const int steps = 300;
    for (int s = 0; s < steps; s++) {
        dit_draw_latents(z, mu, sg, numel, N, 1, (uint64_t)s * N);
        cr_assert_eq(store_normalise(z, z, store_get_meta(st), N), 0);
        dit_draw_step(tr, N, 1, (uint64_t)s * N);
        param_zero_grads(&m->pt);
        dit_losses L;
        cr_assert_eq(dit_loss_backward(tr, z, lab, N, &L), 0);
        clip_grad_norm(&m->pt, 1.0f);
        optim_step(opt, &m->pt, 2e-3);
        if (s < 20) first += L.loss / 20;
        if (s >= steps - 20) last += L.loss / 20;
    }
    if (getenv("DIT_TEST_VERBOSE")) fprintf(stderr, "loss %g -> %g\n", first, last);
    cr_expect_lt(last, 0.15 * first, "loss %.4f -> %.4f (want below 15%% of the start)", first, last);
    // Class means of the normalised latents.
    float *cm = calloc((size_t)(K * numel), sizeof(float));
    for (int i = 0; i < N; i++) memcpy(z + i * numel, mu + i * numel, sizeof(float) * numel);
    store_normalise(z, z, store_get_meta(st), N);
    for (int i = 0; i < N; i++)
        for (int64_t j = 0; j < numel; j++) cm[lab[i] * numel + j] += z[i * numel + j] / (N / K);
    int32_t ys[16];
    for (int i = 0; i < 16; i++) ys[i] = i % K;
    float *xs = malloc(sizeof(float) * 16 * numel);
    cr_assert_eq(dit_euler_sample(m, xs, ys, 16, 40, 3), 0);
    int right = 0;
    for (int i = 0; i < 16; i++) {
        int best = -1;
        double bd = 1e30;
        for (int k = 0; k < K; k++) {
            double d = 0;
            for (int64_t j = 0; j < numel; j++) {
                double e = xs[i * numel + j] - cm[k * numel + j];
                d += e * e;
            }
            if (d < bd) bd = d, best = k;
        }
        right += best == ys[i];
    }
    cr_expect_eq(right, 16, "%d of 16 samples nearest their own class", right);
    free(cm); free(xs); free(mu); free(sg); free(z);
    optim_destroy(&opt);
    dit_trainer_destroy(&tr);
    ldit_destroy(&m);
    store_close(&st);
    rm_rf(dir);
    free(dir);
}
