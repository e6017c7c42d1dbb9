// mp.c: bounded msgpack reader (see mp.h). Big-endian multi-byte fields are
// assembled byte by byte, so the input needs no alignment.
#include "bus/mp.h"

#include <string.h>

#include "bus/errors.h"

static uint64_t be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

int mp_peek(const mp_cursor *c, mp_type *type) {
    if (c->p >= c->end) return BUS_EMSGPACK;
    uint8_t b = *c->p;
    if (b <= 0x7f) *type = MP_UINT;
    else if (b <= 0x8f) *type = MP_MAP;
    else if (b <= 0x9f) *type = MP_ARRAY;
    else if (b <= 0xbf) *type = MP_STR;
    else if (b >= 0xe0) *type = MP_INT;
    else switch (b) {
        case 0xc0: *type = MP_NIL; break;
        case 0xc2: case 0xc3: *type = MP_BOOL; break;
        case 0xc4: case 0xc5: case 0xc6: *type = MP_BIN; break;
        case 0xc7: case 0xc8: case 0xc9: case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
            *type = MP_EXT; break;
        case 0xca: case 0xcb: *type = MP_FLOAT; break;
        case 0xcc: case 0xcd: case 0xce: case 0xcf: *type = MP_UINT; break;
        case 0xd0: case 0xd1: case 0xd2: case 0xd3: *type = MP_INT; break;
        case 0xd9: case 0xda: case 0xdb: *type = MP_STR; break;
        case 0xdc: case 0xdd: *type = MP_ARRAY; break;
        case 0xde: case 0xdf: *type = MP_MAP; break;
        default: return BUS_EMSGPACK; // 0xc1 is reserved ("never used")
    }
    return 0;
}

int mp_read_nil(mp_cursor *c) {
    if (c->p >= c->end) return BUS_EMSGPACK;
    if (*c->p != 0xc0) return BUS_EFIELD;
    c->p++;
    return 0;
}

int mp_read_bool(mp_cursor *c, int *v) {
    if (c->p >= c->end) return BUS_EMSGPACK;
    if (*c->p != 0xc2 && *c->p != 0xc3) return BUS_EFIELD;
    *v = *c->p == 0xc3;
    c->p++;
    return 0;
}

// Reads any integer as sign + magnitude so both u64 and i64 readers can
// decide whether it fits. neg=1 means the value is mag - 2^64 (an int64).
static int read_int(mp_cursor *c, int *neg, uint64_t *raw) {
    if (c->p >= c->end) return BUS_EMSGPACK;
    uint8_t b = *c->p;
    int n;
    if (b <= 0x7f) { *neg = 0; *raw = b; c->p++; return 0; }
    if (b >= 0xe0) { *neg = 1; *raw = (uint64_t)(int64_t)(int8_t)b; c->p++; return 0; }
    switch (b) {
    case 0xcc: case 0xd0: n = 1; break;
    case 0xcd: case 0xd1: n = 2; break;
    case 0xce: case 0xd2: n = 4; break;
    case 0xcf: case 0xd3: n = 8; break;
    default: return BUS_EFIELD;
    }
    if (mp_left(c) < (size_t)(1 + n)) return BUS_EMSGPACK;
    uint64_t v = be(c->p + 1, n);
    if (b >= 0xd0) { // signed: sign-extend from n bytes
        int shift = 64 - 8 * n;
        int64_t s = (int64_t)(v << shift) >> shift;
        *neg = s < 0;
        v = (uint64_t)s;
    } else {
        *neg = 0;
    }
    *raw = v;
    c->p += 1 + n;
    return 0;
}

int mp_read_u64(mp_cursor *c, uint64_t *v) {
    mp_cursor save = *c;
    int neg; uint64_t raw;
    int rc = read_int(c, &neg, &raw);
    if (rc) return rc;
    if (neg) { *c = save; return BUS_EFIELD; }
    *v = raw;
    return 0;
}

int mp_read_i64(mp_cursor *c, int64_t *v) {
    mp_cursor save = *c;
    int neg; uint64_t raw;
    int rc = read_int(c, &neg, &raw);
    if (rc) return rc;
    if (!neg && raw > (uint64_t)INT64_MAX) { *c = save; return BUS_EFIELD; }
    *v = (int64_t)raw;
    return 0;
}

int mp_read_f64(mp_cursor *c, double *v) {
    if (c->p >= c->end) return BUS_EMSGPACK;
    uint8_t b = *c->p;
    if (b == 0xca || b == 0xcb) {
        int n = b == 0xca ? 4 : 8;
        if (mp_left(c) < (size_t)(1 + n)) return BUS_EMSGPACK;
        uint64_t bits = be(c->p + 1, n);
        if (n == 4) {
            uint32_t u = (uint32_t)bits; float f;
            memcpy(&f, &u, 4);
            *v = f;
        } else {
            memcpy(v, &bits, 8);
        }
        c->p += 1 + n;
        return 0;
    }
    int neg; uint64_t raw;
    int rc = read_int(c, &neg, &raw);
    if (rc) return rc;
    *v = neg ? (double)(int64_t)raw : (double)raw;
    return 0;
}

