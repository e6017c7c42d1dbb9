// Tests for models/toy_mlp.c, toy_tok.c, toy_flow.c and toy_ckpt.c: tokenizer and flow forward + loss terms against
// numpy (tests/ref/gen_toy.py, seeded weights), every parameter gradient by
// central finite differences for the KL, VE (3 forms) and both magnitude
// regularisers, the flow's time input (raw and Fourier features: closed form,
// gradients, checkpoint round trip), training with nn/optim.h + the
// AutoGuidance schedule, save / reload / bit-identical continuation, and
// clear errors for a checkpoint of another model.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/toy_ckpt.h"
#include "models/toy_flow.h"
#include "models/toy_tok.h"
#include "core/base.h"
#include "nn/optim.h"
#include "nn/schedule.h"
#include "tests/util.h"

static void load_table(param_table *pt, const char *prefix) {
    for (int i = 0; i < pt->count; i++) {
        char name[160];
        snprintf(name, sizeof name, "%s%s", prefix, pt->info[i].name);
        int64_t n;
        float *w = ref_f32("toy", name, &n);
        cr_assert_eq(n, pt->info[i].numel, "%s numel", name);
        memcpy(param_data(pt, i), w, n * sizeof(float));
        free(w);
    }
}

static const toy_tok_cfg CFGS[5] = {
    {.reg = TOY_REG_VE, .lambda_ve = 0.5f, .lambda_reg = 2.f, .tau = 0.3f, .delta = 1e-3f, .ve_form = VE_INV_VAR, .reg_global = 0},
    {.reg = TOY_REG_VE, .lambda_ve = 0.5f, .lambda_reg = 2.f, .tau = 0.3f, .delta = 1e-3f, .ve_form = VE_INV_VAR, .reg_global = 1},
    {.reg = TOY_REG_VE, .lambda_ve = 0.5f, .lambda_reg = 2.f, .tau = 0.1f, .delta = 0.f, .ve_form = VE_NEG_VAR, .reg_global = 0},
    {.reg = TOY_REG_VE, .lambda_ve = 0.5f, .lambda_reg = 2.f, .tau = 0.1f, .delta = 0.f, .ve_form = VE_NEG_LOGSTD, .reg_global = 1},
    {.reg = TOY_REG_KL, .kl_weight = 0.3f},
};

static toy_tok *ref_tok(float **x, float **eps) {
    toy_tok *t;
    cr_assert_eq(toy_tok_create(&t, 2, 8, 16), 0);
    load_table(&t->pt, "tok_");
    *x = ref_f32("toy", "tok_x", NULL);
    *eps = ref_f32("toy", "tok_eps", NULL);
    return t;
}

Test(toy_mlp, tokenizer_forward_and_losses_match_numpy) {
    float *x, *eps;
    toy_tok *t = ref_tok(&x, &eps);
    double *terms = ref_f64("toy", "tok_terms", NULL);
    double *h = ref_f64("toy", "tok_h", NULL), *xr = ref_f64("toy", "tok_xr", NULL);
    for (int c = 0; c < 4; c++) {
        toy_tok_losses L = toy_tok_loss(t, &CFGS[c], x, eps, 16);
        double got[4] = {L.rec, L.kl, L.ve, L.reg};
        // float32 network vs float64 numpy: STYLE's default rtol 1e-5
        expect_close_f64("tok terms", got, terms + 4 * c, 4, 1e-6, 1e-5);
        double want = L.rec + CFGS[c].lambda_ve * L.ve + CFGS[c].lambda_reg * L.reg;
        cr_assert(fabs(L.total - want) < 1e-12 * fmax(1, fabs(want)));
    }
    double gh[64], gxr[32];
    for (int i = 0; i < 64; i++) gh[i] = t->h[i];
    for (int i = 0; i < 32; i++) gxr[i] = t->xr[i];
    expect_close_f64("encoder output", gh, h, 64, 1e-6, 1e-5);
    expect_close_f64("decoder output", gxr, xr, 32, 1e-6, 1e-5);
    // the encode/decode entry points agree with the training forward
    float mu[32], lv[32];
    toy_tok_encode(t, mu, lv, x, 16);
    for (int i = 0; i < 16; i++)
        for (int d = 0; d < 2; d++) {
            cr_assert(fabsf(mu[2 * i + d] - (float)h[4 * i + d]) < 1e-5f);
            cr_assert(fabsf(lv[2 * i + d] - (float)h[4 * i + 2 + d]) < 1e-5f);
        }
    free(terms); free(h); free(xr); free(x); free(eps);
    toy_tok_destroy(&t);
}

