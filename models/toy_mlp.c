// toy_mlp.c: see toy_mlp.h. Losses follow LDM's scaling so that the KL
// weight means what it means there: the reconstruction and KL terms are
// summed over a sample's 2 coordinates and averaged over the batch; the VE
// and magnitude terms are means over elements (SPEC.md section 1).
#include "models/toy_mlp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/base.h"
#include "nn/linear.h"
#include "nn/safetensors.h"

#define LV_MIN (-30.0f)
#define LV_MAX 20.0f

const char *toy_strerror(int err) {
    switch (err) {
    case TOY_EMODEL: return "checkpoint holds another model or a bad architecture";
    case TOY_EDIM: return "data of the wrong dimension";
    case TOY_ECONFIG: return "invalid configuration value";
    default: break;
    }
    if (err <= -300 && err > -400) return ckpt_strerror(err);
    return vel_strerror(err);
}

// ---------------------------------------------------------------- MLP
void toy_mlp_declare(toy_mlp *m, param_table *pt, const char *prefix, int in, int out,
                     int depth, int width, int max_batch) {
    CHECK(depth >= 0 && depth + 1 <= TOY_MAX_LAYERS && width > 0 && in > 0 && out > 0);
    memset(m, 0, sizeof *m);
    m->in = in, m->out = out, m->depth = depth, m->width = width, m->max_batch = max_batch;
    for (int l = 0; l <= depth; l++) {
        int fi = l == 0 ? in : width, fo = l == depth ? out : width;
        char name[PARAM_NAME_MAX];
        snprintf(name, sizeof name, "%s.layers.%d.weight", prefix, l);
        m->pidx[l] = pt->count;
        param_add(pt, name, 2, (int64_t[]){fo, fi});
        snprintf(name, sizeof name, "%s.layers.%d.bias", prefix, l);
        param_add(pt, name, 1, (int64_t[]){fo});
    }
}

void toy_mlp_bind(toy_mlp *m, const param_table *pt) {
    for (int l = 0; l <= m->depth; l++) {
        m->W[l] = param_data(pt, m->pidx[l]);
        m->b[l] = param_data(pt, m->pidx[l] + 1);
        m->dW[l] = param_grad(pt, m->pidx[l]);
        m->db[l] = param_grad(pt, m->pidx[l] + 1);
    }
}

void toy_mlp_carve(toy_mlp *m, arena *a) {
    size_t B = (size_t)m->max_batch, wmax = m->width > m->in ? m->width : m->in;
    if (m->out > (int)wmax) wmax = m->out;
    m->x0 = arena_floats(a, B * m->in);
    for (int l = 0; l < m->depth; l++) {
        m->pre[l] = arena_floats(a, B * m->width);
        m->post[l] = arena_floats(a, B * m->width);
    }
    m->g0 = arena_floats(a, B * wmax);
    m->g1 = arena_floats(a, B * wmax);
}

void toy_mlp_init(toy_mlp *m, mt19937 *rng) {
    for (int l = 0; l <= m->depth; l++) {
        int fi = l == 0 ? m->in : m->width, fo = l == m->depth ? m->out : m->width;
        double bound = 1.0 / sqrt((double)fi);
        for (int64_t i = 0; i < (int64_t)fo * fi; i++)
            m->W[l][i] = (float)((2.0 * mt_random_sample(rng) - 1.0) * bound);
        for (int i = 0; i < fo; i++) m->b[l][i] = (float)((2.0 * mt_random_sample(rng) - 1.0) * bound);
    }
}

void toy_mlp_forward(toy_mlp *m, float *out, const float *in, int B) {
    // out (B,out), in (B,in)
    CHECK(B >= 0 && B <= m->max_batch);
    memcpy(m->x0, in, sizeof(float) * (size_t)B * m->in);
    const float *cur = m->x0;
    int C = m->in;
    for (int l = 0; l < m->depth; l++) {
        linear_forward(m->pre[l], cur, m->W[l], m->b[l], B, C, m->width);
        int64_t n = (int64_t)B * m->width;
        const float *p = m->pre[l];
        float *q = m->post[l];
        for (int64_t i = 0; i < n; i++) q[i] = p[i] > 0.0f ? p[i] : 0.0f;
        cur = q;
        C = m->width;
    }
    linear_forward(out, cur, m->W[m->depth], m->b[m->depth], B, C, m->out);
    m->last_batch = B;
}

