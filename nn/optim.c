// optim.c: Adam, AdamW, Muon steps and gradient clipping (see optim.h).
#include "nn/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "nn/backend.h"
#include "nn/cpu/adam.h"
#include "nn/device.h"
#include "nn/muon.h"
#ifdef VEL_HAVE_CUDA
#include "nn/cuda/ops.h"
#endif

optim_config optim_defaults(optim_kind kind) {
    optim_config c = {
        .kind = kind, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
        .weight_decay = kind == OPTIM_ADAM ? 0.0 : 1e-2,
        .muon_momentum = 0.95, .muon_nesterov = 1, .muon_ns_steps = 5,
        .muon_lr_ratio = 1.0, .muon_weight_decay = 0.0,
    };
    return c;
}

const char *optim_kind_name(optim_kind kind) {
    switch (kind) {
    case OPTIM_ADAM: return "adam";
    case OPTIM_ADAMW: return "adamw";
    case OPTIM_MUON: return "muon";
    }
    return "?";
}

int optim_kind_parse(const char *name, optim_kind *out) {
    for (int k = OPTIM_ADAM; k <= OPTIM_MUON; k++)
        if (name && strcmp(name, optim_kind_name((optim_kind)k)) == 0) {
            *out = (optim_kind)k;
            return 0;
        }
    return VEL_EINVAL;
}

static int muon_eligible(const param_info *p) { return p->ndim >= 2 && !p->no_decay; }

int optim_create(optim **out, const param_table *pt, const optim_config *cfg) {
    *out = NULL;
    if (!pt->values || (unsigned)cfg->kind > OPTIM_MUON) return VEL_EINVAL;
    if (!(cfg->beta1 >= 0 && cfg->beta1 < 1) || !(cfg->beta2 >= 0 && cfg->beta2 < 1) ||
        !(cfg->eps > 0) || !(cfg->weight_decay >= 0))
        return VEL_EINVAL;
    if (cfg->kind == OPTIM_MUON &&
        (!(cfg->muon_momentum >= 0 && cfg->muon_momentum < 1) || cfg->muon_ns_steps < 0 ||
         !(cfg->muon_lr_ratio > 0) || !(cfg->muon_weight_decay >= 0)))
        return VEL_EINVAL;
    // The state lives where the parameters live (nn/device.h).
    const device_kind where = device_of(pt->values);
    optim *o = calloc(1, sizeof *o);
    if (!o) return VEL_ENOMEM;
    o->cfg = *cfg;
    o->total = pt->total;
    o->count = pt->count;
    int r = device_alloc(where, (void **)&o->state, (size_t)(2 * pt->total + 16) * sizeof(float));
    if (r) {
        optim_destroy(&o);
        return r;
    }
    o->muon = calloc((size_t)pt->count + 1, 1);
    o->jobs = calloc((size_t)pt->count + 1, sizeof(adam_job));
    int64_t scratch = 0;
    for (int i = 0; i < pt->count && cfg->kind == OPTIM_MUON; i++) {
        const param_info *p = &pt->info[i];
        if (!muon_eligible(p)) continue;
        o->muon[i] = 1;
        int64_t rows = p->shape[0], cols = p->numel / rows;
        // + rows*cols for the Nesterov update that feeds the iteration
        int64_t need = muon_ns_scratch_floats(rows, cols) + rows * cols;
        if (need > scratch) scratch = need;
    }
    // Muon's scratch lives with the parameters too (nn/cuda/muon.cu on the GPU).
    if (scratch > 0 && where == DEVICE_CUDA) {
        if ((r = device_alloc(DEVICE_CUDA, (void **)&o->scratch, (size_t)scratch * sizeof(float)))) {
            optim_destroy(&o);
            return r;
        }
    } else if (scratch > 0) {
        o->scratch = malloc((size_t)scratch * sizeof(float));
    }
    if (!o->state || !o->muon || !o->jobs || (scratch > 0 && !o->scratch)) {
        optim_destroy(&o);
        return VEL_ENOMEM;
    }
    *out = o;
    return 0;
}

void optim_destroy(optim **op) {
    if (!op || !*op) return;
    device_free((void **)&(*op)->state);
    free((*op)->muon);
    free((*op)->jobs);
    device_free((void **)&(*op)->scratch);   // host scratch: free()
    free(*op);
    *op = NULL;
}

static inline float lerpf_torch(float a, float b, float w) {
    return w < 0.5f ? a + w * (b - a) : b - (b - a) * (1.0f - w);
}

// The constants of one Adam(W) update at step t, rounded as torch rounds
// them; decoupled selects AdamW. The element loop is nn/cpu/adam.c.
static adam_consts adam_constants(double lr, double wd_d, int decoupled, const optim_config *c,
                                  int64_t t) {
    const double bc1 = 1.0 - pow(c->beta1, (double)t);
    const double bc2 = 1.0 - pow(c->beta2, (double)t);
    return (adam_consts){
        .step_size = (float)(lr / bc1), .bc2_sqrt = (float)sqrt(bc2),
        .decay = (float)(1.0 - lr * wd_d), .wd = (float)wd_d,
        .w1 = (float)(1.0 - c->beta1), .b2 = (float)c->beta2,
        .w2 = (float)(1.0 - c->beta2), .eps = (float)c->eps, .decoupled = decoupled};
}

