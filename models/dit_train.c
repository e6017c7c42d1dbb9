// dit_train.c: flow-matching loss and draws for LightningDiT (dit_train.h).
#include "models/dit_train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "core/philox.h"
#include "models/sampler.h"
#include "nn/backend.h"
#include "nn/device.h"
#include "nn/flow_loss.h"

const char *dit_time_name(dit_time_mode m) {
    return m == DIT_T_LOGIT_NORMAL ? "logit-normal" : "uniform";
}

int dit_time_parse(const char *s, dit_time_mode *m) {
    if (!strcmp(s, "uniform")) *m = DIT_T_UNIFORM;
    else if (!strcmp(s, "logit-normal")) *m = DIT_T_LOGIT_NORMAL;
    else return VEL_EINVAL;
    return 0;
}

dit_fm_cfg dit_fm_defaults(void) {
    return (dit_fm_cfg){.time = DIT_T_LOGIT_NORMAL, .ln_mean = 0.0f, .ln_std = 1.0f,
                        .label_drop = 0.1f, .cos_weight = 1.0f};
}

// tiny: sized for a 2-core CPU on Fashion-MNIST f4c4 latents (4 x 8 x 8):
// patch 2 (16 tokens) and depth 4 gave 160 images/s on a loaded 2-core
// machine against 17 for depth 6 at patch 1 (64 tokens). S and B are DiT's
// widths at patch 1 for those latents; the rest are the reference models.
static const struct { const char *name; int depth, hidden, heads, patch; } PRESETS[] = {
    {"tiny", 4, 128, 4, 2}, {"S", 12, 384, 6, 1}, {"B", 12, 768, 12, 1},
    {"B/1", 12, 768, 12, 1}, {"B/2", 12, 768, 12, 2}, {"L/2", 24, 1024, 16, 2},
    {"XL/1", 28, 1152, 16, 1}, {"XL/2", 28, 1152, 16, 2}};
const char *const DIT_PRESET_NAMES[] = {"tiny", "S", "B", "B/1", "B/2", "L/2", "XL/1", "XL/2", NULL};

int dit_preset(const char *name, ldit_config *cfg) {
    for (size_t i = 0; name && i < sizeof PRESETS / sizeof *PRESETS; i++)
        if (!strcmp(name, PRESETS[i].name)) {
            cfg->depth = PRESETS[i].depth;
            cfg->hidden = PRESETS[i].hidden;
            cfg->heads = PRESETS[i].heads;
            cfg->patch = PRESETS[i].patch;
            return 0;
        }
    return LDIT_ECONFIG;
}

int dit_trainer_create(dit_trainer **out, ldit *m, const dit_fm_cfg *cfg, int Bmax) {
    *out = NULL;
    if (Bmax < 1 || Bmax > m->Bmax || !(cfg->label_drop >= 0 && cfg->label_drop <= 1) ||
        !(cfg->cos_weight >= 0) || !(cfg->ln_std > 0) || !isfinite(cfg->ln_mean))
        return VEL_EINVAL;
    dit_trainer *tr = calloc(1, sizeof *tr);
    if (!tr) return VEL_ENOMEM;
    const ldit_config *c = &m->cfg;
    tr->m = m;
    tr->cfg = *cfg;
    tr->Bmax = Bmax;
    tr->numel = (int64_t)c->in_channels * c->input_size * c->input_size;
    size_t n = (size_t)Bmax * (size_t)tr->numel;
    tr->x0 = malloc(sizeof(float) * n);
    tr->xt = malloc(sizeof(float) * n);
    tr->u = malloc(sizeof(float) * n);
    tr->t = malloc(sizeof(float) * (size_t)Bmax);
    tr->drop = malloc((size_t)Bmax);
    int e = VEL_ENOMEM;
    if (m->dev == DEVICE_CUDA) {
        // The model's side on the GPU (device_alloc zeroes; failures name themselves).
        if ((e = device_alloc(DEVICE_CUDA, (void **)&tr->v, sizeof(float) * n)) ||
            (e = device_alloc(DEVICE_CUDA, (void **)&tr->dv, sizeof(float) * n)) ||
            (e = device_alloc(DEVICE_CUDA, (void **)&tr->mxt, sizeof(float) * n)) ||
            (e = device_alloc(DEVICE_CUDA, (void **)&tr->mu, sizeof(float) * n)) ||
            (e = device_alloc(DEVICE_CUDA, (void **)&tr->vals, 2 * sizeof(double)))) {
            dit_trainer_destroy(&tr);
            return e;
        }
    } else {
        tr->v = malloc(sizeof(float) * n);
        tr->dv = malloc(sizeof(float) * n);
        tr->vals = malloc(2 * sizeof(double));
        tr->mxt = tr->xt;
        tr->mu = tr->u;
    }
    if (!tr->x0 || !tr->xt || !tr->u || !tr->v || !tr->dv || !tr->t || !tr->drop || !tr->vals) {
        dit_trainer_destroy(&tr);
        return e;
    }
    *out = tr;
    return 0;
}