void toy_mlp_backward(toy_mlp *m, float *din, const float *dout, int B) {
    // din (B,in) or NULL, dout (B,out); activations from the latest forward
    CHECK(B == m->last_batch);
    int L = m->depth;
    const float *inp = L > 0 ? m->post[L - 1] : m->x0;
    int C = L > 0 ? m->width : m->in;
    float *dcur = m->g0, *dnext = m->g1;
    if (L == 0) {
        linear_backward(din, m->dW[0], m->db[0], dout, m->x0, m->W[0], B, m->in, m->out);
        return;
    }
    memset(dcur, 0, sizeof(float) * (size_t)B * C);
    linear_backward(dcur, m->dW[L], m->db[L], dout, inp, m->W[L], B, C, m->out);
    for (int l = L - 1; l >= 0; l--) {
        // dcur holds d post[l]; turn it into d pre[l] in place (ReLU mask)
        int64_t n = (int64_t)B * m->width;
        const float *p = m->pre[l];
        for (int64_t i = 0; i < n; i++)
            if (!(p[i] > 0.0f)) dcur[i] = 0.0f;
        const float *lin = l > 0 ? m->post[l - 1] : m->x0;
        int lc = l > 0 ? m->width : m->in;
        float *dl = l > 0 ? dnext : din;
        if (l > 0) memset(dnext, 0, sizeof(float) * (size_t)B * lc);
        linear_backward(dl, m->dW[l], m->db[l], dcur, lin, m->W[l], B, lc, m->width);
        float *tmp = dcur;
        dcur = dnext;
        dnext = tmp;
    }
}

// ---------------------------------------------------------------- Adam
int toy_adam_init(toy_adam *o, int64_t n, float lr_ref, float beta1, float beta2, float eps) {
    memset(o, 0, sizeof *o);
    o->m = calloc((size_t)n, sizeof(float));
    o->v = calloc((size_t)n, sizeof(float));
    if (!o->m || !o->v) {
        toy_adam_free(o);
        return VEL_ENOMEM;
    }
    o->n = n, o->lr_ref = lr_ref, o->beta1 = beta1, o->beta2 = beta2, o->eps = eps;
    return 0;
}

void toy_adam_free(toy_adam *o) {
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

float toy_lr(float lr_ref, int64_t it) {
    double r = (double)it / 512.0;
    return (float)(lr_ref / sqrt(r > 1.0 ? r : 1.0));
}

void toy_adam_step(toy_adam *o, float *p, const float *g, float lr) {
    o->t++;
    double bc1 = 1.0 - pow(o->beta1, (double)o->t), bc2 = 1.0 - pow(o->beta2, (double)o->t);
    float b1 = o->beta1, b2 = o->beta2, eps = o->eps;
    float step = (float)(lr / bc1);
    float rbc2 = (float)(1.0 / sqrt(bc2));
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < o->n; i++) {
        float m = o->m[i] = b1 * o->m[i] + (1.0f - b1) * g[i];
        float v = o->v[i] = b2 * o->v[i] + (1.0f - b2) * g[i] * g[i];
        p[i] -= step * m / (sqrtf(v) * rbc2 + eps);
    }
}

// ---------------------------------------------------------------- tokenizer
static void tok_carve(toy_tok *t, arena *a) {
    size_t B = (size_t)t->max_batch;
    toy_mlp_carve(&t->enc, a);
    toy_mlp_carve(&t->dec, a);
    t->h = arena_floats(a, B * 4);
    t->dh = arena_floats(a, B * 4);
    float **two[] = {&t->mu, &t->lv, &t->sigma, &t->eps, &t->z, &t->xr, &t->dxr, &t->dz};
    for (size_t i = 0; i < sizeof two / sizeof *two; i++) *two[i] = arena_floats(a, B * 2);
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
    free(t);
    *pt = NULL;
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
    for (int s = 0; s < B; s += t->max_batch) {
        int n = B - s < t->max_batch ? B - s : t->max_batch;
        toy_mlp_forward(&t->enc, t->h, x + 2 * (size_t)s, n);
        for (int i = 0; i < n; i++) {
            mu[2 * (s + i)] = t->h[4 * i];
            mu[2 * (s + i) + 1] = t->h[4 * i + 1];
            if (logvar) {
                logvar[2 * (s + i)] = clampf(t->h[4 * i + 2], LV_MIN, LV_MAX);
                logvar[2 * (s + i) + 1] = clampf(t->h[4 * i + 3], LV_MIN, LV_MAX);
            }
        }
    }
}

