// toy_tok.c: see toy_tok.h. Losses follow LDM's scaling so that the KL
// weight means what it means there: the reconstruction and KL terms are
// summed over a sample's 2 coordinates and averaged over the batch (rec =
// 2 * nn/loss.h's element mean MSE); the VE and magnitude terms are means
// over elements (docs/FORMULAS.md section 1), all computed by nn/loss.h.
#include "models/toy_tok.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "models/toy_ckpt.h"
#include "nn/backend.h"
#include "nn/shape_ops.h"

static void tok_carve(toy_tok *t, arena *a) {
    size_t B = (size_t)t->max_batch;
    toy_mlp_carve(&t->enc, a);
    toy_mlp_carve(&t->dec, a);
    t->h = arena_floats(a, B * 4);
    t->dh = arena_floats(a, B * 4);
    float **two[] = {&t->mu, &t->lv, &t->z, &t->xr, &t->dxr, &t->dz, &t->dmu, &t->dlv};
    for (size_t i = 0; i < sizeof two / sizeof *two; i++) *two[i] = arena_floats(a, B * 2);
    t->xin = t->epsin = NULL;
    if (t->dev == DEVICE_CUDA) {   // the host's x and eps are copied here each step
        t->xin = arena_floats(a, B * 2);
        t->epsin = arena_floats(a, B * 2);
    }
}

int toy_tok_create(toy_tok **out, int depth, int width, int max_batch) {
    *out = NULL;
    if (depth < 0 || depth + 1 > TOY_MAX_LAYERS || width <= 0 || max_batch <= 0) return TOY_ECONFIG;
    toy_tok *t = calloc(1, sizeof *t);
    if (!t) return VEL_ENOMEM;
    t->depth = depth, t->width = width, t->max_batch = max_batch;
    param_table_init(&t->pt);
    toy_mlp_declare(&t->enc, &t->pt, "enc", 2, 4, depth, width, max_batch);
    toy_mlp_declare(&t->dec, &t->pt, "dec", 2, 2, depth, width, max_batch);
    int rc = param_table_commit(&t->pt);
    if (rc) { param_table_free(&t->pt); free(t); return rc; }
    toy_mlp_bind(&t->enc, &t->pt);
    toy_mlp_bind(&t->dec, &t->pt);
    arena_measure(&t->act);
    tok_carve(t, &t->act);
    if ((rc = arena_commit(&t->act))) { param_table_free(&t->pt); free(t); return rc; }
    tok_carve(t, &t->act);
    *out = t;
    return 0;
}

void toy_tok_destroy(toy_tok **pt) {
    toy_tok *t = *pt;
    if (!t) return;
    param_table_free(&t->pt);
    arena_free(&t->act);
    free(t->hmu);
    free(t->hlv);
    free(t);
    *pt = NULL;
}

static void tok_carve_cb(void *t, arena *a) { tok_carve(t, a); }

int toy_tok_to_device(toy_tok *t, device_kind kind) {
    if (kind == t->dev) return 0;
    if (kind != DEVICE_CUDA || t->dev != DEVICE_CPU) return vel_fail(VEL_EINVAL, "toy_tok_to_device: host to GPU only");
    const size_t n = 2 * (size_t)t->max_batch;
    float *hm = malloc(sizeof(float) * n), *hl = malloc(sizeof(float) * n);
    if (!hm || !hl) { free(hm); free(hl); return vel_fail(VEL_ENOMEM, "toy_tok_to_device: staging"); }
    // The parameters move last, so a failure leaves them, and the layers'
    // pointers into them, as they were.
    // tok_carve reads t->dev: on the GPU it lays out the staging buffers
    int e = param_move_with_arena(&t->pt, &t->act, &t->dev, kind, tok_carve_cb, NULL, t);
    if (e) {   // as it was (the arena's views restored)
        free(hm);
        free(hl);
        return e;
    }
    toy_mlp_bind(&t->enc, &t->pt);   // the table's pointers moved
    toy_mlp_bind(&t->dec, &t->pt);
    t->hmu = hm, t->hlv = hl;
    return 0;
}

void toy_tok_init(toy_tok *t, uint32_t seed) {
    mt19937 r;
    mt_seed(&r, seed);
    toy_mlp_init(&t->enc, &r);
    toy_mlp_init(&t->dec, &r);
}

static inline float clampf(float x, float lo, float hi) { return x < lo ? lo : x > hi ? hi : x; }

void toy_tok_encode(toy_tok *t, float *mu, float *logvar, const float *x, int B) {
    // mu, logvar (B,2), x (B,2)
    CHECK(t->dev == DEVICE_CPU);
    for (int s = 0; s < B; s += t->max_batch) {
        int n = B - s < t->max_batch ? B - s : t->max_batch;
        toy_mlp_forward(&t->enc, t->h, x + 2 * (size_t)s, n);
        for (int i = 0; i < n; i++) {
            mu[2 * (s + i)] = t->h[4 * i];
            mu[2 * (s + i) + 1] = t->h[4 * i + 1];
            if (logvar) {
                logvar[2 * (s + i)] = clampf(t->h[4 * i + 2], LOGVAR_MIN, LOGVAR_MAX);
                logvar[2 * (s + i) + 1] = clampf(t->h[4 * i + 3], LOGVAR_MIN, LOGVAR_MAX);
            }
        }
    }
}

void toy_tok_decode(toy_tok *t, float *x, const float *z, int B) {
    CHECK(t->dev == DEVICE_CPU);
    for (int s = 0; s < B; s += t->max_batch) {
        int n = B - s < t->max_batch ? B - s : t->max_batch;
        toy_mlp_forward(&t->dec, x + 2 * (size_t)s, z + 2 * (size_t)s, n);
    }
}