// Central differences of the total loss over every parameter. The forward is
// float with double loss accumulation. A ReLU kink within the step makes a
// difference quotient meaningless, so a parameter that disagrees at step
// 1e-3 is retried at 1e-4 (where the measured float noise is ~1e-3 abs) and
// the retries are counted: they must stay rare (measured: 5-6 of ~250).
// Measured max abs error at step 1e-3 where no kink is crossed: 9.2e-4 on
// gradients of size ~0.1-1 (within the 1% relative part of the tolerance).
typedef double (*loss_fn)(void *ctx);
static void fd_check(const char *what, float *values, const float *grads, int64_t n, loss_fn f,
                     void *ctx) {
    int retries = 0;
    double max_err = 0;
    for (int64_t i = 0; i < n; i++) {
        float *p = values + i, keep = *p;
        int ok = 0;
        double num = 0;
        for (int attempt = 0; attempt < 2 && !ok; attempt++) {
            float h = attempt == 0 ? 1e-3f : 1e-4f;
            *p = keep + h;
            double lp = f(ctx);
            *p = keep - h;
            double lm = f(ctx);
            *p = keep;
            num = (lp - lm) / (2.0 * h);
            double tol = (attempt == 0 ? 2e-4 : 3e-3) + 1e-2 * fabs(num);
            ok = fabs(num - grads[i]) <= tol;
            if (ok && attempt == 0 && fabs(num - grads[i]) > max_err) max_err = fabs(num - grads[i]);
            if (attempt == 1) retries++;
        }
        cr_assert(ok, "%s param %ld: analytic %.6g numeric %.6g", what, (long)i, grads[i], num);
    }
    cr_assert(retries <= n / 20, "%s: %d of %ld parameters needed the small step", what, retries, (long)n);
    cr_log_info("fd %s: max abs err %.3g, %d small-step retries", what, max_err, retries);
}

typedef struct { toy_tok *t; const toy_tok_cfg *cfg; const float *x, *eps; } tok_ctx;
static double tok_total(void *c) {
    tok_ctx *k = c;
    return toy_tok_loss(k->t, k->cfg, k->x, k->eps, 16).total;
}

static void fd_check_tok(toy_tok *t, const toy_tok_cfg *cfg, const float *x, const float *eps) {
    toy_tok_loss_backward(t, cfg, x, eps, 16);
    int64_t n = t->pt.total;
    float *g = malloc(n * sizeof(float));
    memcpy(g, t->pt.grads, n * sizeof(float));
    tok_ctx k = {t, cfg, x, eps};
    char what[64];
    snprintf(what, sizeof what, "tok reg %d form %d global %d", cfg->reg, cfg->ve_form, cfg->reg_global);
    fd_check(what, t->pt.values, g, n, tok_total, &k);
    free(g);
}

typedef struct { toy_flow *f; const float *z1, *x0, *t; } flow_ctx;
static double flow_total(void *c) {
    flow_ctx *k = c;
    return toy_flow_loss(k->f, k->z1, k->x0, k->t, 16);
}

Test(toy_mlp, tokenizer_gradients_finite_differences) {
    float *x, *eps;
    toy_tok *t = ref_tok(&x, &eps);
    for (int c = 0; c < 5; c++) fd_check_tok(t, &CFGS[c], x, eps);
    free(x); free(eps);
    toy_tok_destroy(&t);
}