void toy_tok_decode(toy_tok *t, float *x, const float *z, int B) {
    for (int s = 0; s < B; s += t->max_batch) {
        int n = B - s < t->max_batch ? B - s : t->max_batch;
        toy_mlp_forward(&t->dec, x + 2 * (size_t)s, z + 2 * (size_t)s, n);
    }
}

// Forward of one step; fills the step buffers and returns the loss terms.
static toy_tok_losses tok_forward(toy_tok *t, const toy_tok_cfg *cfg, const float *x,
                                  const float *eps, int B) {
    CHECK(B > 0 && B <= t->max_batch);
    toy_tok_losses L = {0};
    toy_mlp_forward(&t->enc, t->h, x, B);
    for (int i = 0; i < B; i++)
        for (int d = 0; d < 2; d++) {
            int k = 2 * i + d;
            t->mu[k] = t->h[4 * i + d];
            t->lv[k] = t->h[4 * i + 2 + d];
            t->sigma[k] = expf(0.5f * clampf(t->lv[k], LV_MIN, LV_MAX));
            t->eps[k] = eps[k];
            t->z[k] = t->mu[k] + t->sigma[k] * eps[k];
        }
    toy_mlp_forward(&t->dec, t->xr, t->z, B);
    int n = 2 * B;
    double rec = 0, kl = 0, ve = 0, reg = 0, ss = 0;
    for (int k = 0; k < n; k++) {
        double e = (double)t->xr[k] - x[k];
        rec += e * e;
        double lvc = clampf(t->lv[k], LV_MIN, LV_MAX), s2 = exp(lvc), mu = t->mu[k];
        kl += 0.5 * (mu * mu + s2 - 1.0 - lvc);
        switch (cfg->ve_form) {
        case TOY_VE_INV_VAR: ve += 1.0 / (s2 + cfg->delta); break;
        case TOY_VE_NEG_VAR: ve += -s2; break;
        case TOY_VE_NEG_LOGSTD: ve += -0.5 * lvc; break;
        }
        double over = fabs(mu) - cfg->tau;
        reg += over > 0 ? exp(over) - 1.0 : 0.0;
        ss += mu * mu;
    }
    L.rec = rec / B;
    L.kl = kl / B;
    L.ve = ve / n;
    if (cfg->reg_global) {
        double over = sqrt(ss / n) - cfg->tau;
        L.reg = over > 0 ? exp(over) - 1.0 : 0.0;
    } else {
        L.reg = reg / n;
    }
    L.total = L.rec + (cfg->reg == TOY_REG_KL ? cfg->kl_weight * L.kl
                                              : cfg->lambda_ve * L.ve + cfg->lambda_reg * L.reg);
    return L;
}

toy_tok_losses toy_tok_loss(toy_tok *t, const toy_tok_cfg *cfg, const float *x, const float *eps,
                            int B) {
    return tok_forward(t, cfg, x, eps, B);
}

toy_tok_losses toy_tok_loss_backward(toy_tok *t, const toy_tok_cfg *cfg, const float *x,
                                     const float *eps, int B) {
    toy_tok_losses L = tok_forward(t, cfg, x, eps, B);
    param_zero_grads(&t->pt);
    int n = 2 * B;
    for (int k = 0; k < n; k++) t->dxr[k] = 2.0f * (t->xr[k] - x[k]) / B;
    memset(t->dz, 0, sizeof(float) * n);
    toy_mlp_backward(&t->dec, t->dz, t->dxr, B);
    double gscale = 0;   // global magnitude term: dL/dmu = g * mu
    if (cfg->reg == TOY_REG_VE && cfg->reg_global) {
        double ss = 0;
        for (int k = 0; k < n; k++) ss += (double)t->mu[k] * t->mu[k];
        double m = sqrt(ss / n), over = m - cfg->tau;
        if (over > 0 && m > 0) gscale = cfg->lambda_reg * exp(over) / (m * n);
    }
    for (int i = 0; i < B; i++)
        for (int d = 0; d < 2; d++) {
            int k = 2 * i + d;
            float lv = t->lv[k], s = t->sigma[k], mu = t->mu[k];
            int inside = lv >= LV_MIN && lv <= LV_MAX;   // clamp passes the gradient
            double s2 = (double)s * s;
            double dmu = t->dz[k], dlv = inside ? t->dz[k] * t->eps[k] * 0.5 * s : 0.0;
            if (cfg->reg == TOY_REG_KL) {
                dmu += cfg->kl_weight * mu / B;
                if (inside) dlv += cfg->kl_weight * 0.5 * (s2 - 1.0) / B;
            } else {
                if (inside) {
                    double g = 0;
                    switch (cfg->ve_form) {
                    case TOY_VE_INV_VAR: g = -s2 / ((s2 + cfg->delta) * (s2 + cfg->delta)); break;
                    case TOY_VE_NEG_VAR: g = -s2; break;
                    case TOY_VE_NEG_LOGSTD: g = -0.5; break;
                    }
                    dlv += cfg->lambda_ve * g / n;
                }
                if (cfg->reg_global) {
                    dmu += gscale * mu;
                } else {
                    double over = fabs(mu) - cfg->tau;
                    if (over > 0) dmu += cfg->lambda_reg * exp(over) * (mu > 0 ? 1.0 : -1.0) / n;
                }
            }
            t->dh[4 * i + d] = (float)dmu;
            t->dh[4 * i + 2 + d] = (float)dlv;
        }
    toy_mlp_backward(&t->enc, NULL, t->dh, B);
    return L;
}

