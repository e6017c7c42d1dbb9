// msg.c: building and reading bus messages (no sockets here; see socket.c).
// Extra fields of a built message are packed into m->xbuf as they are set,
// with the same field refs a received header has, so the readers and
// bus_msg_new_reply work the same on both.
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "bus/internal.h"
#include "core/base.h"

const uint8_t *bus_msg_base(const bus_msg *m) {
    return m->received ? (const uint8_t *)zmq_msg_data((zmq_msg_t *)&m->frames[0]) : m->xbuf;
}

static int name_ok(const char *s, size_t max) {
    size_t n = s ? strlen(s) : 0;
    return n > 0 && n <= max;
}

int bus_msg_new(bus_msg **out, const char *kind, uint32_t src, uint64_t id) {
    *out = NULL;
    if (!name_ok(kind, BUS_KIND_MAX)) return BUS_ENAME;
    bus_msg *m = calloc(1, sizeof *m);
    if (!m) return VEL_ENOMEM;
    m->h.version = BUS_VERSION;
    strcpy(m->h.kind, kind);
    m->h.src = src;
    m->h.id = id;
    *out = m;
    return 0;
}

void bus_msg_destroy(bus_msg **mp) {
    if (!mp || !*mp) return;
    bus_msg *m = *mp;
    for (int i = 0; i < m->nframes; i++) zmq_msg_close(&m->frames[i]);
    for (int i = 0; i < BUS_MAX_TENSORS; i++) {
        free(m->aligned[i]);
        if (m->fn[i]) m->fn[i](m->data[i], m->hint[i]);
    }
    free(m->xbuf);
    free(m);
    *mp = NULL;
}

// ---- extra fields ---------------------------------------------------------

static int xbuf_write(void *data, const char *buf, size_t len) {
    bus_msg *m = data;
    if (len > m->xcap - m->xlen) {
        size_t cap = m->xcap ? m->xcap : 256;
        while (cap - m->xlen < len) cap *= 2;
        if (cap > BUS_DEFAULT_MAX_HEADER) return -1; // extras must fit a header
        uint8_t *p = realloc(m->xbuf, cap);
        if (!p) return -1;
        m->xbuf = p;
        m->xcap = cap;
    }
    memcpy(m->xbuf + m->xlen, buf, len);
    m->xlen += len;
    return 0;
}

static int reserved(const char *k) {
    return !strcmp(k, "v") || !strcmp(k, "kind") || !strcmp(k, "id") || !strcmp(k, "src") ||
           !strcmp(k, "tensors");
}

// Starts a field: checks the key, packs it, opens a ref. The value is packed
// by the caller, then field_end closes the ref (or rolls back on failure).
static int field_begin(bus_msg *m, msgpack_packer *pk, const char *key) {
    if (m->received) return VEL_EINVAL;
    if (!name_ok(key, BUS_NAME_MAX) || reserved(key)) return BUS_ENAME;
    if (m->h.nfields == BUS_MAX_FIELDS) return VEL_ERANGE;
    if (bus_field_find(m->xbuf, &m->h, key) >= 0) return BUS_ENAME;
    msgpack_packer_init(pk, m, xbuf_write);
    bus_field_ref *r = &m->h.fields[m->h.nfields];
    size_t kl = strlen(key);
    r->pair_off = (uint32_t)m->xlen;
    if (msgpack_pack_str(pk, kl) || msgpack_pack_str_body(pk, key, kl)) {
        m->xlen = r->pair_off;
        return VEL_ENOMEM;
    }
    r->key_off = (uint32_t)(m->xlen - kl);
    r->key_len = (uint32_t)kl;
    r->val_off = (uint32_t)m->xlen;
    return 0;
}

static int field_end(bus_msg *m, int pack_rc) {
    bus_field_ref *r = &m->h.fields[m->h.nfields];
    if (pack_rc) {
        m->xlen = r->pair_off;
        return VEL_ENOMEM;
    }
    r->val_end = (uint32_t)m->xlen;
    m->h.nfields++;
    return 0;
}

int bus_msg_set_int(bus_msg *m, const char *key, int64_t v) {
    msgpack_packer pk;
    int rc = field_begin(m, &pk, key);
    return rc ? rc : field_end(m, msgpack_pack_int64(&pk, v));
}

int bus_msg_set_uint(bus_msg *m, const char *key, uint64_t v) {
    msgpack_packer pk;
    int rc = field_begin(m, &pk, key);
    return rc ? rc : field_end(m, msgpack_pack_uint64(&pk, v));
}

