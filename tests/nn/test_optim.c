// test_optim.c: Adam, AdamW, Muon (+ AdamW for the rest), EMA and gradient
// clipping over a param_table, several steps against tests/ref/gen_optim.py
// (numpy float32 mirroring torch's CPU kernels; same table as there).
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "nn/ema.h"
#include "nn/optim.h"
#include "nn/params.h"
#include "tests/util.h"

#define K 4

static void make_table(param_table *pt) {
    param_table_init(pt);
    param_add(pt, "l1.weight", 2, (int64_t[]){6, 4});
    param_add(pt, "l1.bias", 1, (int64_t[]){6});
    param_add(pt, "l2.weight", 2, (int64_t[]){3, 6});
    param_add(pt, "conv.weight", 4, (int64_t[]){4, 2, 3, 3});
    param_add(pt, "norm.weight", 1, (int64_t[]){4});
    cr_assert_eq(param_table_commit(pt), 0);
}

// flat (unpadded, table order) <-> the table's padded buffer
static int64_t unpadded(const param_table *pt) {
    int64_t n = 0;
    for (int i = 0; i < pt->count; i++) n += pt->info[i].numel;
    return n;
}
static void scatter(float *buf, const param_table *pt, const float *flat) {
    for (int i = 0; i < pt->count; i++) {
        memcpy(buf + pt->info[i].offset, flat, (size_t)pt->info[i].numel * 4);
        flat += pt->info[i].numel;
    }
}
static void gather(float *flat, const param_table *pt, const float *buf) {
    for (int i = 0; i < pt->count; i++) {
        memcpy(flat, buf + pt->info[i].offset, (size_t)pt->info[i].numel * 4);
        flat += pt->info[i].numel;
    }
}

// Runs K steps of cfg from the reference init/grads/lrs; compares every step
// with ref/<name>.npy; if e != NULL also updates an EMA (decay 0.9) each step.
static void run_against(const char *name, optim_config cfg, double atol, double rtol, const char *ema_ref) {
    param_table pt;
    make_table(&pt);
    int64_t P = unpadded(&pt), n;
    float *init = ref_f32("optim", "init", &n);
    cr_assert_eq(n, P);
    float *grads = ref_f32("optim", "grads", &n);
    cr_assert_eq(n, K * P);
    double *lrs = ref_f64("optim", "lrs", &n);
    float *want = ref_f32("optim", name, &n);
    cr_assert_eq(n, K * P);
    float *want_ema = ema_ref ? ref_f32("optim", ema_ref, &n) : NULL;
    scatter(pt.values, &pt, init);
    optim *o;
    cr_assert_eq(optim_create(&o, &pt, &cfg), 0);
    ema *e = NULL;
    if (ema_ref) cr_assert_eq(ema_create(&e, &pt), 0);
    float *got = malloc((size_t)P * 4);
    for (int k = 0; k < K; k++) {
        scatter(pt.grads, &pt, grads + k * P);
        optim_step(o, &pt, lrs[k]);
        gather(got, &pt, pt.values);
        char what[64];
        snprintf(what, sizeof what, "%s step %d", name, k + 1);
        expect_close_f32(what, got, want + k * P, P, atol, rtol);
        // the gradients are read, never changed
        gather(got, &pt, pt.grads);
        cr_expect_eq(memcmp(got, grads + k * P, (size_t)P * 4), 0);
        if (e) {
            ema_update(e, &pt, 0.9);
            gather(got, &pt, e->shadow);
            snprintf(what, sizeof what, "ema step %d", k + 1);
            expect_close_f32(what, got, want_ema + k * P, P, 1e-7, 1e-6);
        }
    }
    cr_expect_eq(o->step, K);
    optim_destroy(&o);
    cr_expect_null(o);
    ema_destroy(&e);
    free(got); free(init); free(grads); free(lrs); free(want); free(want_ema);
    param_table_free(&pt);
}

// Adam/AdamW/EMA/clipping mirror torch's float32 kernels op for op: measured
// max abs error 0 (bit-identical) here; the tolerance only allows for
// libm/compiler differences elsewhere.
Test(optim, adam_l2_decay) {
    optim_config c = optim_defaults(OPTIM_ADAM);
    c.weight_decay = 0.1;
    run_against("adam", c, 1e-7, 1e-6, NULL);
}