// Reads a length-prefixed header: fix range [lo, lo+fixmax] with the count in
// the low bits, or one of three explicit tags with 1/2/4-byte (or 2/4-byte
// when tag8 == 0) big-endian counts.
static int read_len(mp_cursor *c, uint8_t lo, uint8_t fixmask, int tag8, int tag16, int tag32,
                    uint32_t *n) {
    if (c->p >= c->end) return BUS_EMSGPACK;
    uint8_t b = *c->p;
    int w;
    if ((b & (uint8_t)~fixmask) == lo) { *n = b & fixmask; c->p++; return 0; }
    if (tag8 >= 0 && b == tag8) w = 1;
    else if (b == tag16) w = 2;
    else if (b == tag32) w = 4;
    else return BUS_EFIELD;
    if (mp_left(c) < (size_t)(1 + w)) return BUS_EMSGPACK;
    *n = (uint32_t)be(c->p + 1, w);
    c->p += 1 + w;
    return 0;
}

int mp_read_str(mp_cursor *c, const char **s, uint32_t *len) {
    mp_cursor save = *c;
    uint32_t n;
    int rc = read_len(c, 0xa0, 0x1f, 0xd9, 0xda, 0xdb, &n);
    if (rc) return rc;
    if (mp_left(c) < n) { *c = save; return BUS_EMSGPACK; }
    *s = (const char *)c->p;
    *len = n;
    c->p += n;
    return 0;
}

int mp_read_array(mp_cursor *c, uint32_t *n) {
    mp_cursor save = *c;
    int rc = read_len(c, 0x90, 0x0f, -1, 0xdc, 0xdd, n);
    // Each element takes at least one byte: a count larger than what is left
    // is a lie, caught here before any caller sizes anything from it.
    if (rc == 0 && *n > mp_left(c)) { *c = save; return BUS_EMSGPACK; }
    return rc;
}

int mp_read_map(mp_cursor *c, uint32_t *n) {
    mp_cursor save = *c;
    int rc = read_len(c, 0x80, 0x0f, -1, 0xde, 0xdf, n);
    if (rc == 0 && *n > mp_left(c) / 2) { *c = save; return BUS_EMSGPACK; }
    return rc;
}

static int skip(mp_cursor *c, int depth) {
    mp_type t;
    int rc = mp_peek(c, &t);
    if (rc) return rc;
    uint8_t b = *c->p;
    uint32_t n;
    const char *s;
    switch (t) {
    case MP_NIL: c->p++; return 0;
    case MP_BOOL: c->p++; return 0;
    case MP_UINT: case MP_INT: { int neg; uint64_t r; return read_int(c, &neg, &r); }
    case MP_FLOAT: { double d; return mp_read_f64(c, &d); }
    case MP_STR: return mp_read_str(c, &s, &n);
    case MP_BIN: {
        int w = b == 0xc4 ? 1 : b == 0xc5 ? 2 : 4;
        if (mp_left(c) < (size_t)(1 + w)) return BUS_EMSGPACK;
        uint64_t len = be(c->p + 1, w);
        if (mp_left(c) - (size_t)(1 + w) < len) return BUS_EMSGPACK;
        c->p += 1 + w + len;
        return 0;
    }
    case MP_EXT: {
        size_t hdr, len;
        if (b >= 0xd4 && b <= 0xd8) { hdr = 2; len = (size_t)1 << (b - 0xd4); }
        else {
            int w = b == 0xc7 ? 1 : b == 0xc8 ? 2 : 4;
            hdr = 2 + (size_t)w;
            if (mp_left(c) < hdr) return BUS_EMSGPACK;
            len = (size_t)be(c->p + 1, w);
        }
        if (mp_left(c) < hdr || mp_left(c) - hdr < len) return BUS_EMSGPACK;
        c->p += hdr + len;
        return 0;
    }
    case MP_ARRAY: case MP_MAP: {
        if (depth >= MP_MAX_DEPTH) return BUS_EMSGPACK;
        mp_cursor save = *c;
        rc = t == MP_ARRAY ? mp_read_array(c, &n) : mp_read_map(c, &n);
        if (rc) return rc;
        uint64_t items = t == MP_ARRAY ? n : 2ull * n;
        for (uint64_t i = 0; i < items; i++) {
            rc = skip(c, depth + 1);
            if (rc) { *c = save; return rc; }
        }
        return 0;
    }
    }
    return BUS_EMSGPACK;
}

int mp_skip(mp_cursor *c) {
    mp_cursor save = *c;
    int rc = skip(c, 0);
    if (rc) *c = save;
    return rc;
}