int bus_msg_set_float(bus_msg *m, const char *key, double v) {
    msgpack_packer pk;
    int rc = field_begin(m, &pk, key);
    return rc ? rc : field_end(m, msgpack_pack_double(&pk, v));
}

int bus_msg_set_bool(bus_msg *m, const char *key, int v) {
    msgpack_packer pk;
    int rc = field_begin(m, &pk, key);
    return rc ? rc : field_end(m, v ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
}

int bus_msg_set_str(bus_msg *m, const char *key, const char *v) {
    if (!v) return VEL_EINVAL;
    msgpack_packer pk;
    int rc = field_begin(m, &pk, key);
    if (rc) return rc;
    size_t n = strlen(v);
    return field_end(m, msgpack_pack_str(&pk, n) || msgpack_pack_str_body(&pk, v, n));
}

int bus_msg_set_ints(bus_msg *m, const char *key, const int64_t *v, size_t n) {
    if (n > UINT32_MAX || (n && !v)) return VEL_EINVAL;
    msgpack_packer pk;
    int rc = field_begin(m, &pk, key);
    if (rc) return rc;
    int prc = msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n && !prc; i++) prc = msgpack_pack_int64(&pk, v[i]);
    return field_end(m, prc);
}

int bus_msg_new_reply(bus_msg **out, const char *kind, const bus_msg *in) {
    int rc = bus_msg_new(out, kind, in->h.src, in->h.id);
    if (rc) return rc;
    bus_msg *m = *out;
    const uint8_t *base = bus_msg_base(in);
    for (int f = 0; f < in->h.nfields; f++) {
        const bus_field_ref *r = &in->h.fields[f];
        uint32_t delta = (uint32_t)m->xlen - r->pair_off;
        if (xbuf_write(m, (const char *)base + r->pair_off, r->val_end - r->pair_off)) {
            bus_msg_destroy(out);
            return VEL_ENOMEM;
        }
        bus_field_ref *d = &m->h.fields[f];
        d->pair_off = r->pair_off + delta;
        d->key_off = r->key_off + delta;
        d->key_len = r->key_len;
        d->val_off = r->val_off + delta;
        d->val_end = r->val_end + delta;
    }
    m->h.nfields = in->h.nfields;
    return 0;
}

// ---- tensors --------------------------------------------------------------

static void free_cb(void *data, void *hint) {
    (void)hint;
    free(data);
}

