// header.c: decode and validate a bus header (see header.h). Every length and
// count read from the bytes is checked against what is left of the buffer or
// a fixed cap before it is used; nothing here allocates.
#include "bus/header.h"

#include <string.h>

#include "bus/errors.h"
#include "bus/mp.h"
#include "core/base.h"

bus_limits bus_limits_resolve(const bus_limits *lim) {
    bus_limits r = {BUS_DEFAULT_MAX_HEADER, BUS_DEFAULT_MAX_TOTAL, BUS_DEFAULT_MAX_FRAME};
    if (lim && lim->max_header) r.max_header = lim->max_header;
    if (lim && lim->max_total) r.max_total = lim->max_total;
    if (lim && lim->max_frame) r.max_frame = lim->max_frame;
    // Field offsets are stored as uint32 (header.h), and ZMQ_MAXMSGSIZE is an int64.
    if (r.max_header > UINT32_MAX) r.max_header = UINT32_MAX;
    if (r.max_total > (size_t)INT64_MAX) r.max_total = (size_t)INT64_MAX;
    if (r.max_frame > r.max_total) r.max_frame = r.max_total;
    // The header is a frame too.
    if (r.max_frame < r.max_header) r.max_frame = r.max_header;
    return r;
}

static int key_is(const char *k, uint32_t n, const char *lit) {
    return strlen(lit) == n && memcmp(k, lit, n) == 0;
}

// One tensor description: {"name": .., "dtype": .., "shape": [..]}.
static int decode_tensor(mp_cursor *c, const bus_limits *lim, bus_tensor_desc *t) {
    uint32_t n;
    int rc = mp_read_map(c, &n);
    if (rc) return rc;
    int have_name = 0, have_dtype = 0, have_shape = 0;
    for (uint32_t i = 0; i < n; i++) {
        const char *k; uint32_t kl;
        if ((rc = mp_read_str(c, &k, &kl))) return rc;
        if (key_is(k, kl, "name")) {
            const char *s; uint32_t sl;
            if (have_name++) return BUS_EFIELD;
            if ((rc = mp_read_str(c, &s, &sl))) return rc;
            if (sl == 0 || sl > BUS_NAME_MAX || memchr(s, 0, sl)) return BUS_ENAME;
            memcpy(t->name, s, sl);
            t->name[sl] = 0;
        } else if (key_is(k, kl, "dtype")) {
            const char *s; uint32_t sl;
            if (have_dtype++) return BUS_EFIELD;
            if ((rc = mp_read_str(c, &s, &sl))) return rc;
            if (dtype_from_name(s, sl, &t->dtype)) return BUS_EDTYPE;
        } else if (key_is(k, kl, "shape")) {
            uint32_t nd;
            if (have_shape++) return BUS_EFIELD;
            if ((rc = mp_read_array(c, &nd))) return rc;
            if (nd > TENSOR_MAX_DIMS) return BUS_ERANK;
            t->ndim = (int)nd;
            for (uint32_t d = 0; d < nd; d++) {
                int64_t v;
                if ((rc = mp_read_i64(c, &v))) {
                    // An integer above INT64_MAX is a shape problem, not a type one.
                    uint64_t u;
                    if (rc == BUS_EFIELD && mp_read_u64(c, &u) == 0) return BUS_ESHAPE;
                    return rc;
                }
                t->shape[d] = v;
            }
        } else {
            return BUS_EFIELD; // a tensor description has exactly these keys
        }
    }
    if (!have_name || !have_dtype || !have_shape) return BUS_EFIELD;
    int64_t numel = shape_numel_checked(t->ndim, t->shape);
    if (numel < 0) return BUS_ESHAPE;
    size_t es = dtype_size(t->dtype);
    if ((uint64_t)numel > lim->max_frame / es) return BUS_ETOOBIG;
    t->nbytes = (size_t)numel * es;
    return 0;
}