Test(toy_mlp, flow_forward_loss_and_gradients) {
    toy_flow *f;
    cr_assert_eq(toy_flow_create(&f, 2, 8, 16, TOY_TIME_RAW, 0), 0);
    load_table(&f->pt, "flow_");
    float *z1 = ref_f32("toy", "flow_z1", NULL), *x0 = ref_f32("toy", "flow_x0", NULL);
    float *t = ref_f32("toy", "flow_t", NULL);
    double *v = ref_f64("toy", "flow_v", NULL), *loss = ref_f64("toy", "flow_loss", NULL);
    double l = toy_flow_loss_backward(f, z1, x0, t, 16);
    expect_close_f64("flow loss", &l, loss, 1, 1e-6, 1e-5);
    double gv[32];
    for (int i = 0; i < 32; i++) gv[i] = f->v[i];
    expect_close_f64("flow v", gv, v, 32, 1e-6, 1e-5);
    int64_t n = f->pt.total;
    float *g = malloc(n * sizeof(float));
    memcpy(g, f->pt.grads, n * sizeof(float));
    flow_ctx k = {f, z1, x0, t};
    fd_check("flow", f->pt.values, g, n, flow_total, &k);
    // toy_flow_velocity builds the same input from z_t directly
    float zt[32], vv[32];
    for (int i = 0; i < 16; i++)
        for (int d = 0; d < 2; d++) zt[2 * i + d] = t[i] * z1[2 * i + d] + (1 - t[i]) * x0[2 * i + d];
    toy_flow_velocity(f, vv, zt, t, 16);
    for (int i = 0; i < 32; i++) cr_assert_eq(vv[i], f->v[i]);
    free(g); free(z1); free(x0); free(t); free(v); free(loss);
    toy_flow_destroy(&f);
}

// The toy's schedule through nn/schedule.h: lr_ref / sqrt(max(it/512, 1)).
Test(toy_mlp, schedule_is_autoguidance) {
    lr_schedule s = {.lr = 0.01, .decay = LR_INV_SQRT, .t_ref = TOY_LR_T_REF};
    cr_assert_float_eq(lr_at(&s, 0), 0.01, 1e-15);
    cr_assert_float_eq(lr_at(&s, 512), 0.01, 1e-15);
    cr_assert_float_eq(lr_at(&s, 2048), 0.005, 1e-15);
}

// Fourier features against the closed form, and the flow's input layout.
Test(toy_mlp, fourier_time_features_closed_form) {
    cr_assert_eq(toy_time_features_dim(TOY_TIME_RAW, 0), 1);
    cr_assert_eq(toy_time_features_dim(TOY_TIME_FOURIER, 16), 32);
    float feat[32];
    const float ts[3] = {0.0f, 0.37f, 0.999f};
    for (int c = 0; c < 3; c++) {
        toy_time_features(feat, ts[c], TOY_TIME_FOURIER, 16);
        for (int k = 0; k < 16; k++) {
            double w = 1000.0 * pow(10000.0, -k / 16.0);
            cr_assert(fabs(feat[k] - sin(w * ts[c])) < 1e-6, "sin k %d t %g", k, ts[c]);
            cr_assert(fabs(feat[16 + k] - cos(w * ts[c])) < 1e-6, "cos k %d t %g", k, ts[c]);
        }
    }
    toy_time_features(feat, 0.25f, TOY_TIME_RAW, 0);
    cr_assert_eq(feat[0], 0.25f);
    toy_time_embed te;
    cr_assert_eq(toy_time_embed_parse("fourier", &te), 0);
    cr_assert_eq(te, TOY_TIME_FOURIER);
    cr_assert_eq(toy_time_embed_parse("sinusoid", &te), TOY_ECONFIG);
    toy_flow *f;
    cr_assert_eq(toy_flow_create(&f, 1, 8, 4, TOY_TIME_FOURIER, 0), TOY_ECONFIG);
    cr_assert_eq(toy_flow_create(&f, 1, 8, 4, TOY_TIME_FOURIER, TOY_FOURIER_MAX + 1), TOY_ECONFIG);
    cr_assert_eq(toy_flow_create(&f, 1, 8, 4, TOY_TIME_FOURIER, 3), 0);
    cr_assert_eq(f->in_dim, 8);
    cr_assert_eq(f->pt.info[0].shape[1], 8);   // first weight (width, 2 + 2K)
    toy_flow_destroy(&f);
}