Test(optim, adamw_and_ema) {
    optim_config c = optim_defaults(OPTIM_ADAMW);
    c.beta2 = 0.95;
    c.weight_decay = 0.1;
    run_against("adamw", c, 1e-7, 1e-6, "ema");
}

// Muon's Newton-Schulz goes through sgemm (OpenBLAS here, numpy's BLAS in the
// reference) whose summation orders differ: measured max abs error 6.0e-8
// (max rel 3.5e-6) over the 4 steps; STYLE's default rtol, atol 1e-6.
Test(optim, muon_with_adamw) {
    optim_config c = optim_defaults(OPTIM_MUON);
    c.beta2 = 0.95;
    c.weight_decay = 0.01;
    c.muon_lr_ratio = 2.0;
    c.muon_weight_decay = 0.05;
    run_against("muon", c, 1e-6, 1e-5, NULL);
}

Test(optim, muon_assignment) {
    param_table pt;
    make_table(&pt);
    optim_config c = optim_defaults(OPTIM_MUON);
    optim *o;
    cr_assert_eq(optim_create(&o, &pt, &c), 0);
    const int want[5] = {1, 0, 1, 1, 0};
    for (int i = 0; i < 5; i++) cr_expect_eq(optim_uses_muon(o, i), want[i], "param %d", i);
    optim_destroy(&o);
    c = optim_defaults(OPTIM_ADAMW);
    cr_assert_eq(optim_create(&o, &pt, &c), 0);
    for (int i = 0; i < 5; i++) cr_expect_eq(optim_uses_muon(o, i), 0);
    optim_destroy(&o);
    param_table_free(&pt);
}

Test(optim, bad_configs) {
    param_table pt;
    make_table(&pt);
    optim *o = (optim *)1;
    optim_config c = optim_defaults(OPTIM_ADAMW);
    c.beta1 = 1.0;
    cr_expect_eq(optim_create(&o, &pt, &c), VEL_EINVAL);
    cr_expect_null(o);
    c = optim_defaults(OPTIM_ADAM);
    c.eps = 0;
    cr_expect_eq(optim_create(&o, &pt, &c), VEL_EINVAL);
    c = optim_defaults(OPTIM_MUON);
    c.muon_momentum = -0.1;
    cr_expect_eq(optim_create(&o, &pt, &c), VEL_EINVAL);
    c = optim_defaults(OPTIM_ADAM);
    c.kind = (optim_kind)7;
    cr_expect_eq(optim_create(&o, &pt, &c), VEL_EINVAL);
    param_table empty;
    param_table_init(&empty);
    c = optim_defaults(OPTIM_ADAM);
    cr_expect_eq(optim_create(&o, &empty, &c), VEL_EINVAL);   // not committed
    cr_expect_str_eq(optim_kind_name(OPTIM_MUON), "muon");
    optim_kind kind;
    cr_expect_eq(optim_kind_parse("adamw", &kind), 0);
    cr_expect_eq(kind, OPTIM_ADAMW);
    cr_expect_eq(optim_kind_parse("sgd", &kind), VEL_EINVAL);
    param_table_free(&pt);
}

Test(optim, clip_grad_norm) {
    param_table pt;
    make_table(&pt);
    int64_t P = unpadded(&pt), n;
    float *grads = ref_f32("optim", "grads", &n);
    double *norm = ref_f64("optim", "clip_norm", &n);
    float *want = ref_f32("optim", "clip_grads", &n);
    cr_assert_eq(n, P);
    scatter(pt.grads, &pt, grads + 2 * P);
    float got = clip_grad_norm(&pt, 0.0f);   // 0: measure only
    cr_expect(fabs(got - norm[0]) <= 1e-6 * norm[0], "norm %.9g want %.9g", got, norm[0]);
    float *g = malloc((size_t)P * 4);
    gather(g, &pt, pt.grads);
    cr_expect_eq(memcmp(g, grads + 2 * P, (size_t)P * 4), 0, "max_norm 0 must not clip");
    got = clip_grad_norm(&pt, 1.0f);
    cr_expect(fabs(got - norm[0]) <= 1e-6 * norm[0]);
    gather(g, &pt, pt.grads);
    expect_close_f32("clipped grads", g, want, P, 1e-7, 1e-6);
    float after = clip_grad_norm(&pt, 1.0f);
    cr_expect(fabs(after - 1.0f) < 1e-5, "norm after clipping %.9g", after);
    // Below the limit nothing changes.
    scatter(pt.grads, &pt, grads);
    float small = clip_grad_norm(&pt, 1e6f);
    gather(g, &pt, pt.grads);
    cr_expect_eq(memcmp(g, grads, (size_t)P * 4), 0);
    cr_expect_gt(small, 0);
    free(g); free(grads); free(norm); free(want);
    param_table_free(&pt);
}