int bus_header_decode(const void *buf, size_t len, const size_t *frame_len, int nframes,
                      const bus_limits *lim_in, bus_header *h) {
    bus_limits lim = bus_limits_resolve(lim_in);
    if (len == 0 || len > lim.max_header) return BUS_EHDRSIZE;
    if (nframes < 0 || nframes > BUS_MAX_TENSORS) return BUS_EFRAMES;
    size_t total = len;
    for (int i = 0; i < nframes; i++) {
        if (frame_len[i] > lim.max_frame || frame_len[i] > lim.max_total - total) return BUS_ETOOBIG;
        total += frame_len[i];
    }

    memset(h, 0, offsetof(bus_header, tensors));
    h->nfields = 0;
    const uint8_t *base = buf;
    mp_cursor c = mp_cursor_make(buf, len);
    uint32_t n;
    int rc = mp_read_map(&c, &n);
    if (rc) return rc == BUS_EFIELD ? BUS_EMSGPACK : rc; // frame 0 must be a map
    int have_v = 0, have_kind = 0, have_id = 0, have_src = 0, have_tensors = 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *pair = c.p;
        const char *k; uint32_t kl;
        if ((rc = mp_read_str(&c, &k, &kl))) return rc;
        if (key_is(k, kl, "v")) {
            uint64_t v;
            if (have_v++) return BUS_EFIELD;
            if ((rc = mp_read_u64(&c, &v))) return rc;
            if (v != BUS_VERSION) return BUS_EVERSION;
            h->version = (uint32_t)v;
        } else if (key_is(k, kl, "kind")) {
            const char *s; uint32_t sl;
            if (have_kind++) return BUS_EFIELD;
            if ((rc = mp_read_str(&c, &s, &sl))) return rc;
            if (sl == 0 || sl > BUS_KIND_MAX || memchr(s, 0, sl)) return BUS_ENAME;
            memcpy(h->kind, s, sl);
            h->kind[sl] = 0;
        } else if (key_is(k, kl, "id")) {
            if (have_id++) return BUS_EFIELD;
            if ((rc = mp_read_u64(&c, &h->id))) return rc;
        } else if (key_is(k, kl, "src")) {
            uint64_t v;
            if (have_src++) return BUS_EFIELD;
            if ((rc = mp_read_u64(&c, &v))) return rc;
            if (v > UINT32_MAX) return BUS_EFIELD;
            h->src = (uint32_t)v;
        } else if (key_is(k, kl, "tensors")) {
            uint32_t nt;
            if (have_tensors++) return BUS_EFIELD;
            if ((rc = mp_read_array(&c, &nt))) return rc;
            if (nt > BUS_MAX_TENSORS) return BUS_EFRAMES;
            for (uint32_t t = 0; t < nt; t++) {
                memset(&h->tensors[t], 0, sizeof h->tensors[t]);
                if ((rc = decode_tensor(&c, &lim, &h->tensors[t]))) return rc;
                for (uint32_t u = 0; u < t; u++)
                    if (strcmp(h->tensors[u].name, h->tensors[t].name) == 0) return BUS_ENAME;
            }
            h->ntensors = (int)nt;
        } else {
            if (kl == 0 || kl > BUS_NAME_MAX) return BUS_ENAME;
            if (h->nfields == BUS_MAX_FIELDS) return BUS_EFIELD;
            for (int f = 0; f < h->nfields; f++) {
                const bus_field_ref *r = &h->fields[f];
                if (r->key_len == kl && memcmp(base + r->key_off, k, kl) == 0) return BUS_EFIELD;
            }
            bus_field_ref *r = &h->fields[h->nfields];
            r->pair_off = (uint32_t)(pair - base);
            r->key_off = (uint32_t)((const uint8_t *)k - base);
            r->key_len = kl;
            r->val_off = (uint32_t)(c.p - base);
            if ((rc = mp_skip(&c))) return rc;
            r->val_end = (uint32_t)(c.p - base);
            h->nfields++;
        }
    }
    if (mp_left(&c) != 0) return BUS_EMSGPACK;
    if (!have_v) return BUS_EVERSION;
    if (!have_kind || !have_id) return BUS_EFIELD;
    if (h->ntensors != nframes) return BUS_EFRAMES;
    for (int t = 0; t < nframes; t++)
        if (h->tensors[t].nbytes != frame_len[t]) return BUS_ESIZE;
    return 0;
}

int bus_field_find(const uint8_t *base, const bus_header *h, const char *key) {
    size_t kl = strlen(key);
    for (int f = 0; f < h->nfields; f++) {
        const bus_field_ref *r = &h->fields[f];
        if (r->key_len == kl && memcmp(base + r->key_off, key, kl) == 0) return f;
    }
    return VEL_ENOTFOUND;
}

// Cursor over the value of `key`, or an error code.
static int value_of(const uint8_t *base, const bus_header *h, const char *key, mp_cursor *c) {
    int f = bus_field_find(base, h, key);
    if (f < 0) return f;
    *c = mp_cursor_make(base + h->fields[f].val_off, h->fields[f].val_end - h->fields[f].val_off);
    return 0;
}

int bus_field_int(const uint8_t *base, const bus_header *h, const char *key, int64_t *v) {
    mp_cursor c;
    int rc = value_of(base, h, key, &c);
    return rc ? rc : mp_read_i64(&c, v);
}

int bus_field_uint(const uint8_t *base, const bus_header *h, const char *key, uint64_t *v) {
    mp_cursor c;
    int rc = value_of(base, h, key, &c);
    return rc ? rc : mp_read_u64(&c, v);
}

int bus_field_float(const uint8_t *base, const bus_header *h, const char *key, double *v) {
    mp_cursor c;
    int rc = value_of(base, h, key, &c);
    return rc ? rc : mp_read_f64(&c, v);
}

int bus_field_bool(const uint8_t *base, const bus_header *h, const char *key, int *v) {
    mp_cursor c;
    int rc = value_of(base, h, key, &c);
    return rc ? rc : mp_read_bool(&c, v);
}

int bus_field_str(const uint8_t *base, const bus_header *h, const char *key, char *buf, size_t cap) {
    mp_cursor c;
    int rc = value_of(base, h, key, &c);
    if (rc) return rc;
    const char *s; uint32_t n;
    if ((rc = mp_read_str(&c, &s, &n))) return rc;
    if ((size_t)n + 1 > cap) return VEL_ERANGE;
    memcpy(buf, s, n);
    buf[n] = 0;
    return 0;
}

int bus_field_ints(const uint8_t *base, const bus_header *h, const char *key, int64_t *out,
                   size_t cap, size_t *n) {
    mp_cursor c;
    int rc = value_of(base, h, key, &c);
    if (rc) return rc;
    uint32_t cnt;
    if ((rc = mp_read_array(&c, &cnt))) return rc;
    *n = cnt;
    if (cnt > cap) return VEL_ERANGE;
    for (uint32_t i = 0; i < cnt; i++)
        if ((rc = mp_read_i64(&c, &out[i]))) return rc;
    return 0;
}
