// mp.h: a bounded, allocation-free msgpack reader (a cursor over a byte
// span) for headers that come from outside the process.
//
// Why not msgpack-c's unpacker: it allocates every array/map up front from
// the count the bytes claim (a 5-byte header can ask for 2^32 elements), and
// it copies into a zone. This reader never allocates, never reads past the
// span, and returns strings as pointers into the span (read in place).
// Not here: packing (bus/msg.c uses msgpack-c's packer for that).
//
// Every function returns 0 or BUS_EMSGPACK (truncated or malformed bytes) or
// BUS_EFIELD (well-formed but of another type than asked); on error the
// cursor is left where it was.
#ifndef BUS_MP_H
#define BUS_MP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const uint8_t *p;     // next byte
    const uint8_t *end;   // one past the last byte
} mp_cursor;

typedef enum {
    MP_NIL, MP_BOOL, MP_UINT, MP_INT, MP_FLOAT, MP_STR, MP_BIN,
    MP_ARRAY, MP_MAP, MP_EXT
} mp_type;

// Nesting limit of mp_skip: keeps a hostile "[[[[...]]]]" from recursing deep.
#define MP_MAX_DEPTH 16

static inline mp_cursor mp_cursor_make(const void *buf, size_t len) {
    mp_cursor c = {(const uint8_t *)buf, (const uint8_t *)buf + len};
    return c;
}
static inline size_t mp_left(const mp_cursor *c) { return (size_t)(c->end - c->p); }

// Type of the next value without consuming it (BUS_EMSGPACK at the end or on
// the reserved byte 0xc1).
int mp_peek(const mp_cursor *c, mp_type *type);
int mp_read_nil(mp_cursor *c);
int mp_read_bool(mp_cursor *c, int *v);
// Any integer encoding; fails with BUS_EFIELD if the value does not fit.
int mp_read_u64(mp_cursor *c, uint64_t *v);
int mp_read_i64(mp_cursor *c, int64_t *v);
// float32, float64, or any integer (converted).
int mp_read_f64(mp_cursor *c, double *v);
// str: *s points into the span (not NUL-terminated), *len its length.
int mp_read_str(mp_cursor *c, const char **s, uint32_t *len);
int mp_read_array(mp_cursor *c, uint32_t *n);
int mp_read_map(mp_cursor *c, uint32_t *n);
// Skips one complete value (containers recursively, depth <= MP_MAX_DEPTH).
int mp_skip(mp_cursor *c);

#endif