// Where the step's x and eps are read: the caller's arrays, or on a GPU model
// their device copies (made by tok_forward).
static const float *step_x(const toy_tok *t, const float *x) { return t->xin ? t->xin : x; }
static const float *step_eps(const toy_tok *t, const float *eps) { return t->epsin ? t->epsin : eps; }

// Forward of one step; fills the step buffers and returns the loss terms
// (all of them, whichever regulariser trains, for the log). On the GPU it
// waits for the values; a failure sets t->err and total = NAN.
static toy_tok_losses tok_forward(toy_tok *t, const toy_tok_cfg *cfg, const float *x,
                                  const float *eps, int B) {
    CHECK(B > 0 && B <= t->max_batch);
    toy_tok_losses L = {0};
    int n = 2 * B;
    if (t->xin) {
        toy_copy(t->xin, x, sizeof(float) * (size_t)n);
        toy_copy(t->epsin, eps, sizeof(float) * (size_t)n);
    }
    x = step_x(t, x), eps = step_eps(t, eps);
    toy_mlp_forward(&t->enc, t->h, x, B);
    split_channels_forward(t->mu, t->lv, t->h, B, 2, 2, 1);   // h rows: mu (2), logvar (2)
    reparam_forward(t->z, t->mu, t->lv, eps, n);
    toy_mlp_forward(&t->dec, t->xr, t->z, B);
    L.rec = 2.0 * mse_loss_forward(t->xr, x, n);   // summed over the 2 coordinates
    L.kl = kl_loss_forward(t->mu, t->lv, B, 2);
    L.ve = ve_loss_forward(t->lv, n, cfg->ve_form, cfg->delta);
    L.reg = cfg->reg_global ? mag_reg_global_forward(t->mu, B, 1, 2, cfg->tau)
                            : mag_reg_elem_forward(t->mu, n, cfg->tau);
    L.total = L.rec + (cfg->reg == TOY_REG_KL ? cfg->kl_weight * L.kl
                                              : cfg->lambda_ve * L.ve + cfg->lambda_reg * L.reg);
    t->err = t->dev == DEVICE_CUDA ? nn_sync() : 0;
    if (t->err) L.total = NAN;
    return L;
}

toy_tok_losses toy_tok_loss(toy_tok *t, const toy_tok_cfg *cfg, const float *x, const float *eps,
                            int B) {
    return tok_forward(t, cfg, x, eps, B);
}

toy_tok_losses toy_tok_loss_backward(toy_tok *t, const toy_tok_cfg *cfg, const float *x,
                                     const float *eps, int B) {
    toy_tok_losses L = tok_forward(t, cfg, x, eps, B);
    if (t->err) return L;
    x = step_x(t, x), eps = step_eps(t, eps);
    param_zero_grads(&t->pt);
    const int n = 2 * B;
    toy_zero(t->dxr, (size_t)n);
    mse_loss_backward(t->dxr, NULL, t->xr, x, n, 2.0f);
    toy_zero(t->dz, (size_t)n);
    toy_mlp_backward(&t->dec, t->dz, t->dxr, B);
    toy_zero(t->dmu, (size_t)n);
    toy_zero(t->dlv, (size_t)n);
    reparam_backward(t->dmu, t->dlv, t->dz, t->lv, eps, n);
    if (cfg->reg == TOY_REG_KL) {
        kl_loss_backward(t->dmu, t->dlv, t->mu, t->lv, B, 2, cfg->kl_weight);
    } else {
        ve_loss_backward(t->dlv, t->lv, n, cfg->ve_form, cfg->delta, cfg->lambda_ve);
        if (cfg->reg_global) mag_reg_global_backward(t->dmu, t->mu, B, 1, 2, cfg->tau, cfg->lambda_reg);
        else mag_reg_elem_backward(t->dmu, t->mu, n, cfg->tau, cfg->lambda_reg);
    }
    toy_zero(t->dh, 2 * (size_t)n);
    split_channels_backward(t->dh, t->dmu, t->dlv, B, 2, 2, 1);
    toy_mlp_backward(&t->enc, NULL, t->dh, B);
    return L;
}

int toy_tok_latent_stats(toy_tok *t, int B, double *mean_sigma, double *rms_mu) {
    const int n = 2 * B;
    const float *mu = t->mu, *lv = t->lv;
    if (t->hmu) {   // GPU model: read the latest mu and logvar back
        int e = device_copy(t->hmu, t->mu, sizeof(float) * (size_t)n);
        if (!e) e = device_copy(t->hlv, t->lv, sizeof(float) * (size_t)n);
        if (e) return e;
        mu = t->hmu, lv = t->hlv;
    }
    double ms = 0, mm = 0;
    for (int i = 0; i < n; i++) {
        ms += expf(0.5f * clampf(lv[i], LOGVAR_MIN, LOGVAR_MAX));
        mm += (double)mu[i] * mu[i];
    }
    *mean_sigma = ms / n;
    *rms_mu = sqrt(mm / n);
    return 0;
}

int toy_tok_load(toy_tok **out, const char *path, int max_batch) {
    *out = NULL;
    int depth, width;
    int rc = toy_ckpt_arch(path, "toy-tokenizer", &depth, &width);
    if (rc) return rc;
    if ((rc = toy_tok_create(out, depth, width, max_batch))) return rc;
    if ((rc = toy_ckpt_load_params(path, &(*out)->pt))) toy_tok_destroy(out);
    return rc;
}