// Big table (parallel paths): 1 and 2 threads give bit-identical results.
Test(optim, thread_count_independent) {
    float *res[2][3];
    for (int th = 0; th < 2; th++) {
        omp_set_num_threads(th + 1);
        param_table pt;
        param_table_init(&pt);
        param_add(&pt, "big.weight", 2, (int64_t[]){512, 300});
        param_add(&pt, "big.bias", 1, (int64_t[]){70001});
        cr_assert_eq(param_table_commit(&pt), 0);
        fill_normal(pt.values, pt.total, 1, 1.0f);
        fill_normal(pt.grads, pt.total, 2, 1.0f);
        for (int i = 0; i < pt.count; i++)   // keep the padding zero
            for (int64_t k = pt.info[i].numel; i + 1 < pt.count && k < pt.info[i + 1].offset - pt.info[i].offset; k++)
                pt.values[pt.info[i].offset + k] = pt.grads[pt.info[i].offset + k] = 0;
        res[th][2] = malloc(sizeof(float));
        res[th][2][0] = clip_grad_norm(&pt, 10.0f);
        optim_config c = optim_defaults(OPTIM_ADAMW);
        optim *o;
        cr_assert_eq(optim_create(&o, &pt, &c), 0);
        ema *e;
        cr_assert_eq(ema_create(&e, &pt), 0);
        for (int s = 0; s < 3; s++) {
            optim_step(o, &pt, 1e-3);
            ema_update(e, &pt, 0.99);
        }
        res[th][0] = malloc((size_t)pt.total * 4);
        res[th][1] = malloc((size_t)pt.total * 4);
        memcpy(res[th][0], pt.values, (size_t)pt.total * 4);
        memcpy(res[th][1], e->shadow, (size_t)pt.total * 4);
        if (th == 1) {
            cr_expect_eq(memcmp(res[0][0], res[1][0], (size_t)pt.total * 4), 0, "adamw params");
            cr_expect_eq(memcmp(res[0][1], res[1][1], (size_t)pt.total * 4), 0, "ema");
            cr_expect_eq(res[0][2][0], res[1][2][0], "clip norm");
        }
        optim_destroy(&o);
        ema_destroy(&e);
        param_table_free(&pt);
    }
    for (int th = 0; th < 2; th++)
        for (int j = 0; j < 3; j++) free(res[th][j]);
}

Test(optim, ema_swap) {
    param_table pt;
    make_table(&pt);
    fill_normal(pt.values, pt.total, 3, 1.0f);
    ema *e;
    cr_assert_eq(ema_create(&e, &pt), 0);
    float *keep = param_data(&pt, 0);
    float before = keep[0];
    for (int64_t k = 0; k < pt.total; k++) pt.values[k] += 1.0f;
    ema_update(e, &pt, 0.5);
    cr_expect_eq(ema_param(e, &pt, 0)[0], before * 0.5f + (before + 1.0f) * 0.5f);
    ema_swap(e, &pt);
    cr_expect_eq(param_data(&pt, 0), keep, "swap must keep the values buffer in place");
    cr_expect_eq(keep[0], before * 0.5f + (before + 1.0f) * 0.5f);
    cr_expect_eq(ema_param(e, &pt, 0)[0], before + 1.0f);
    ema_swap(e, &pt);
    cr_expect_eq(keep[0], before + 1.0f);
    ema_destroy(&e);
    param_table_free(&pt);
}

