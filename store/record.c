// record.c: encode/decode of one record value (layout in record.h).
// The decoder trusts nothing: the header goes through the msgpack bounds
// scan, then msgpack-c, then field and size checks against the layout.
#include "store/record.h"

#include <msgpack.h>
#include <string.h>

#include "core/base.h"
#include "store/internal.h"
#include "store/mpscan.h"

typedef struct {
    uint8_t *buf;
    size_t cap, len;
} fixed_buf;

static int fixed_write(void *data, const char *p, size_t n) {
    fixed_buf *f = data;
    if (n > f->cap - f->len) return -1;
    memcpy(f->buf + f->len, p, n);
    f->len += n;
    return 0;
}

int store_record_header(uint8_t *buf, size_t cap, size_t *len, int32_t label,
                        int64_t numel, bool has_flip) {
    if (numel <= 0) return vel_fail(VEL_EINVAL, "record header: numel %lld <= 0", (long long)numel);
    fixed_buf f = {buf, cap, 0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &f, fixed_write);
    int rc = 0;
    rc |= msgpack_pack_map(&pk, 4);
    rc |= msgpack_pack_str_with_body(&pk, "v", 1);
    rc |= msgpack_pack_uint32(&pk, STORE_RECORD_VERSION);
    rc |= msgpack_pack_str_with_body(&pk, "label", 5);
    rc |= msgpack_pack_int32(&pk, label);
    rc |= msgpack_pack_str_with_body(&pk, "n", 1);
    rc |= msgpack_pack_uint64(&pk, (uint64_t)numel);
    rc |= msgpack_pack_str_with_body(&pk, "flip", 4);
    rc |= has_flip ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    if (rc) return vel_fail(VEL_EINVAL, "record header: buffer of %zu bytes too small", cap);
    *len = f.len;
    return 0;
}

size_t store_record_size(size_t hdr_len, int64_t numel, bool has_flip) {
    return hdr_len + (has_flip ? 4u : 2u) * (size_t)numel * sizeof(float);
}

static bool key_is(const msgpack_object *k, const char *name) {
    size_t n = strlen(name);
    return k->via.str.size == n && memcmp(k->via.str.ptr, name, n) == 0;
}

// Field checks on the unpacked map; fills label/n/flip.
static int header_fields(const msgpack_object *o, int32_t *label, uint64_t *n, bool *flip) {
    if (o->type != MSGPACK_OBJECT_MAP)
        return vel_fail(STORE_EHEADER, "record header is msgpack type %d, not a map", (int)o->type);
    int seen_v = 0, seen_label = 0, seen_n = 0, seen_flip = 0;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR)
            return vel_fail(STORE_EHEADER, "record header key %u is not a string", i);
        if (key_is(k, "v")) {
            if (seen_v++ || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                return vel_fail(STORE_EHEADER, "record header: 'v' repeated or not an unsigned int");
            if (v->via.u64 != STORE_RECORD_VERSION)
                return vel_fail(STORE_EHEADER, "record header: version %llu, this code reads %d",
                                  (unsigned long long)v->via.u64, STORE_RECORD_VERSION);
        } else if (key_is(k, "label")) {
            if (seen_label++) return vel_fail(STORE_EHEADER, "record header: 'label' repeated");
            if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT32_MAX)
                *label = (int32_t)v->via.u64;
            else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && v->via.i64 >= INT32_MIN)
                *label = (int32_t)v->via.i64;
            else
                return vel_fail(STORE_EHEADER, "record header: 'label' is not an int32");
        } else if (key_is(k, "n")) {
            if (seen_n++ || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                return vel_fail(STORE_EHEADER, "record header: 'n' repeated or not an unsigned int");
            *n = v->via.u64;
        } else if (key_is(k, "flip")) {
            if (seen_flip++ || v->type != MSGPACK_OBJECT_BOOLEAN)
                return vel_fail(STORE_EHEADER, "record header: 'flip' repeated or not a bool");
            *flip = v->via.boolean;
        }
        // other keys: written by a later version, ignored
    }
    if (!seen_v || !seen_label || !seen_n || !seen_flip)
        return vel_fail(STORE_EHEADER, "record header lacks %s",
                          !seen_v ? "'v'" : !seen_label ? "'label'" : !seen_n ? "'n'" : "'flip'");
    return 0;
}

int store_record_decode(store_view *out, const void *val, size_t len, int64_t numel,
                        bool has_flip) {
    memset(out, 0, sizeof *out);
    if (numel <= 0 || (uint64_t)numel > (SIZE_MAX / 32))
        return vel_fail(VEL_EINVAL, "record decode: layout numel %lld out of range", (long long)numel);
    size_t hdr_len;
    size_t scan_len = len < STORE_RECORD_HDR_LIMIT ? len : STORE_RECORD_HDR_LIMIT;
    if (store_mp_scan(val, scan_len, &hdr_len) != 0)
        return vel_fail(STORE_EHEADER, "record of %zu bytes does not start with a complete "
                          "msgpack header of at most %d bytes", len, STORE_RECORD_HDR_LIMIT);
    msgpack_zone zone;
    if (!msgpack_zone_init(&zone, 512)) return vel_fail(VEL_ENOMEM, "record decode: zone");
    msgpack_object o;
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack(val, hdr_len, &off, &zone, &o);
    int32_t label = 0;
    uint64_t n = 0;
    bool flip = false;
    int rc;
    if (ur == MSGPACK_UNPACK_NOMEM_ERROR) rc = vel_fail(VEL_ENOMEM, "record decode: msgpack out of memory");
    else if (ur != MSGPACK_UNPACK_SUCCESS || off != hdr_len)
        rc = vel_fail(STORE_EHEADER, "record header: msgpack rejected it (%d)", (int)ur);
    else rc = header_fields(&o, &label, &n, &flip);
    msgpack_zone_destroy(&zone);
    if (rc) return rc;
    if (n != (uint64_t)numel || flip != has_flip)
        return vel_fail(STORE_ERECSIZE, "record header says n=%llu flip=%d, cache layout is "
                          "n=%lld flip=%d", (unsigned long long)n, (int)flip, (long long)numel,
                          (int)has_flip);
    size_t want = store_record_size(hdr_len, numel, has_flip);
    if (len != want)
        return vel_fail(STORE_ERECSIZE, "record is %zu bytes, its header and the cache layout "
                          "need %zu", len, want);
    const uint8_t *p = (const uint8_t *)val + hdr_len;
    size_t tb = (size_t)numel * sizeof(float);
    out->label = label;
    out->has_flip = has_flip;
    out->numel = numel;
    out->mu = p;
    out->sigma = p + tb;
    if (has_flip) {
        out->mu_flip = p + 2 * tb;
        out->sigma_flip = p + 3 * tb;
    }
    return 0;
}