static void muon_update(float *p, const float *g, float *buf, const param_info *info, double lr_d,
                        const optim_config *c, float *scratch) {
    const int64_t rows = info->shape[0], cols = info->numel / rows, n = info->numel;
    float *u = scratch, *ns = scratch + n;
    const float mu = (float)c->muon_momentum, w = (float)(1.0 - c->muon_momentum);
    const float lr = (float)lr_d;
    for (int64_t k = 0; k < n; k++) {
        buf[k] = lerpf_torch(buf[k], g[k], w);
        u[k] = c->muon_nesterov ? lerpf_torch(g[k], buf[k], mu) : buf[k];
    }
    muon_newton_schulz(u, u, rows, cols, c->muon_ns_steps, ns);
    const float scale = (float)sqrt(rows > cols ? (double)rows / (double)cols : 1.0);
    const float decay = (float)(1.0 - lr_d * c->muon_weight_decay);
    for (int64_t k = 0; k < n; k++) {
        float pk = c->muon_weight_decay != 0.0 ? p[k] * decay : p[k];
        p[k] = pk + (-lr) * (u[k] * scale);
    }
}

void optim_step_ema_zero(optim *o, param_table *pt, double lr, ema *e, double decay,
                         int zero_grads) {
    CHECK(pt->total == o->total && pt->count == o->count && pt->values && pt->grads);
    CHECK(!e || e->total == pt->total);
    int w = NN_WHERE(pt->values, pt->grads, o->state, e ? e->shadow : NULL);
    if (w == NN_DEVICE) {
        // the three steps it stands for, queued on the stream
        NN_CUDA(optim_step_cuda(NN_CTX, o, pt, pt->values, pt->grads, o->state, lr));
        if (e) ema_update(e, pt, decay);
        if (zero_grads) param_zero_grads(pt);
    }
    if (w != NN_HOST) return;
    o->step++;
    const optim_config *c = &o->cfg;
    const int decoupled = c->kind != OPTIM_ADAM;
    const float ema_d = (float)decay, ema_w = (float)(1.0 - decay);   // as ema_update rounds them
    // Muon parameters one by one; the Adam(W) ones gathered into one work
    // list run in a single parallel region (nn/cpu/adam.h), each piece's
    // EMA and gradient clearing right after its update.
    adam_job *jobs = o->jobs;
    int nj = 0;
    for (int i = 0; i < pt->count; i++) {
        const param_info *p = &pt->info[i];
        float *pv = pt->values + p->offset, *gv = pt->grads + p->offset;
        float *m = o->state + p->offset, *v = o->state + o->total + p->offset;
        adam_job J = {.p = pv, .g = gv, .m = m, .v = v, .n = p->numel,
                      .shadow = e ? e->shadow + p->offset : NULL, .ema_d = ema_d,
                      .ema_w = ema_w, .zero_g = zero_grads};
        if (o->muon[i]) {
            muon_update(pv, gv, m, p, lr * c->muon_lr_ratio, c, o->scratch);
            adam_tail_cpu(&J, 0, p->numel);
        } else {
            double wd = p->no_decay ? 0.0 : c->weight_decay;
            J.k = adam_constants(lr, wd, decoupled, c, o->step);
            jobs[nj++] = J;
        }
    }
    adam_update_all_cpu(jobs, nj);
}

void optim_step(optim *o, param_table *pt, double lr) {
    optim_step_ema_zero(o, pt, lr, NULL, 0.0, 0);
}

float *optim_exp_avg(const optim *o, const param_table *pt, int i) {
    CHECK(i >= 0 && i < o->count);
    return o->state + pt->info[i].offset;
}

float *optim_exp_avg_sq(const optim *o, const param_table *pt, int i) {
    CHECK(i >= 0 && i < o->count);
    return o->state + o->total + pt->info[i].offset;
}

int optim_uses_muon(const optim *o, int i) {
    CHECK(i >= 0 && i < o->count);
    return o->muon[i];
}


float clip_grad_norm(param_table *pt, float max_norm) {
    // The table's padding between parameters is zero (params.c), so the flat
    // buffer can be summed and scaled as a whole.
    int w = NN_WHERE(pt->grads);
    if (w != NN_HOST) {
        float norm = NAN;
        if (w == NN_DEVICE) NN_CUDA(clip_grad_norm_cuda(NN_CTX, pt->grads, pt->total, max_norm, &norm));
        return norm;
    }
    double part[OPTIM_CLIP_SLICES];
    const int64_t n = pt->total, per = (n + OPTIM_CLIP_SLICES - 1) / OPTIM_CLIP_SLICES;
    const float *g = pt->grads;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int s = 0; s < OPTIM_CLIP_SLICES; s++) {
        int64_t lo = s * per, hi = lo + per < n ? lo + per : n;
        part[s] = hi > lo ? sumsq_cpu(g + lo, hi - lo) : 0.0;
    }
    double ss = 0;
    for (int s = 0; s < OPTIM_CLIP_SLICES; s++) ss += part[s];
    const float norm = (float)sqrt(ss);
    if (max_norm > 0) {
        const float coef = max_norm / (norm + 1e-6f);
        if (coef < 1.0f) {
#pragma omp parallel for schedule(static) if (n > 65536)
            for (int64_t k = 0; k < n; k++) pt->grads[k] *= coef;
        }
    }
    return norm;
}