void dit_trainer_destroy(dit_trainer **p) {
    if (!p || !*p) return;
    dit_trainer *tr = *p;
    if (tr->mxt != tr->xt) device_free((void **)&tr->mxt);
    if (tr->mu != tr->u) device_free((void **)&tr->mu);
    device_free((void **)&tr->v);     // host buffers: free()
    device_free((void **)&tr->dv);
    device_free((void **)&tr->vals);
    free(tr->x0); free(tr->xt); free(tr->u); free(tr->t); free(tr->drop);
    free(tr);
    *p = NULL;
}

void dit_draw_latents(float *z, const float *mu, const float *sigma, int64_t numel, int B,
                      uint64_t seed, uint64_t pos0) {
    int64_t n = numel * B;
    // eps goes into z first only when z does not alias an input we still need.
    float *eps = (z == mu || z == sigma) ? malloc(sizeof(float) * (size_t)n) : z;
    CHECK(eps != NULL);
    philox_normal(eps, n, seed, DIT_STREAM_LATENT, pos0 * (uint64_t)numel);
    for (int64_t i = 0; i < n; i++) z[i] = mu[i] + sigma[i] * eps[i];
    if (eps != z) free(eps);
}

void dit_draw_step(dit_trainer *tr, int B, uint64_t seed, uint64_t pos0) {
    CHECK(B >= 1 && B <= tr->Bmax);
    philox_normal(tr->x0, tr->numel * B, seed, DIT_STREAM_NOISE, pos0 * (uint64_t)tr->numel);
    if (tr->cfg.time == DIT_T_LOGIT_NORMAL) {
        philox_normal(tr->t, B, seed, DIT_STREAM_TIME, pos0);
        for (int b = 0; b < B; b++) {
            double s = (double)tr->cfg.ln_mean + (double)tr->cfg.ln_std * tr->t[b];
            tr->t[b] = (float)(1.0 / (1.0 + exp(-s)));
        }
    } else {
        philox_uniform(tr->t, B, seed, DIT_STREAM_TIME, pos0);
    }
    float u[256];
    for (int b0 = 0; b0 < B; b0 += 256) {
        int n = B - b0 < 256 ? B - b0 : 256;
        philox_uniform(u, n, seed, DIT_STREAM_DROP, pos0 + (uint64_t)b0);
        for (int i = 0; i < n; i++) tr->drop[b0 + i] = u[i] < tr->cfg.label_drop;
    }
}