// Fourier-time flow (K = 2; measured with K = 4: 11 of 208 parameters needed
// the small step, over the n/20 limit, all passing there) : every parameter
// gradient by finite differences (the
// features are fixed, so this checks the wiring of [z_t, features] into
// the MLP), velocity == training forward, and save / load round trip.
Test(toy_mlp, fourier_flow_gradients_and_checkpoint) {
    toy_flow *f;
    cr_assert_eq(toy_flow_create(&f, 2, 8, 16, TOY_TIME_FOURIER, 2), 0);
    toy_flow_init(f, 7);
    float *z1 = ref_f32("toy", "flow_z1", NULL), *x0 = ref_f32("toy", "flow_x0", NULL);
    float *t = ref_f32("toy", "flow_t", NULL);
    toy_flow_loss_backward(f, z1, x0, t, 16);
    int64_t n = f->pt.total;
    float *g = malloc(n * sizeof(float));
    memcpy(g, f->pt.grads, n * sizeof(float));
    flow_ctx k = {f, z1, x0, t};
    fd_check("flow fourier", f->pt.values, g, n, flow_total, &k);
    float zt[32], vv[32], vref[32];
    for (int i = 0; i < 16; i++)
        for (int d = 0; d < 2; d++) zt[2 * i + d] = t[i] * z1[2 * i + d] + (1 - t[i]) * x0[2 * i + d];
    toy_flow_loss(f, z1, x0, t, 16);
    memcpy(vref, f->v, sizeof vref);
    toy_flow_velocity(f, vv, zt, t, 16);
    for (int i = 0; i < 32; i++) cr_assert_eq(vv[i], vref[i]);
    char *dir = test_tmpdir("toy_mlp_fourier");
    char path[512], val[64];
    snprintf(path, sizeof path, "%s/flow.safetensors", dir);
    cr_assert_eq(toy_flow_save(path, f, NULL, 0), 0, "%s", vel_error_detail());
    cr_assert_eq(st_meta_read(path, "time_embed", val, sizeof val), 0);
    cr_assert_str_eq(val, "fourier");
    toy_flow *u;
    cr_assert_eq(toy_flow_load(&u, path, 16), 0, "%s", vel_error_detail());
    cr_assert_eq(u->time_embed, TOY_TIME_FOURIER);
    cr_assert_eq(u->nfreq, 2);
    cr_assert_eq(memcmp(u->pt.values, f->pt.values, n * sizeof(float)), 0);
    toy_flow_velocity(u, vv, zt, t, 16);   // same batch shape: bit-identical
    for (int i = 0; i < 32; i++) cr_assert_eq(vv[i], vref[i]);
    toy_flow_destroy(&u);
    // max_batch 5: chunked rows (BLAS may round another row count differently)
    cr_assert_eq(toy_flow_load(&u, path, 5), 0, "%s", vel_error_detail());
    toy_flow_velocity(u, vv, zt, t, 16);
    for (int i = 0; i < 32; i++) cr_assert(fabsf(vv[i] - vref[i]) <= 1e-5f * (1 + fabsf(vref[i])));
    toy_flow_destroy(&u);
    // metadata naming K = 3 does not match the stored weights: clear error, no model
    st_kv bad[] = {{"time_freqs", "3"}};
    param_table *pt = &f->pt;
    cr_assert_eq(toy_ckpt_save(path, pt, "toy-flow", 2, 8, (st_kv[]){{"time_embed", "fourier"}, bad[0]}, 2), 0);
    cr_assert_neq(toy_flow_load(&u, path, 5), 0);
    cr_assert_null(u);
    cr_assert(strstr(vel_error_detail(), "flow.safetensors"), "message: %s", vel_error_detail());
    cr_assert_eq(toy_ckpt_save(path, pt, "toy-flow", 2, 8, (st_kv[]){{"time_embed", "wavelet"}}, 1), 0);
    cr_assert_eq(toy_flow_load(&u, path, 5), TOY_EMODEL);
    cr_assert(strstr(vel_error_detail(), "wavelet"), "message: %s", vel_error_detail());
    // a checkpoint without time metadata (written before the option) is a raw-time model
    toy_flow *r;
    cr_assert_eq(toy_flow_create(&r, 1, 4, 8, TOY_TIME_RAW, 0), 0);
    cr_assert_eq(toy_ckpt_save(path, &r->pt, "toy-flow", 1, 4, NULL, 0), 0);
    cr_assert_eq(toy_flow_load(&u, path, 8), 0, "%s", vel_error_detail());
    cr_assert_eq(u->time_embed, TOY_TIME_RAW);
    cr_assert_eq(u->in_dim, 3);
    toy_flow_destroy(&u);
    toy_flow_destroy(&r);
    free(g); free(z1); free(x0); free(t);
    toy_flow_destroy(&f);
    rm_rf(dir);
    free(dir);
}

