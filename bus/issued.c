// issued.c: which (src, id) each job source has issued, as the sink learns
// it from the sources' "issued" tables on ctl (stream.h). Per producer a
// sorted array of disjoint inclusive id ranges [lo, hi]; a table may come in several
// messages and is repeated with every heartbeat, so noting is a union
// (re-noting a covered range changes nothing) and the table is complete once
// the ranges cover the `n` ids its source declared.
#include <stdlib.h>
#include <string.h>

#include "bus/internal.h"
#include "core/base.h"

typedef struct { uint64_t lo, hi; } range;   // ids lo..hi, both included

typedef struct {
    range *r;
    size_t len, cap;
    uint64_t covered;   // ids in r
    uint64_t n;         // ids the source declared (largest n heard)
    int heard;          // a table message of this producer has arrived
} table;

struct bus_issued {
    int n;
    table t[];
};

int bus_issued_new(bus_issued **out, int nproducers) {
    *out = NULL;
    if (nproducers < 0) return VEL_EINVAL;
    bus_issued *s = calloc(1, sizeof *s + (size_t)nproducers * sizeof(table));
    if (!s) return VEL_ENOMEM;
    s->n = nproducers;
    *out = s;
    return 0;
}

void bus_issued_destroy(bus_issued **s) {
    if (!s || !*s) return;
    for (int i = 0; i < (*s)->n; i++) free((*s)->t[i].r);
    free(*s);
    *s = NULL;
}

// First range whose hi is >= id (binary search), or len.
static size_t first_from(const table *t, uint64_t id) {
    size_t a = 0, b = t->len;
    while (a < b) {
        size_t m = a + (b - a) / 2;
        if (t->r[m].hi < id) a = m + 1;
        else b = m;
    }
    return a;
}

// Adds [lo, hi] to t, merging with the ranges it overlaps or touches.
static int add_range(table *t, uint64_t lo, uint64_t hi) {
    size_t i = first_from(t, lo ? lo - 1 : 0), j = i;
    uint64_t nlo = lo, nhi = hi, gone = 0;
    while (j < t->len && (t->r[j].lo <= hi || (hi < UINT64_MAX && t->r[j].lo == hi + 1))) {
        if (t->r[j].lo < nlo) nlo = t->r[j].lo;
        if (t->r[j].hi > nhi) nhi = t->r[j].hi;
        gone += t->r[j].hi - t->r[j].lo + 1;
        j++;
    }
    if (j == i + 1 && nlo == t->r[i].lo && nhi == t->r[i].hi) return 0;   // already covered
    if (j == i) {   // touches nothing: insert
        if (t->len == t->cap) {
            size_t cap = t->cap ? 2 * t->cap : 8;
            range *r = realloc(t->r, cap * sizeof *r);
            if (!r) return VEL_ENOMEM;
            t->r = r;
            t->cap = cap;
        }
        memmove(t->r + i + 1, t->r + i, (t->len - i) * sizeof *t->r);
        t->len++;
    } else if (j > i + 1) {   // several become one
        memmove(t->r + i + 1, t->r + j, (t->len - j) * sizeof *t->r);
        t->len -= j - i - 1;
    }
    t->r[i] = (range){nlo, nhi};
    t->covered += (nhi - nlo + 1) - gone;
    return 0;
}

int bus_issued_note(bus_issued *s, const bus_msg *m) {
    if (!bus_msg_is(m, "issued")) return 0;
    uint32_t src = bus_msg_src(m);
    if (src >= (uint32_t)s->n) return vel_fail(VEL_ERANGE, "issued table of unknown source %u", src);
    uint64_t n;
    size_t k;
    int64_t *v = malloc(2 * BUS_ISSUED_RANGES * sizeof *v);
    if (!v) return VEL_ENOMEM;
    int rc = bus_msg_get_uint(m, "n", &n);
    if (!rc) rc = bus_msg_get_ints(m, "ranges", v, 2 * BUS_ISSUED_RANGES, &k);
    if (!rc && k % 2) rc = BUS_EFIELD;
    for (size_t i = 0; !rc && i < k; i += 2)
        if ((uint64_t)v[i] > (uint64_t)v[i + 1]) rc = BUS_EFIELD;
    table *t = &s->t[src];
    for (size_t i = 0; !rc && i < k; i += 2) rc = add_range(t, (uint64_t)v[i], (uint64_t)v[i + 1]);
    free(v);
    if (rc) return rc == VEL_ENOMEM ? rc : vel_fail(BUS_EFIELD, "malformed issued table of source %u", src);
    if (n > t->n) t->n = n;
    t->heard = 1;
    return 1;
}

int bus_issued_check(const bus_issued *s, uint32_t src, uint64_t id) {
    if (src >= (uint32_t)s->n) return 0;
    const table *t = &s->t[src];
    size_t i = first_from(t, id);
    if (i < t->len && t->r[i].lo <= id) return 1;
    return t->heard && t->covered >= t->n ? 0 : -1;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int bus_issued_encode(const uint64_t *ids, size_t n, int64_t **ranges, size_t *nvals) {
    *ranges = NULL;
    *nvals = 0;
    uint64_t *s = malloc((n ? n : 1) * sizeof *s);
    int64_t *r = malloc((n ? 2 * n : 1) * sizeof *r);
    if (!s || !r) { free(s); free(r); return VEL_ENOMEM; }
    memcpy(s, ids, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_u64);
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && s[j] == s[j - 1] + 1) j++;
        r[k++] = (int64_t)s[i];
        r[k++] = (int64_t)s[j - 1];
        i = j;
    }
    free(s);
    *ranges = r;
    *nvals = k;
    return 0;
}
