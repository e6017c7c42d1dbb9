// refstats.c: see refstats.h.
#include "metrics/refstats.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "nn/safetensors.h"


static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) { h ^= b[i]; h *= 1099511628211ull; }
    return h;
}

uint64_t featnet_hash(const param_table *pt) {
    uint64_t h = 14695981039346656037ull;
    for (int i = 0; i < pt->count; i++) {
        const param_info *p = &pt->info[i];
        h = fnv(h, p->name, strlen(p->name) + 1);
        for (int d = 0; d < p->ndim; d++) {
            uint8_t le[8];
            for (int k = 0; k < 8; k++) le[k] = (uint8_t)((uint64_t)p->shape[d] >> (8 * k));
            h = fnv(h, le, 8);
        }
        // Float bytes as stored (little-endian hosts only, as the rest of vel).
        h = fnv(h, pt->values + p->offset, sizeof(float) * (size_t)p->numel);
    }
    return h;
}

void featnet_hash_hex(char hex[17], uint64_t h) { snprintf(hex, 17, "%016" PRIx64, h); }

// hi/lo float pair of n doubles.
static int split(float **hi, float **lo, const double *x, int64_t n) {
    *hi = malloc(sizeof(float) * (size_t)n);
    *lo = malloc(sizeof(float) * (size_t)n);
    if (!*hi || !*lo) return VEL_ENOMEM;
    for (int64_t i = 0; i < n; i++) {
        (*hi)[i] = (float)x[i];
        (*lo)[i] = (float)(x[i] - (double)(*hi)[i]);
    }
    return 0;
}

int refstats_save(const char *path, const refstats *r) {
    if (!path || !r || r->D < 1 || !r->mu || !r->sigma || r->count < 1 || r->Ds < 0 ||
        (r->Ds > 0 && (!r->mu_s || !r->sigma_s)) || r->nfeats < 0 || (r->nfeats > 0 && !r->feats) ||
        !r->net[0] || strlen(r->net_hash) != 16)
        return vel_fail(VEL_EINVAL, "refstats_save: incomplete statistics");
    const double *src[4] = {r->mu, r->sigma, r->mu_s, r->sigma_s};
    int64_t n[4] = {r->D, (int64_t)r->D * r->D, r->Ds, (int64_t)r->Ds * r->Ds};
    int64_t shp[4][2] = {{r->D, 0}, {r->D, r->D}, {r->Ds, 0}, {r->Ds, r->Ds}};
    static const char *names[4][2] = {{"mu", "mu.lo"}, {"sigma", "sigma.lo"},
                                      {"mu_s", "mu_s.lo"}, {"sigma_s", "sigma_s.lo"}};
    float *hl[4][2] = {{0}};
    st_tensor_out t[9];
    int nt = 0, rc = 0, parts = r->Ds > 0 ? 4 : 2;
    for (int p = 0; p < parts && !rc; p++) {
        if ((rc = split(&hl[p][0], &hl[p][1], src[p], n[p]))) break;
        for (int h = 0; h < 2; h++)
            t[nt++] = (st_tensor_out){names[p][h], DT_F32, p % 2 ? 2 : 1, shp[p], hl[p][h]};
    }
    int64_t fshape[2] = {r->nfeats, r->D};
    if (r->nfeats > 0) t[nt++] = (st_tensor_out){"feats", DT_F32, 2, fshape, r->feats};
    if (rc) { vel_fail(rc, "refstats_save: out of memory"); goto done; }
    char count[32];
    snprintf(count, sizeof count, "%" PRId64, r->count);
    st_kv meta[4] = {{"format", REFSTATS_FORMAT}, {"feature_net", r->net},
                     {"feature_net_hash", r->net_hash}, {"count", count}};
    rc = st_write(path, t, nt, meta, 4);   // its detail names the file
done:
    for (int p = 0; p < 4; p++) { free(hl[p][0]); free(hl[p][1]); }
    return rc;
}

void refstats_destroy(refstats **pr) {
    if (!pr || !*pr) return;
    refstats *r = *pr;
    free(r->mu); free(r->sigma); free(r->mu_s); free(r->sigma_s); free(r->feats);
    free(r);
    *pr = NULL;
}

// True if tensor name exists with shape (d) or (d, d) by ndim.
static int has_shape(const st_file *f, const char *name, int ndim, int64_t d) {
    int i = st_find(f, name);
    if (i < 0) return 0;
    const st_entry *e = st_get(f, i);
    return e->ndim == ndim && e->shape[0] == d && (ndim == 1 || e->shape[1] == d);
}

