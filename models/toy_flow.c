// toy_flow.c: see toy_flow.h.
#include "models/toy_flow.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "models/toy_ckpt.h"
#include "nn/backend.h"
#include "nn/flow_loss.h"

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
    f->vals = arena_alloc(a, 2 * sizeof(double));
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
    free(f->hinp);
    free(f->htarget);
    free(f);
    *pf = NULL;
}

static void flow_carve_cb(void *f, arena *a) { flow_carve(f, a); }

int toy_flow_to_device(toy_flow *f, device_kind kind) {
    if (kind == f->dev) return 0;
    if (kind != DEVICE_CUDA || f->dev != DEVICE_CPU) return vel_fail(VEL_EINVAL, "toy_flow_to_device: host to GPU only");
    const size_t B = (size_t)f->max_batch;
    float *hi = malloc(sizeof(float) * B * f->in_dim), *ht = malloc(sizeof(float) * B * 2);
    if (!hi || !ht) { free(hi); free(ht); return vel_fail(VEL_ENOMEM, "toy_flow_to_device: staging"); }
    int e = param_move_with_arena(&f->pt, &f->act, &f->dev, kind, flow_carve_cb, NULL, f);
    if (e) {   // as it was (the arena's views restored)
        free(hi);
        free(ht);
        return e;
    }
    toy_mlp_bind(&f->net, &f->pt);   // the table's pointers moved
    f->hinp = hi, f->htarget = ht;
    return 0;
}

void toy_flow_init(toy_flow *f, uint32_t seed) {
    mt19937 r;
    mt_seed(&r, seed);
    toy_mlp_init(&f->net, &r);
}

// Row i of the MLP input, built on the host: [z (2), time features of t].
static void flow_input_row(const toy_flow *f, float *inp, int i, float z0, float z1, float t) {
    float *r = inp + (size_t)i * f->in_dim;
    r[0] = z0;
    r[1] = z1;
    toy_time_features(r + 2, t, f->time_embed, f->nfreq);
}
// Where the host builds the inputs: inp itself, or its staging on a GPU model.
static float *host_inp(toy_flow *f) { return f->hinp ? f->hinp : f->inp; }

void toy_flow_velocity(toy_flow *f, float *v, const float *zt, const float *t, int B) {
    float *inp = host_inp(f);
    for (int s = 0; s < B; s += f->max_batch) {
        int n = B - s < f->max_batch ? B - s : f->max_batch;
        for (int i = 0; i < n; i++) flow_input_row(f, inp, i, zt[2 * (s + i)], zt[2 * (s + i) + 1], t[s + i]);
        float *out = v + 2 * (size_t)s;
        if (inp == f->inp) {
            toy_mlp_forward(&f->net, out, f->inp, n);
            continue;
        }
        toy_copy(f->inp, inp, sizeof(float) * (size_t)n * f->in_dim);
        toy_mlp_forward(&f->net, f->v, f->inp, n);
        toy_copy(out, f->v, sizeof(float) * 2 * (size_t)n);
    }
}

// Forward and the loss op (dv: the gradient wanted, or NULL). Returns the
// loss; on the GPU waits for it and returns NAN with f->err on a failure.
static double flow_forward(toy_flow *f, const float *z1, const float *x0, const float *t, int B, float *dv) {
    CHECK(B > 0 && B <= f->max_batch);
    float *inp = host_inp(f), *target = f->htarget ? f->htarget : f->target;
    for (int i = 0; i < B; i++) {
        float zt[2];
        for (int d = 0; d < 2; d++) {
            int k = 2 * i + d;
            zt[d] = t[i] * z1[k] + (1.0f - t[i]) * x0[k];
            target[k] = z1[k] - x0[k];
        }
        flow_input_row(f, inp, i, zt[0], zt[1], t[i]);
    }
    if (inp != f->inp) {
        toy_copy(f->inp, inp, sizeof(float) * (size_t)B * f->in_dim);
        toy_copy(f->target, target, sizeof(float) * 2 * (size_t)B);
    }
    toy_mlp_forward(&f->net, f->v, f->inp, B);
    if (dv) toy_zero(dv, 2 * (size_t)B);
    // the MSE of nn/loss.h (value, then dv += 2 (v - target) / n), no cosine term
    flow_loss(f->vals, dv, f->v, f->target, B, 2, 1, 0.0f);
    f->err = 0;
    double vals[2];
    if (f->dev == DEVICE_CUDA && (f->err = nn_sync())) return NAN;
    toy_copy(vals, f->vals, sizeof vals);
    if (f->dev == DEVICE_CUDA && (f->err = nn_sync())) return NAN;
    return vals[0];
}

double toy_flow_loss(toy_flow *f, const float *z1, const float *x0, const float *t, int B) {
    return flow_forward(f, z1, x0, t, B, NULL);
}

double toy_flow_loss_backward(toy_flow *f, const float *z1, const float *x0, const float *t, int B) {
    double l = flow_forward(f, z1, x0, t, B, f->dv);
    if (f->err) return l;
    param_zero_grads(&f->pt);
    toy_mlp_backward(&f->net, NULL, f->dv, B);
    return l;
}

int toy_flow_save(const char *path, const toy_flow *f, const st_kv *extra, int nextra) {
    if (f->dev != DEVICE_CPU) return vel_fail(VEL_EINVAL, "%s: toy_flow_save of a GPU model (copy it to a host one)", path);
    char kstr[16];
    snprintf(kstr, sizeof kstr, "%d", f->nfreq);
    st_kv kv[32];
    int n = 0;
    kv[n++] = (st_kv){"time_embed", toy_time_embed_name(f->time_embed)};
    kv[n++] = (st_kv){"time_freqs", kstr};
    for (int i = 0; i < nextra && n < 32; i++) kv[n++] = extra[i];
    return toy_ckpt_save(path, &f->pt, "toy-flow", f->depth, f->width, kv, n);
}

int toy_flow_load(toy_flow **out, const char *path, int max_batch) {
    *out = NULL;
    int depth, width;
    int rc = toy_ckpt_arch(path, "toy-flow", &depth, &width);
    if (rc) return rc;
    // time input: absent = raw (checkpoints written before the option)
    toy_time_embed te = TOY_TIME_RAW;
    int nfreq = 0;
    char val[64];
    if (st_meta_read(path, "time_embed", val, sizeof val) == 0 && toy_time_embed_parse(val, &te))
        return vel_fail(TOY_EMODEL, "%s: unknown time_embed '%s' in metadata", path, val);
    if (te == TOY_TIME_FOURIER) {
        char *end = NULL;
        long k = st_meta_read(path, "time_freqs", val, sizeof val) == 0 ? strtol(val, &end, 10) : -1;
        if (k < 1 || k > TOY_FOURIER_MAX || !end || *end)
            return vel_fail(TOY_EMODEL, "%s: bad or missing time_freqs in metadata", path);
        nfreq = (int)k;
    }
    if ((rc = toy_flow_create(out, depth, width, max_batch, te, nfreq))) return rc;
    if ((rc = toy_ckpt_load_params(path, &(*out)->pt))) toy_flow_destroy(out);
    return rc;
}