// x_t and the target from x1 and the drawn x0, t (host), moved next to the
// model on the GPU; then the forward.
static int forward(dit_trainer *tr, const float *x1, const int32_t *y, int B) {
    int64_t numel = tr->numel;
    for (int b = 0; b < B; b++) {
        float t = tr->t[b];
        const float *a = x1 + b * numel, *z = tr->x0 + b * numel;
        float *xt = tr->xt + b * numel, *u = tr->u + b * numel;
        for (int64_t i = 0; i < numel; i++) {
            xt[i] = t * a[i] + (1.0f - t) * z[i];
            u[i] = a[i] - z[i];
        }
    }
    const size_t bytes = sizeof(float) * (size_t)(numel * B);
    int e = 0;
    if (tr->mxt != tr->xt && ((e = device_copy(tr->mxt, tr->xt, bytes)) ||
                              (e = device_copy(tr->mu, tr->u, bytes))))
        return e;
    return ldit_forward(tr->m, tr->v, tr->mxt, tr->t, y, tr->drop, B);
}

// The loss values of the last flow_loss, brought to the host (16 bytes; on
// the GPU this waits for the queued work).
static int read_losses(dit_trainer *tr, dit_losses *out) {
    double vals[2];
    int e = device_copy(vals, tr->vals, sizeof vals);
    if (e) return e;
    dit_losses L = {.mse = vals[0], .cos = vals[1]};
    L.loss = L.mse + (double)tr->cfg.cos_weight * L.cos;
    if (out) *out = L;
    return 0;
}

int dit_loss_forward(dit_trainer *tr, const float *x1, const int32_t *y, int B, dit_losses *out) {
    if (B < 1 || B > tr->Bmax) return LDIT_EBATCH;
    int e = forward(tr, x1, y, B);
    if (e) return e;
    const ldit_config *c = &tr->m->cfg;
    flow_loss(tr->vals, NULL, tr->v, tr->mu, B, c->in_channels, c->input_size * c->input_size,
              tr->cfg.cos_weight);
    return read_losses(tr, out);
}

int dit_loss_backward(dit_trainer *tr, const float *x1, const int32_t *y, int B, dit_losses *out) {
    if (B < 1 || B > tr->Bmax) return LDIT_EBATCH;
    int e = forward(tr, x1, y, B);
    if (e) return e;
    const ldit_config *c = &tr->m->cfg;
    if ((e = device_zero(tr->dv, sizeof(float) * (size_t)(tr->numel * B)))) return e;
    // values and dv together (on the CPU: the MSE and cosine ops, in the old order)
    flow_loss(tr->vals, tr->dv, tr->v, tr->mu, B, c->in_channels, c->input_size * c->input_size,
              tr->cfg.cos_weight);
    ldit_backward(tr->m, NULL, tr->dv);
    return read_losses(tr, out);
}

int dit_velocity(void *ctx, float *v, const float *x, double t, const int32_t *y, int64_t n) {
    dit_vel_ctx *c = ctx;
    for (int64_t i = 0; i < n; i++) c->t[i] = (float)t;
    int e = ldit_forward(c->m, v, x, c->t, y, NULL, (int)n);
    // on the GPU: v is only valid if no op failed (0 at once on the CPU)
    return e ? e : nn_sync();
}

int dit_euler_sample(ldit *m, float *x, const int32_t *y, int B, int steps, uint64_t seed) {
    if (steps < 1 || B < 1) return VEL_EINVAL;
    const ldit_config *c = &m->cfg;
    int64_t numel = (int64_t)c->in_channels * c->input_size * c->input_size;
    smp_opts so = smp_opts_default();   // Euler, no guidance
    dit_vel_ctx ctx = {m, malloc(sizeof(float) * (size_t)B)};
    double *ts = malloc(sizeof(double) * (size_t)(steps + 1));
    void *scratch = malloc(smp_scratch_bytes(&so, B, numel, y != NULL));
    int e = VEL_ENOMEM;
    if (ctx.t && ts && scratch) {
        philox_normal(x, numel * B, seed, DIT_STREAM_SAMPLE, 0);
        smp_time_grid(ts, steps, 1.0);
        e = smp_integrate(x, y, B, numel, ts, steps, &so, dit_velocity, &ctx, scratch);
    }
    free(ctx.t);
    free(ts);
    free(scratch);
    return e;
}
