// toy_mlp.c: see toy_mlp.h. Losses follow LDM's scaling so that the KL
// weight means what it means there: the reconstruction and KL terms are
// summed over a sample's 2 coordinates and averaged over the batch (rec =
// 2 * nn/loss.h's element mean MSE); the VE and magnitude terms are means
// over elements (docs/FORMULAS.md section 1), all computed by nn/loss.h.
#include "models/toy_mlp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "nn/linear.h"
#include "nn/safetensors.h"


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

// ---------------------------------------------------------------- tokenizer
static void tok_carve(toy_tok *t, arena *a) {
    size_t B = (size_t)t->max_batch;
    toy_mlp_carve(&t->enc, a);
    toy_mlp_carve(&t->dec, a);
    t->h = arena_floats(a, B * 4);
    t->dh = arena_floats(a, B * 4);
    float **two[] = {&t->mu, &t->lv, &t->sigma, &t->z, &t->xr, &t->dxr, &t->dz, &t->dmu, &t->dlv};
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
                logvar[2 * (s + i)] = clampf(t->h[4 * i + 2], LOGVAR_MIN, LOGVAR_MAX);
                logvar[2 * (s + i) + 1] = clampf(t->h[4 * i + 3], LOGVAR_MIN, LOGVAR_MAX);
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

// Forward of one step; fills the step buffers and returns the loss terms
// (all of them, whichever regulariser trains, for the log).
static toy_tok_losses tok_forward(toy_tok *t, const toy_tok_cfg *cfg, const float *x,
                                  const float *eps, int B) {
    CHECK(B > 0 && B <= t->max_batch);
    toy_tok_losses L = {0};
    toy_mlp_forward(&t->enc, t->h, x, B);
    for (int i = 0; i < B; i++)
        for (int d = 0; d < 2; d++) {
            t->mu[2 * i + d] = t->h[4 * i + d];
            t->lv[2 * i + d] = t->h[4 * i + 2 + d];
        }
    int n = 2 * B;
    for (int k = 0; k < n; k++) t->sigma[k] = expf(0.5f * clampf(t->lv[k], LOGVAR_MIN, LOGVAR_MAX));
    reparam_forward(t->z, t->mu, t->lv, eps, n);
    toy_mlp_forward(&t->dec, t->xr, t->z, B);
    L.rec = 2.0 * mse_loss_forward(t->xr, x, n);   // summed over the 2 coordinates
    L.kl = kl_loss_forward(t->mu, t->lv, B, 2);
    L.ve = ve_loss_forward(t->lv, n, cfg->ve_form, cfg->delta);
    L.reg = cfg->reg_global ? mag_reg_global_forward(t->mu, B, 1, 2, cfg->tau)
                            : mag_reg_elem_forward(t->mu, n, cfg->tau);
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
    size_t bytes = sizeof(float) * (size_t)n;
    memset(t->dxr, 0, bytes);
    mse_loss_backward(t->dxr, NULL, t->xr, x, n, 2.0f);
    memset(t->dz, 0, bytes);
    toy_mlp_backward(&t->dec, t->dz, t->dxr, B);
    memset(t->dmu, 0, bytes);
    memset(t->dlv, 0, bytes);
    reparam_backward(t->dmu, t->dlv, t->dz, t->lv, eps, n);
    if (cfg->reg == TOY_REG_KL) {
        kl_loss_backward(t->dmu, t->dlv, t->mu, t->lv, B, 2, cfg->kl_weight);
    } else {
        ve_loss_backward(t->dlv, t->lv, n, cfg->ve_form, cfg->delta, cfg->lambda_ve);
        if (cfg->reg_global) mag_reg_global_backward(t->dmu, t->mu, B, 1, 2, cfg->tau, cfg->lambda_reg);
        else mag_reg_elem_backward(t->dmu, t->mu, n, cfg->tau, cfg->lambda_reg);
    }
    for (int i = 0; i < B; i++)
        for (int d = 0; d < 2; d++) {
            t->dh[4 * i + d] = t->dmu[2 * i + d];
            t->dh[4 * i + 2 + d] = t->dlv[2 * i + d];
        }
    toy_mlp_backward(&t->enc, NULL, t->dh, B);
    return L;
}

// ---------------------------------------------------------------- flow
const char *toy_time_embed_name(toy_time_embed te) { return te == TOY_TIME_FOURIER ? "fourier" : "raw"; }

int toy_time_embed_parse(const char *name, toy_time_embed *out) {
    if (!strcmp(name, "raw")) *out = TOY_TIME_RAW;
    else if (!strcmp(name, "fourier")) *out = TOY_TIME_FOURIER;
    else return TOY_ECONFIG;
    return 0;
}

int toy_time_features_dim(toy_time_embed te, int nfreq) { return te == TOY_TIME_FOURIER ? 2 * nfreq : 1; }

void toy_time_features(float *feat, float t, toy_time_embed te, int nfreq) {
    if (te != TOY_TIME_FOURIER) {
        feat[0] = t;
        return;
    }
    for (int k = 0; k < nfreq; k++) {
        double w = 1000.0 * pow(10000.0, -(double)k / nfreq), a = w * (double)t;
        feat[k] = (float)sin(a);
        feat[nfreq + k] = (float)cos(a);
    }
}

static void flow_carve(toy_flow *f, arena *a) {
    size_t B = (size_t)f->max_batch;
    toy_mlp_carve(&f->net, a);
    f->inp = arena_floats(a, B * f->in_dim);
    f->v = arena_floats(a, B * 2);
    f->target = arena_floats(a, B * 2);
    f->dv = arena_floats(a, B * 2);
}

int toy_flow_create(toy_flow **out, int depth, int width, int max_batch, toy_time_embed te,
                    int nfreq) {
    *out = NULL;
    if (depth < 0 || depth + 1 > TOY_MAX_LAYERS || width <= 0 || max_batch <= 0) return TOY_ECONFIG;
    if (te != TOY_TIME_RAW && te != TOY_TIME_FOURIER) return TOY_ECONFIG;
    if (te == TOY_TIME_FOURIER && (nfreq < 1 || nfreq > TOY_FOURIER_MAX)) return TOY_ECONFIG;
    toy_flow *f = calloc(1, sizeof *f);
    if (!f) return VEL_ENOMEM;
    f->depth = depth, f->width = width, f->max_batch = max_batch;
    f->time_embed = te;
    f->nfreq = te == TOY_TIME_FOURIER ? nfreq : 0;
    f->in_dim = 2 + toy_time_features_dim(te, nfreq);
    param_table_init(&f->pt);
    toy_mlp_declare(&f->net, &f->pt, "net", f->in_dim, 2, depth, width, max_batch);
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

// Row i of the MLP input: [z (2), time features of t].
static void flow_input_row(toy_flow *f, int i, float z0, float z1, float t) {
    float *r = f->inp + (size_t)i * f->in_dim;
    r[0] = z0;
    r[1] = z1;
    toy_time_features(r + 2, t, f->time_embed, f->nfreq);
}

void toy_flow_velocity(toy_flow *f, float *v, const float *zt, const float *t, int B) {
    for (int s = 0; s < B; s += f->max_batch) {
        int n = B - s < f->max_batch ? B - s : f->max_batch;
        for (int i = 0; i < n; i++) flow_input_row(f, i, zt[2 * (s + i)], zt[2 * (s + i) + 1], t[s + i]);
        toy_mlp_forward(&f->net, v + 2 * (size_t)s, f->inp, n);
    }
}

static double flow_forward(toy_flow *f, const float *z1, const float *x0, const float *t, int B) {
    CHECK(B > 0 && B <= f->max_batch);
    for (int i = 0; i < B; i++) {
        float zt[2];
        for (int d = 0; d < 2; d++) {
            int k = 2 * i + d;
            zt[d] = t[i] * z1[k] + (1.0f - t[i]) * x0[k];
            f->target[k] = z1[k] - x0[k];
        }
        flow_input_row(f, i, zt[0], zt[1], t[i]);
    }
    toy_mlp_forward(&f->net, f->v, f->inp, B);
    return mse_loss_forward(f->v, f->target, 2 * (int64_t)B);
}

double toy_flow_loss(toy_flow *f, const float *z1, const float *x0, const float *t, int B) {
    return flow_forward(f, z1, x0, t, B);
}

double toy_flow_loss_backward(toy_flow *f, const float *z1, const float *x0, const float *t, int B) {
    double l = flow_forward(f, z1, x0, t, B);
    param_zero_grads(&f->pt);
    memset(f->dv, 0, sizeof(float) * 2 * (size_t)B);
    mse_loss_backward(f->dv, NULL, f->v, f->target, 2 * (int64_t)B, 1.0f);
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

int toy_flow_save(const char *path, const toy_flow *f, const toy_kv *extra, int nextra, char *err,
                  int errlen) {
    char kstr[16];
    snprintf(kstr, sizeof kstr, "%d", f->nfreq);
    toy_kv kv[32];
    int n = 0;
    kv[n++] = (toy_kv){"time_embed", toy_time_embed_name(f->time_embed)};
    kv[n++] = (toy_kv){"time_freqs", kstr};
    for (int i = 0; i < nextra && n < 32; i++) kv[n++] = extra[i];
    return toy_save(path, &f->pt, "toy-flow", f->depth, f->width, kv, n, err, errlen);
}

int toy_flow_load(toy_flow **out, const char *path, int max_batch, char *err, int errlen) {
    *out = NULL;
    int depth, width;
    int rc = toy_ckpt_arch(path, "toy-flow", &depth, &width, err, errlen);
    if (rc) return rc;
    // time input: absent = raw (checkpoints written before the option)
    toy_time_embed te = TOY_TIME_RAW;
    int nfreq = 0;
    char val[64];
    if (toy_ckpt_meta(path, "time_embed", val, sizeof val) == 0 && toy_time_embed_parse(val, &te)) {
        if (err) snprintf(err, errlen, "%s: unknown time_embed '%s' in metadata", path, val);
        return TOY_EMODEL;
    }
    if (te == TOY_TIME_FOURIER) {
        char *end = NULL;
        long k = toy_ckpt_meta(path, "time_freqs", val, sizeof val) == 0 ? strtol(val, &end, 10) : -1;
        if (k < 1 || k > TOY_FOURIER_MAX || !end || *end) {
            if (err) snprintf(err, errlen, "%s: bad or missing time_freqs in metadata", path);
            return TOY_EMODEL;
        }
        nfreq = (int)k;
    }
    if ((rc = toy_flow_create(out, depth, width, max_batch, te, nfreq))) return rc;
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