// ---------------------------------------------------------------- flow
static void flow_carve(toy_flow *f, arena *a) {
    size_t B = (size_t)f->max_batch;
    toy_mlp_carve(&f->net, a);
    f->inp = arena_floats(a, B * 3);
    f->v = arena_floats(a, B * 2);
    f->target = arena_floats(a, B * 2);
    f->dv = arena_floats(a, B * 2);
}

int toy_flow_create(toy_flow **out, int depth, int width, int max_batch) {
    *out = NULL;
    if (depth < 0 || depth + 1 > TOY_MAX_LAYERS || width <= 0 || max_batch <= 0) return TOY_ECONFIG;
    toy_flow *f = calloc(1, sizeof *f);
    if (!f) return VEL_ENOMEM;
    f->depth = depth, f->width = width, f->max_batch = max_batch;
    param_table_init(&f->pt);
    toy_mlp_declare(&f->net, &f->pt, "net", 3, 2, depth, width, max_batch);
    int rc = param_table_commit(&f->pt);
    if (rc) { param_table_free(&f->pt); free(f); return rc; }
    toy_mlp_bind(&f->net, &f->pt);
    arena_measure(&f->act);
    flow_carve(f, &f->act);
    if ((rc = arena_commit(&f->act))) { param_table_free(&f->pt); free(f); return rc; }
    flow_carve(f, &f->act);
    *out = f;
    return 0;
}

void toy_flow_destroy(toy_flow **pf) {
    toy_flow *f = *pf;
    if (!f) return;
    param_table_free(&f->pt);
    arena_free(&f->act);
    free(f);
    *pf = NULL;
}

void toy_flow_init(toy_flow *f, uint32_t seed) {
    mt19937 r;
    mt_seed(&r, seed);
    toy_mlp_init(&f->net, &r);
}

void toy_flow_velocity(toy_flow *f, float *v, const float *zt, const float *t, int B) {
    for (int s = 0; s < B; s += f->max_batch) {
        int n = B - s < f->max_batch ? B - s : f->max_batch;
        for (int i = 0; i < n; i++) {
            f->inp[3 * i] = zt[2 * (s + i)];
            f->inp[3 * i + 1] = zt[2 * (s + i) + 1];
            f->inp[3 * i + 2] = t[s + i];
        }
        toy_mlp_forward(&f->net, v + 2 * (size_t)s, f->inp, n);
    }
}

static double flow_forward(toy_flow *f, const float *z1, const float *x0, const float *t, int B) {
    CHECK(B > 0 && B <= f->max_batch);
    for (int i = 0; i < B; i++) {
        for (int d = 0; d < 2; d++) {
            int k = 2 * i + d;
            f->inp[3 * i + d] = t[i] * z1[k] + (1.0f - t[i]) * x0[k];
            f->target[k] = z1[k] - x0[k];
        }
        f->inp[3 * i + 2] = t[i];
    }
    toy_mlp_forward(&f->net, f->v, f->inp, B);
    double l = 0;
    for (int k = 0; k < 2 * B; k++) {
        double e = (double)f->v[k] - f->target[k];
        l += e * e;
    }
    return l / (2 * B);
}

double toy_flow_loss(toy_flow *f, const float *z1, const float *x0, const float *t, int B) {
    return flow_forward(f, z1, x0, t, B);
}

double toy_flow_loss_backward(toy_flow *f, const float *z1, const float *x0, const float *t, int B) {
    double l = flow_forward(f, z1, x0, t, B);
    param_zero_grads(&f->pt);
    for (int k = 0; k < 2 * B; k++) f->dv[k] = (f->v[k] - f->target[k]) / B;   // 2/(2B)
    toy_mlp_backward(&f->net, NULL, f->dv, B);
    return l;
}

