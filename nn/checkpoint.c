// checkpoint.c: model + optimizer + EMA checkpoints (see checkpoint.h).
#include "nn/checkpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"

#define NAME_CAP (PARAM_NAME_MAX + 32)

static char *join(const char *prefix, const char *suffix) {
    size_t n = strlen(prefix) + strlen(suffix) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s", prefix, suffix);
    return s;
}

// Decimal u64 with nothing else around it.
static int parse_u64(const char *s, uint64_t *out) {
    if (!s || *s < '0' || *s > '9') return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

// The optimizer-file tensor names of parameter i, in a fixed order:
// names[0..k) with their state buffers; returns k.
static int state_names(char names[3][NAME_CAP], float *bufs[3], const param_table *pt, int i,
                       const optim *o, const ema *e) {
    const char *nm = pt->info[i].name;
    int k = 0;
    if (o && optim_uses_muon(o, i)) {
        snprintf(names[k], NAME_CAP, "momentum_buffer.%s", nm);
        bufs[k++] = optim_exp_avg(o, pt, i);
    } else if (o) {
        snprintf(names[k], NAME_CAP, "exp_avg.%s", nm);
        bufs[k++] = optim_exp_avg(o, pt, i);
        snprintf(names[k], NAME_CAP, "exp_avg_sq.%s", nm);
        bufs[k++] = optim_exp_avg_sq(o, pt, i);
    }
    if (e) {
        snprintf(names[k], NAME_CAP, "ema.%s", nm);
        bufs[k++] = ema_param(e, pt, i);
    }
    return k;
}

int ckpt_save(const char *prefix, const param_table *pt, const optim *o, const ema *e,
              const ckpt_state *st, const st_kv *extra, int nextra) {
    if (!pt->values || !st || nextra < 0) return vel_fail(VEL_EINVAL, "ckpt_save: bad arguments");
    if (o) CHECK(o->total == pt->total && o->count == pt->count);
    if (e) CHECK(e->total == pt->total);
    char *wpath = join(prefix, ".safetensors"), *opath = join(prefix, ".optim.safetensors");
    char nums[5][32];
    snprintf(nums[0], sizeof nums[0], "%llu", (unsigned long long)st->step);
    snprintf(nums[1], sizeof nums[1], "%llu", (unsigned long long)st->rng_seed);
    snprintf(nums[2], sizeof nums[2], "%llu", (unsigned long long)st->rng_offset);
    snprintf(nums[3], sizeof nums[3], "%lld", (long long)(o ? o->step : 0));
    st_kv *wmeta = malloc(((size_t)nextra + 2) * sizeof *wmeta);
    int n_state = pt->count * 3;
    st_tensor_out *t = malloc(((size_t)n_state + 1) * sizeof *t);
    char (*names)[NAME_CAP] = malloc(((size_t)n_state + 1) * NAME_CAP);
    int rc = 0;
    if (!wpath || !opath || !wmeta || !t || !names) {
        rc = vel_fail(VEL_ENOMEM, "out of memory");
        goto out;
    }
    if (o || e) {
        int n = 0;
        for (int i = 0; i < pt->count; i++) {
            char nm[3][NAME_CAP];
            float *bufs[3];
            int k = state_names(nm, bufs, pt, i, o, e);
            for (int j = 0; j < k; j++, n++) {
                memcpy(names[n], nm[j], NAME_CAP);
                t[n] = (st_tensor_out){names[n], DT_F32, pt->info[i].ndim, pt->info[i].shape, bufs[j]};
            }
        }
        char hyper[6][32];
        const optim_config *c = o ? &o->cfg : NULL;
        snprintf(hyper[0], 32, "%.17g", c ? c->beta1 : 0.0);
        snprintf(hyper[1], 32, "%.17g", c ? c->beta2 : 0.0);
        snprintf(hyper[2], 32, "%.17g", c ? c->eps : 0.0);
        snprintf(hyper[3], 32, "%.17g", c ? c->weight_decay : 0.0);
        snprintf(hyper[4], 32, "%.17g", c ? c->muon_momentum : 0.0);
        snprintf(hyper[5], 32, "%.17g", c ? c->muon_weight_decay : 0.0);
        st_kv ometa[] = {
            {"optim.kind", o ? optim_kind_name(o->cfg.kind) : "none"},
            {"optim.step", nums[3]}, {"train.step", nums[0]},
            {"rng.seed", nums[1]}, {"rng.offset", nums[2]},
            {"ema", e ? "1" : "0"},
            {"optim.beta1", hyper[0]}, {"optim.beta2", hyper[1]}, {"optim.eps", hyper[2]},
            {"optim.weight_decay", hyper[3]}, {"optim.muon_momentum", hyper[4]},
            {"optim.muon_weight_decay", hyper[5]},
        };
        rc = st_write(opath, t, n, ometa, (int)(sizeof ometa / sizeof ometa[0]));
        if (rc != 0) goto out;
    }
    wmeta[0] = (st_kv){"format", "pt"};
    wmeta[1] = (st_kv){"train.step", nums[0]};
    for (int i = 0; i < nextra; i++) wmeta[2 + i] = extra[i];
    rc = st_save_params(wpath, pt, DT_F32, wmeta, nextra + 2);
out:
    free(wpath);
    free(opath);
    free(wmeta);
    free(t);
    free(names);
    return rc;
}

// Checks the optimizer file against the caller's table/optimizer/EMA
// without changing anything.
static int check_optim_file(const st_file *f, const char *path, const param_table *pt,
                            const optim *o, const ema *e, uint64_t wstep) {
    const char *kind = st_meta_get(f, "optim.kind");
    const char *want = o ? optim_kind_name(o->cfg.kind) : "none";
    if (!kind) return vel_fail(CKPT_EMETA, "%s: no 'optim.kind' in metadata", path);
    if (strcmp(kind, want) != 0) {
        return vel_fail(CKPT_EMETA, "%s: optimizer state is '%.20s', the run uses '%s'", path,
                    kind, want);
    }
    uint64_t ostep, v;
    if (parse_u64(st_meta_get(f, "train.step"), &ostep) != 0 ||
        parse_u64(st_meta_get(f, "optim.step"), &v) != 0 ||
        parse_u64(st_meta_get(f, "rng.seed"), &v) != 0 ||
        parse_u64(st_meta_get(f, "rng.offset"), &v) != 0)
        return vel_fail(CKPT_EMETA, "%s: metadata needs decimal %s", path,
                    "'train.step', 'optim.step', 'rng.seed', 'rng.offset'");
    if (ostep != wstep)
        return vel_fail(CKPT_EMETA,
                    "%s: train.step %llu differs from the weights file's %llu (interrupted save?)",
                    path, (unsigned long long)ostep, (unsigned long long)wstep);
    const char *has_ema = st_meta_get(f, "ema");
    if (e && (!has_ema || strcmp(has_ema, "1") != 0))
        return vel_fail(CKPT_EMISSING, "%s: the run has an EMA but the checkpoint does not", path);
    int expected = 0;
    for (int i = 0; i < pt->count; i++) {
        char nm[3][NAME_CAP];
        float *bufs[3];
        int k = state_names(nm, bufs, pt, i, o, e);
        for (int j = 0; j < k; j++) {
            int idx = st_find(f, nm[j]);
            if (idx < 0) return vel_fail(CKPT_EMISSING, "%s: tensor '%s' missing", path, nm[j]);
            const st_entry *en = st_get(f, idx);
            int same = en->ndim == pt->info[i].ndim && en->dtype == DT_F32;
            for (int d = 0; same && d < en->ndim; d++) same = en->shape[d] == pt->info[i].shape[d];
            if (!same)
                return vel_fail(CKPT_ESHAPE, "%s: tensor '%s' is not F32 of the parameter's shape",
                            path, nm[j]);
        }
        expected += k;
    }
    // Names are unique (checked on open), so equal counts mean no extras, unless
    // an EMA was saved but the caller has none: that is allowed (ignored).
    if (st_count(f) != expected && !(!e && has_ema && strcmp(has_ema, "1") == 0 &&
                                     st_count(f) == expected + pt->count))
        return vel_fail(CKPT_EEXTRA, "%s: file has optimizer tensors this run does not know", path);
    return 0;
}

int ckpt_load(const char *prefix, param_table *pt, optim *o, ema *e, ckpt_state *st) {
    if (!pt->values || (o && !st)) return vel_fail(VEL_EINVAL, "ckpt_load: bad arguments (an optimizer needs a ckpt_state)");
    if (o) CHECK(o->total == pt->total && o->count == pt->count);
    if (e) CHECK(e->total == pt->total);
    char *wpath = join(prefix, ".safetensors"), *opath = join(prefix, ".optim.safetensors");
    st_file *wf = NULL, *of = NULL;
    int rc = 0;
    if (!wpath || !opath) {
        rc = vel_fail(VEL_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = st_open(&wf, wpath)) != 0) goto out;
    uint64_t wstep = 0;
    if (parse_u64(st_meta_get(wf, "train.step"), &wstep) != 0) {
        rc = vel_fail(CKPT_EMETA, "%s: metadata needs a decimal '%s'", wpath, "train.step");
        goto out;
    }
    st_close(&wf);
    if (o || e) {
        if ((rc = st_open(&of, opath)) != 0) goto out;
        if ((rc = check_optim_file(of, opath, pt, o, e, wstep)) != 0) goto out;
    }
    // Everything checked; st_load_params checks the weights before writing.
    if ((rc = st_load_params(wpath, pt)) != 0) goto out;
    if (of) {
        for (int i = 0; i < pt->count && rc == 0; i++) {
            char nm[3][NAME_CAP];
            float *bufs[3];
            int k = state_names(nm, bufs, pt, i, o, e);
            for (int j = 0; j < k && rc == 0; j++)
                rc = st_read_f32(of, st_find(of, nm[j]), bufs[j], pt->info[i].numel);
            if (o && optim_uses_muon(o, i))   // unused half of the state stays zero
                memset(optim_exp_avg_sq(o, pt, i), 0, (size_t)pt->info[i].numel * sizeof(float));
        }
        if (rc != 0) goto out;
        uint64_t ostep = 0;
        if (o) {
            parse_u64(st_meta_get(of, "optim.step"), &ostep);
            o->step = (int64_t)ostep;
        }
    }
    if (st) {
        st->step = wstep;
        if (of) {
            parse_u64(st_meta_get(of, "rng.seed"), &st->rng_seed);
            parse_u64(st_meta_get(of, "rng.offset"), &st->rng_offset);
        }
    }
out:
    st_close(&wf);
    st_close(&of);
    free(wpath);
    free(opath);
    return rc;
}

int ckpt_save_ema_weights(const char *path, const param_table *pt, const ema *e, dtype_t dtype,
                          const st_kv *meta, int nmeta) {
    if (!pt->values || !e || nmeta < 0) return vel_fail(VEL_EINVAL, "ckpt_save_ema_weights: bad arguments");
    CHECK(e->total == pt->total);
    st_tensor_out *t = malloc(((size_t)pt->count + 1) * sizeof *t);
    st_kv *m = malloc(((size_t)nmeta + 1) * sizeof *m);
    if (!t || !m) {
        free(t);
        free(m);
        return vel_fail(VEL_ENOMEM, "out of memory");
    }
    for (int i = 0; i < pt->count; i++) {
        const param_info *p = &pt->info[i];
        t[i] = (st_tensor_out){p->name, dtype, p->ndim, p->shape, e->shadow + p->offset};
    }
    m[0] = (st_kv){"format", "pt"};
    for (int i = 0; i < nmeta; i++) m[1 + i] = meta[i];
    int rc = st_write(path, t, pt->count, m, nmeta + 1);
    free(t);
    free(m);
    return rc;
}

int ckpt_file_hash(const char *path, char out[17]) {
    FILE *f = fopen(path, "rb");
    if (!f) return VEL_EIO;
    uint64_t h = 1469598103934665603ull;   // the project's basis (checkpoint.h)
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