static int add_desc(bus_msg *m, const char *name, const tensor *t) {
    if (m->received) return VEL_EINVAL;
    if (!name_ok(name, BUS_NAME_MAX)) return BUS_ENAME;
    if (m->h.ntensors == BUS_MAX_TENSORS) return VEL_ERANGE;
    if ((unsigned)t->dtype >= DT_COUNT || t->ndim < 0 || t->ndim > TENSOR_MAX_DIMS) return VEL_EINVAL;
    int64_t numel = shape_numel_checked(t->ndim, t->shape);
    if (numel < 0 || !tensor_is_contiguous(t) || (numel > 0 && !t->data)) return VEL_EINVAL;
    for (int i = 0; i < m->h.ntensors; i++)
        if (!strcmp(m->h.tensors[i].name, name)) return BUS_ENAME;
    bus_tensor_desc *d = &m->h.tensors[m->h.ntensors];
    memset(d, 0, sizeof *d);
    strcpy(d->name, name);
    d->dtype = t->dtype;
    d->ndim = t->ndim;
    memcpy(d->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    d->nbytes = tensor_nbytes(t);
    return 0;
}

int bus_msg_add_tensor(bus_msg *m, const char *name, const tensor *t) {
    int rc = add_desc(m, name, t);
    if (rc) return rc;
    int i = m->h.ntensors;
    size_t n = m->h.tensors[i].nbytes;
    void *p = malloc(n ? n : 1);
    if (!p) return VEL_ENOMEM;
    if (n) memcpy(p, t->data, n);
    m->data[i] = p;
    m->fn[i] = free_cb;
    m->hint[i] = NULL;
    m->h.ntensors++;
    return 0;
}

int bus_msg_add_tensor_zc(bus_msg *m, const char *name, const tensor *t, bus_free_fn *fn,
                          void *hint) {
    if (!fn) return VEL_EINVAL;
    int rc = add_desc(m, name, t);
    if (rc) return rc;
    int i = m->h.ntensors;
    m->data[i] = t->data;
    m->fn[i] = fn;
    m->hint[i] = hint;
    m->h.ntensors++;
    return 0;
}

// ---- readers --------------------------------------------------------------

const char *bus_msg_kind(const bus_msg *m) { return m->h.kind; }
uint64_t bus_msg_id(const bus_msg *m) { return m->h.id; }
uint32_t bus_msg_src(const bus_msg *m) { return m->h.src; }
int bus_msg_is(const bus_msg *m, const char *kind) { return strcmp(m->h.kind, kind) == 0; }
int bus_msg_ntensors(const bus_msg *m) { return m->h.ntensors; }

int bus_msg_tensor(const bus_msg *m, int i, tensor *t, const char **name) {
    if (i < 0 || i >= m->h.ntensors) return VEL_ERANGE;
    const bus_tensor_desc *d = &m->h.tensors[i];
    *t = tensor_view(d->dtype, m->data[i], d->ndim, d->shape);
    if (name) *name = d->name;
    return 0;
}

int bus_msg_find(const bus_msg *m, const char *name, tensor *t) {
    for (int i = 0; i < m->h.ntensors; i++)
        if (!strcmp(m->h.tensors[i].name, name)) return bus_msg_tensor(m, i, t, NULL);
    return VEL_ENOTFOUND;
}

int bus_msg_get_int(const bus_msg *m, const char *key, int64_t *v) {
    return bus_field_int(bus_msg_base(m), &m->h, key, v);
}
int bus_msg_get_uint(const bus_msg *m, const char *key, uint64_t *v) {
    return bus_field_uint(bus_msg_base(m), &m->h, key, v);
}
int bus_msg_get_float(const bus_msg *m, const char *key, double *v) {
    return bus_field_float(bus_msg_base(m), &m->h, key, v);
}
int bus_msg_get_bool(const bus_msg *m, const char *key, int *v) {
    return bus_field_bool(bus_msg_base(m), &m->h, key, v);
}
int bus_msg_get_str(const bus_msg *m, const char *key, char *buf, size_t cap) {
    return bus_field_str(bus_msg_base(m), &m->h, key, buf, cap);
}
int bus_msg_get_ints(const bus_msg *m, const char *key, int64_t *out, size_t cap, size_t *n) {
    return bus_field_ints(bus_msg_base(m), &m->h, key, out, cap, n);
}

// ---- header encoding ------------------------------------------------------

typedef struct { uint8_t *p; size_t len, cap; } growbuf;

static int grow_write(void *data, const char *buf, size_t len) {
    growbuf *g = data;
    if (len > g->cap - g->len) {
        size_t cap = g->cap ? g->cap : 256;
        while (cap - g->len < len) cap *= 2;
        uint8_t *p = realloc(g->p, cap);
        if (!p) return -1;
        g->p = p;
        g->cap = cap;
    }
    memcpy(g->p + g->len, buf, len);
    g->len += len;
    return 0;
}

static int pack_cstr(msgpack_packer *pk, const char *s) {
    size_t n = strlen(s);
    return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n);
}

int bus_msg_encode_header(const bus_msg *m, uint8_t **buf, size_t *len) {
    growbuf g = {0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &g, grow_write);
    const bus_header *h = &m->h;
    int rc = msgpack_pack_map(&pk, 5 + (size_t)h->nfields);
    rc = rc || pack_cstr(&pk, "v") || msgpack_pack_uint32(&pk, BUS_VERSION);
    rc = rc || pack_cstr(&pk, "kind") || pack_cstr(&pk, h->kind);
    rc = rc || pack_cstr(&pk, "id") || msgpack_pack_uint64(&pk, h->id);
    rc = rc || pack_cstr(&pk, "src") || msgpack_pack_uint32(&pk, h->src);
    rc = rc || pack_cstr(&pk, "tensors") || msgpack_pack_array(&pk, (size_t)h->ntensors);
    for (int i = 0; i < h->ntensors && !rc; i++) {
        const bus_tensor_desc *d = &h->tensors[i];
        rc = msgpack_pack_map(&pk, 3) || pack_cstr(&pk, "name") || pack_cstr(&pk, d->name) ||
             pack_cstr(&pk, "dtype") || pack_cstr(&pk, dtype_name(d->dtype)) ||
             pack_cstr(&pk, "shape") || msgpack_pack_array(&pk, (size_t)d->ndim);
        for (int k = 0; k < d->ndim && !rc; k++) rc = msgpack_pack_int64(&pk, d->shape[k]);
    }
    const uint8_t *base = bus_msg_base(m);
    for (int f = 0; f < h->nfields && !rc; f++) {
        const bus_field_ref *r = &h->fields[f];
        rc = grow_write(&g, (const char *)base + r->pair_off, r->val_end - r->pair_off);
    }
    if (rc) {
        free(g.p);
        return VEL_ENOMEM;
    }
    *buf = g.p;
    *len = g.len;
    return 0;
}