// ---------------------------------------------------------------- checkpoints
int toy_save(const char *path, const param_table *pt, const char *model, int depth, int width,
             const toy_kv *extra, int nextra, char *err, int errlen) {
    char ds[16], ws[16];
    snprintf(ds, sizeof ds, "%d", depth);
    snprintf(ws, sizeof ws, "%d", width);
    st_kv kv[40];
    int n = 0;
    kv[n++] = (st_kv){"model", model};
    kv[n++] = (st_kv){"depth", ds};
    kv[n++] = (st_kv){"width", ws};
    for (int i = 0; i < nextra && n < 40; i++) kv[n++] = (st_kv){extra[i].key, extra[i].value};
    st_err e = {{0}};
    int rc = st_save_params(path, pt, DT_F32, kv, n, &e);
    if (rc && err) snprintf(err, errlen, "%s: %s", path, e.msg[0] ? e.msg : toy_strerror(rc));
    return rc;
}

int toy_ckpt_meta(const char *path, const char *key, char *out, int outlen) {
    st_file *f;
    int rc = st_open(&f, path, NULL);
    if (rc) return rc;
    const char *v = st_meta_get(f, key);
    if (!v) rc = VEL_ENOTFOUND;
    else snprintf(out, outlen, "%s", v);
    st_close(&f);
    return rc;
}

int toy_ckpt_arch(const char *path, const char *want_model, int *depth, int *width, char *err,
                  int errlen) {
    st_err e = {{0}};
    st_file *f;
    int rc = st_open(&f, path, &e);
    if (rc) {
        if (err) snprintf(err, errlen, "%s: %s", path, e.msg[0] ? e.msg : toy_strerror(rc));
        return rc;
    }
    const char *m = st_meta_get(f, "model"), *d = st_meta_get(f, "depth"), *w = st_meta_get(f, "width");
    rc = 0;
    if (!m || strcmp(m, want_model) != 0) {
        if (err) snprintf(err, errlen, "%s: checkpoint holds model '%s', expected '%s'", path,
                          m ? m : "(none)", want_model);
        rc = TOY_EMODEL;
    } else {
        char *end1 = NULL, *end2 = NULL;
        long dv = d ? strtol(d, &end1, 10) : -1, wv = w ? strtol(w, &end2, 10) : -1;
        if (!d || !w || *end1 || *end2 || dv < 0 || dv + 1 > TOY_MAX_LAYERS || wv <= 0 || wv > 65536) {
            if (err) snprintf(err, errlen, "%s: bad depth/width in metadata", path);
            rc = TOY_EMODEL;
        } else {
            *depth = (int)dv;
            *width = (int)wv;
        }
    }
    st_close(&f);
    return rc;
}

static int load_into(const char *path, param_table *pt, char *err, int errlen) {
    st_err e = {{0}};
    int rc = st_load_params(path, pt, &e);
    if (rc && err) snprintf(err, errlen, "%s: %s", path, e.msg[0] ? e.msg : toy_strerror(rc));
    return rc;
}

int toy_tok_load(toy_tok **out, const char *path, int max_batch, char *err, int errlen) {
    *out = NULL;
    int depth, width;
    int rc = toy_ckpt_arch(path, "toy-tokenizer", &depth, &width, err, errlen);
    if (rc) return rc;
    if ((rc = toy_tok_create(out, depth, width, max_batch))) return rc;
    if ((rc = load_into(path, &(*out)->pt, err, errlen))) toy_tok_destroy(out);
    return rc;
}

int toy_flow_load(toy_flow **out, const char *path, int max_batch, char *err, int errlen) {
    *out = NULL;
    int depth, width;
    int rc = toy_ckpt_arch(path, "toy-flow", &depth, &width, err, errlen);
    if (rc) return rc;
    if ((rc = toy_flow_create(out, depth, width, max_batch))) return rc;
    if ((rc = load_into(path, &(*out)->pt, err, errlen))) toy_flow_destroy(out);
    return rc;
}

int toy_file_hash(const char *path, char out[17]) {
    FILE *f = fopen(path, "rb");
    if (!f) return VEL_EIO;
    uint64_t h = 1469598103934665603ull;
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        for (size_t i = 0; i < n; i++) h = (h ^ buf[i]) * 1099511628211ull;
    int bad = ferror(f);
    fclose(f);
    if (bad) return VEL_EIO;
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    return 0;
}