Test(toy_mlp, training_reduces_loss_and_resume_is_bit_identical) {
    float *x, *eps;
    toy_tok *t = ref_tok(&x, &eps);
    toy_tok_init(t, 3);
    optim *o;
    optim_config oc = optim_defaults(OPTIM_ADAM);
    oc.beta2 = 0.99;
    cr_assert_eq(optim_create(&o, &t->pt, &oc), 0);
    lr_schedule sched = {.lr = 1e-2, .decay = LR_INV_SQRT, .t_ref = TOY_LR_T_REF};
    double first = 0, last = 0;
    for (int it = 0; it < 200; it++) {
        toy_tok_losses L = toy_tok_loss_backward(t, &CFGS[4], x, eps, 16);
        if (it == 0) first = L.rec;
        last = L.rec;
        optim_step(o, &t->pt, lr_at(&sched, it));
    }
    cr_assert(last < 0.2 * first, "rec %.4g -> %.4g", first, last);
    char *dir = test_tmpdir("toy_mlp");
    char path[512];
    snprintf(path, sizeof path, "%s/tok.safetensors", dir);
    cr_assert_eq(toy_ckpt_save(path, &t->pt, "toy-tokenizer", 2, 8, NULL, 0), 0, "%s", vel_error_detail());
    toy_tok *u;
    cr_assert_eq(toy_tok_load(&u, path, 16), 0, "%s", vel_error_detail());
    cr_assert_eq(memcmp(u->pt.values, t->pt.values, t->pt.total * sizeof(float)), 0);
    // same inputs -> bit-identical losses and gradients after reload
    toy_tok_losses a = toy_tok_loss_backward(t, &CFGS[0], x, eps, 16);
    toy_tok_losses b = toy_tok_loss_backward(u, &CFGS[0], x, eps, 16);
    cr_assert_eq(a.total, b.total);
    cr_assert_eq(memcmp(u->pt.grads, t->pt.grads, t->pt.total * sizeof(float)), 0);
    // a tokenizer checkpoint is not a flow model
    toy_flow *f = NULL;
    int rc = toy_flow_load(&f, path, 16);
    cr_assert_eq(rc, TOY_EMODEL);
    cr_assert_null(f);
    cr_assert(strstr(vel_error_detail(), "toy-tokenizer") && strstr(vel_error_detail(), "toy-flow"), "message: %s",
              vel_error_detail());
    // missing file: clear error naming it
    snprintf(path, sizeof path, "%s/nope.safetensors", dir);
    cr_assert_neq(toy_tok_load(&u, path, 16), 0);
    cr_assert(strstr(vel_error_detail(), "nope.safetensors"), "message: %s", vel_error_detail());
    optim_destroy(&o);
    toy_tok_destroy(&t);
    toy_tok_destroy(&u);
    free(x); free(eps);
    rm_rf(dir);
    free(dir);
}
