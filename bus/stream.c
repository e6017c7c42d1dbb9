// stream.c: eos messages and accounting, the sink's duplicate filter (an
// open-addressing hash set of (src, id)), and the acker.
#include <stdlib.h>
#include <string.h>

#include "bus/internal.h"
#include "core/base.h"

int bus_send_eos(bus_socket *s, uint32_t producer, int timeout_ms) {
    bus_msg *m;
    int rc = bus_msg_new(&m, "eos", producer, 0);
    if (rc) return rc;
    rc = bus_send(s, &m, timeout_ms);
    bus_msg_destroy(&m);
    return rc;
}

// ---- eos -------------------------------------------------------------------

struct bus_eos {
    int n, seen;
    unsigned char ended[];
};

int bus_eos_new(bus_eos **out, int nproducers) {
    *out = NULL;
    if (nproducers < 0) return VEL_EINVAL;
    bus_eos *e = calloc(1, sizeof *e + (size_t)nproducers);
    if (!e) return VEL_ENOMEM;
    e->n = nproducers;
    *out = e;
    return 0;
}

int bus_eos_note(bus_eos *e, const bus_msg *m) {
    if (!bus_msg_is(m, "eos")) return 0;
    uint32_t p = bus_msg_src(m);
    if (p >= (uint32_t)e->n) return VEL_ERANGE;
    if (!e->ended[p]) { e->ended[p] = 1; e->seen++; }
    return 1;
}

int bus_eos_done(const bus_eos *e) { return e->seen == e->n; }
int bus_eos_count(const bus_eos *e) { return e->seen; }
int bus_eos_total(const bus_eos *e) { return e->n; }
int bus_eos_ended(const bus_eos *e, uint32_t producer) {
    return producer < (uint32_t)e->n && e->ended[producer];
}

void bus_eos_destroy(bus_eos **e) {
    if (!e) return;
    free(*e);
    *e = NULL;
}

// ---- dedupe ----------------------------------------------------------------

typedef struct { uint64_t id; uint64_t val; uint32_t src; uint32_t used; } slot;

struct bus_dedupe {
    slot *t;
    size_t cap, n;   // cap is a power of two; load kept <= 1/2
};

static uint64_t mix(uint32_t src, uint64_t id) {
    uint64_t x = id ^ ((uint64_t)src * 0x9e3779b97f4a7c15ull);
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27; x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static slot *find(const bus_dedupe *d, uint32_t src, uint64_t id) {
    size_t i = mix(src, id) & (d->cap - 1);
    while (d->t[i].used && !(d->t[i].src == src && d->t[i].id == id)) i = (i + 1) & (d->cap - 1);
    return &d->t[i];
}

int bus_dedupe_new(bus_dedupe **out) {
    *out = NULL;
    bus_dedupe *d = calloc(1, sizeof *d);
    if (!d) return VEL_ENOMEM;
    d->cap = 64;
    d->t = calloc(d->cap, sizeof *d->t);
    if (!d->t) { free(d); return VEL_ENOMEM; }
    *out = d;
    return 0;
}

int bus_dedupe_has(const bus_dedupe *d, uint32_t src, uint64_t id) {
    return find(d, src, id)->used;
}

int bus_dedupe_add(bus_dedupe *d, uint32_t src, uint64_t id) {
    return bus_dedupe_put(d, src, id, 0);
}

int bus_dedupe_get(const bus_dedupe *d, uint32_t src, uint64_t id, uint64_t *val) {
    const slot *e = find(d, src, id);
    if (!e->used) return 0;
    *val = e->val;
    return 1;
}

int bus_dedupe_put(bus_dedupe *d, uint32_t src, uint64_t id, uint64_t val) {
    if (find(d, src, id)->used) return 0;
    if (2 * (d->n + 1) > d->cap) {
        bus_dedupe g = {calloc(2 * d->cap, sizeof(slot)), 2 * d->cap, d->n};
        if (!g.t) return VEL_ENOMEM;
        for (size_t i = 0; i < d->cap; i++)
            if (d->t[i].used) *find(&g, d->t[i].src, d->t[i].id) = d->t[i];
        free(d->t);
        *d = g;
    }
    *find(d, src, id) = (slot){id, val, src, 1};
    d->n++;
    return 1;
}

size_t bus_dedupe_count(const bus_dedupe *d) { return d->n; }

void bus_dedupe_destroy(bus_dedupe **d) {
    if (!d || !*d) return;
    free((*d)->t);
    free(*d);
    *d = NULL;
}

// ---- acker -------------------------------------------------------------------

#define ACKER_MAX 64

struct bus_acker {
    int n;
    bus_socket *s[ACKER_MAX];
};

int bus_acker_open(bus_acker **out, const char *eps, const bus_socket_opts *opts) {
    *out = NULL;
    if (!eps || !*eps) return BUS_EENDPOINT;
    bus_acker *a = calloc(1, sizeof *a);
    if (!a) return VEL_ENOMEM;
    int rc = 0;
    for (const char *p = eps; *p && !rc;) {
        const char *q = strchr(p, ',');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        char ep[256];
        if (n == 0 || n >= sizeof ep) { rc = BUS_EENDPOINT; break; }
        if (a->n == ACKER_MAX) { rc = VEL_ERANGE; break; }
        memcpy(ep, p, n);
        ep[n] = 0;
        rc = bus_socket_open(&a->s[a->n], BUS_PUSH, opts);
        if (!rc) rc = bus_connect(a->s[a->n++], ep);
        p += n;
        if (*p == ',') p++;
    }
    if (rc) { bus_acker_close(&a); return rc; }
    *out = a;
    return 0;
}

int bus_ack(bus_acker *a, const bus_msg *item, int timeout_ms) {
    uint32_t src = bus_msg_src(item);
    if (src >= (uint32_t)a->n) return VEL_ERANGE;
    bus_msg *m;
    int rc = bus_msg_new(&m, "ack", src, bus_msg_id(item));
    if (rc) return rc;
    rc = bus_send(a->s[src], &m, timeout_ms);
    bus_msg_destroy(&m);
    return rc;
}

void bus_acker_close(bus_acker **a) {
    if (!a || !*a) return;
    for (int i = 0; i < (*a)->n; i++) bus_socket_close(&(*a)->s[i]);
    free(*a);
    *a = NULL;
}