// optim_step_ema_zero against optim_step + ema_update + param_zero_grads,
// bit for bit (values, both moments, shadow, gradients), for Adam, AdamW
// and Muon (its matrices take the per-parameter tail), with and without
// EMA and clearing, at 1 and 2 threads: parameters past one optimizer
// piece (16384 floats) and past the parallel threshold.
static void fused_run(float *out[5], optim_kind kind, int with_ema, int zero, int fused,
                      int threads) {
    omp_set_num_threads(threads);
    param_table pt;
    param_table_init(&pt);
    param_add(&pt, "a.weight", 2, (int64_t[]){96, 300});
    param_add(&pt, "a.bias", 1, (int64_t[]){40001});
    param_add(&pt, "b.weight", 2, (int64_t[]){7, 5});
    cr_assert_eq(param_table_commit(&pt), 0);
    // parameters random, the padding between and after them zero (as a
    // table keeps it: nothing writes there)
    for (int i = 0; i < pt.count; i++)
        fill_normal(pt.values + pt.info[i].offset, pt.info[i].numel, 31 + i, 1.0f);
    optim_config c = optim_defaults(kind);
    optim *o;
    cr_assert_eq(optim_create(&o, &pt, &c), 0);
    ema *e = NULL;
    if (with_ema) cr_assert_eq(ema_create(&e, &pt), 0);
    for (int s = 0; s < 3; s++) {
        // this step's gradients added onto what the last step left (zero
        // after a clearing step), so a missed clear shows
        float *g = malloc(sizeof(float) * (size_t)pt.total);
        fill_normal(g, pt.total, 40 + s, 1.0f);
        for (int i = 0; i < pt.count; i++)
            for (int64_t k = 0; k < pt.info[i].numel; k++)
                pt.grads[pt.info[i].offset + k] += g[pt.info[i].offset + k];
        free(g);
        if (fused) {
            optim_step_ema_zero(o, &pt, 1e-2, e, 0.9, zero);
        } else {
            optim_step(o, &pt, 1e-2);
            if (e) ema_update(e, &pt, 0.9);
            if (zero) param_zero_grads(&pt);
        }
    }
    const size_t bytes = sizeof(float) * (size_t)pt.total;
    for (int k = 0; k < 5; k++) out[k] = calloc(1, bytes);
    memcpy(out[0], pt.values, bytes);
    memcpy(out[1], o->state, bytes);
    memcpy(out[2], o->state + o->total, bytes);
    if (e) memcpy(out[3], e->shadow, bytes);
    memcpy(out[4], pt.grads, bytes);
    optim_destroy(&o);
    ema_destroy(&e);
    param_table_free(&pt);
}

Test(optim, step_ema_zero_equals_the_three_calls) {
    const optim_kind kinds[3] = {OPTIM_ADAM, OPTIM_ADAMW, OPTIM_MUON};
    const char *what[5] = {"values", "exp_avg", "exp_avg_sq", "shadow", "grads"};
    param_table pt;   // only for the size
    param_table_init(&pt);
    param_add(&pt, "a.weight", 2, (int64_t[]){96, 300});
    param_add(&pt, "a.bias", 1, (int64_t[]){40001});
    param_add(&pt, "b.weight", 2, (int64_t[]){7, 5});
    cr_assert_eq(param_table_commit(&pt), 0);
    const size_t bytes = sizeof(float) * (size_t)pt.total;
    param_table_free(&pt);
    for (int ki = 0; ki < 3; ki++)
        for (int mode = 0; mode < 4; mode++) {
            const int with_ema = mode & 1, zero = mode >> 1;
            float *ref[5], *got[2][5];
            fused_run(ref, kinds[ki], with_ema, zero, 0, 2);
            for (int t = 0; t < 2; t++) fused_run(got[t], kinds[ki], with_ema, zero, 1, t + 1);
            for (int k = 0; k < 5; k++) {
                for (int t = 0; t < 2; t++) {
                    cr_expect_eq(memcmp(got[t][k], ref[k], bytes), 0,
                                 "%s: %s ema %d zero %d threads %d differs from the three calls",
                                 optim_kind_name(kinds[ki]), what[k], with_ema, zero, t + 1);
                    free(got[t][k]);
                }
                free(ref[k]);
            }
        }
    omp_set_num_threads(2);
}