// Reads NAME and NAME.lo of shape (d) or (d, d) into a new double array.
// Shapes are checked before anything is allocated, so a file cannot make us
// allocate more than it holds.
static int read_pair(double **out, const st_file *f, const char *name, int ndim, int64_t d,
                     const char *path) {
    int64_t n = ndim == 2 ? d * d : d;
    char lo_name[32];
    snprintf(lo_name, sizeof lo_name, "%s.lo", name);
    if (!has_shape(f, name, ndim, d) || !has_shape(f, lo_name, ndim, d))
        return vel_fail(METRICS_ESTATS, "%s: '%s' and '%s' must both exist with shape %s%lld%s",
                    path, name, lo_name, ndim == 2 ? "(d, d), d = " : "(", (long long)d,
                    ndim == 2 ? "" : ")");
    float *hi = malloc(sizeof(float) * (size_t)n), *lo = malloc(sizeof(float) * (size_t)n);
    *out = malloc(sizeof(double) * (size_t)n);
    int rc = 0;
    if (!hi || !lo || !*out) rc = vel_fail(VEL_ENOMEM, "%s: out of memory", path);
    else if (!(rc = st_read_f32(f, st_find(f, name), hi, n)))
        rc = st_read_f32(f, st_find(f, lo_name), lo, n);
    if (!rc)
        for (int64_t i = 0; i < n; i++) (*out)[i] = (double)hi[i] + (double)lo[i];
    free(hi); free(lo);
    return rc;
}

// Length of the 1-D tensor name, or -1 if absent; METRICS_ESTATS-worthy
// shapes (not 1-D, empty, beyond int) give 0.
static int64_t vec_len(const st_file *f, const char *name) {
    int i = st_find(f, name);
    if (i < 0) return -1;
    const st_entry *e = st_get(f, i);
    if (e->ndim != 1 || e->shape[0] < 1 || e->shape[0] > 65536) return 0;
    return e->shape[0];
}

int refstats_load(refstats **out, const char *path, const char *net, const char *net_hash) {
    *out = NULL;
    if (!path || !net || !net_hash) return vel_fail(VEL_EINVAL, "refstats_load: no network");
    st_file *f = NULL;
    int rc = st_open(&f, path);   // its detail names the file and the problem
    if (rc) return rc;
    refstats *r = calloc(1, sizeof *r);
    if (!r) { st_close(&f); return vel_fail(VEL_ENOMEM, "out of memory"); }
    const char *fmt = st_meta_get(f, "format"), *fn = st_meta_get(f, "feature_net");
    const char *fh = st_meta_get(f, "feature_net_hash"), *cnt = st_meta_get(f, "count");
    char *end = NULL;
    if (!fmt || strcmp(fmt, REFSTATS_FORMAT) || !fn || !fh || !cnt) {
        rc = vel_fail(METRICS_ESTATS,
                  "%s: not a reference statistics file (needs metadata format=%s, "
                  "feature_net, feature_net_hash, count)", path, REFSTATS_FORMAT);
        goto done;
    }
    if (strcmp(fn, net) || strcmp(fh, net_hash)) {
        rc = vel_fail(METRICS_ENET,
                  "%s: statistics of feature network '%s' (weights %s), but this evaluation "
                  "uses '%s' (weights %s); recompute them with --ref-stats", path, fn, fh, net,
                  net_hash);
        goto done;
    }
    errno = 0;
    long long c = strtoll(cnt, &end, 10);
    if (errno || end == cnt || *end || c < 1 || strlen(fn) >= REFSTATS_NET_MAX) {
        rc = vel_fail(METRICS_ESTATS, "%s: bad count '%s' or network name", path, cnt);
        goto done;
    }
    snprintf(r->net, sizeof r->net, "%s", fn);
    snprintf(r->net_hash, sizeof r->net_hash, "%s", fh);
    r->count = c;
    int64_t D = vec_len(f, "mu"), Ds = vec_len(f, "mu_s");
    if (D <= 0 || Ds == 0) {
        rc = vel_fail(METRICS_ESTATS, "%s: 'mu' (and 'mu_s' if present) must be 1-D, "
                  "1..65536 long", path);
        goto done;
    }
    r->D = (int)D;
    if ((rc = read_pair(&r->mu, f, "mu", 1, D, path)) ||
        (rc = read_pair(&r->sigma, f, "sigma", 2, D, path)))
        goto done;
    int known = 4;
    if (Ds > 0) {
        r->Ds = (int)Ds;
        if ((rc = read_pair(&r->mu_s, f, "mu_s", 1, Ds, path)) ||
            (rc = read_pair(&r->sigma_s, f, "sigma_s", 2, Ds, path)))
            goto done;
        known += 4;
    }
    int fi = st_find(f, "feats");
    if (fi >= 0) {
        const st_entry *e = st_get(f, fi);
        if (e->ndim != 2 || e->shape[1] != D || e->shape[0] < 1) {
            rc = vel_fail(METRICS_ESTATS, "%s: 'feats' must be (n, %lld)", path,
                      (long long)D);
            goto done;
        }
        r->nfeats = e->shape[0];
        r->feats = malloc(sizeof(float) * (size_t)e->numel);
        if (!r->feats) { rc = vel_fail(VEL_ENOMEM, "%s: out of memory", path); goto done; }
        if ((rc = st_read_f32(f, fi, r->feats, e->numel))) goto done;
        known++;
    }
    if (st_count(f) != known)
        rc = vel_fail(METRICS_ESTATS, "%s: %d tensors, expected %d (unknown names)", path,
                  st_count(f), known);
done:
    st_close(&f);
    if (rc) refstats_destroy(&r);
    *out = r;
    return rc;
}
