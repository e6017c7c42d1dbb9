// header.h: the bus message header (frame 0) as decoded and validated from
// outside bytes, and the read-side accessors of its extra fields. Pure code:
// no ZeroMQ here, so the fuzzer (fuzz/fuzz_bus_header.c) drives it directly.
//
// Wire form (docs/PROTOCOL.md), frame 0 is one msgpack map:
//   "v": 1, "kind": str, "id": u64, "src": u32 (producer id, default 0),
//   "tensors": [ {"name": str, "dtype": "f32"|"bf16"|"f16"|"u8"|"i32",
//                 "shape": [int, ...]} ... ]   (optional; absent = none),
//   any other string key: an extra field (int, float, str, bool, nil, or an
//   array of ints are readable; other values are kept but not readable).
// Frames 1..n are the raw little-endian payloads, one per tensor, in order.
//
// Invariants after a successful bus_header_decode: version known, kind and
// tensor names non-empty, bounded and unique, every dtype known, rank <= 8,
// every dim >= 0, numel x dtype size fits and equals that frame's length,
// every payload <= max_frame, header + payloads <= max_total, extra keys are
// unique strings.
#ifndef BUS_HEADER_H
#define BUS_HEADER_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

#define BUS_VERSION 1
#define BUS_MAX_TENSORS 32
#define BUS_MAX_FIELDS 64
#define BUS_NAME_MAX 63       // tensor names and extra-field keys (bytes)
#define BUS_KIND_MAX 31

// Defaults of bus_limits (0 in a field means the default).
#define BUS_DEFAULT_MAX_HEADER ((size_t)64 << 10)
#define BUS_DEFAULT_MAX_TOTAL ((size_t)1 << 30)
#define BUS_DEFAULT_MAX_FRAME ((size_t)256 << 20)

// Why a frame cap apart from the total (issue 15 item 5): ZeroMQ hands a
// multipart message to the application only once every frame is in memory,
// so the total can only be checked after buffering it all (two 600 MB
// frames took a receiver to 1.18 GB before the rejection). ZMQ_MAXMSGSIZE is
// the one cap ZeroMQ applies while receiving, and it applies to each frame:
// a frame over max_frame is refused as its length arrives (nothing of it is
// buffered) and that connection is dropped. What stays open: many frames,
// each under max_frame, are still buffered before the count or the total
// can be checked (ZeroMQ has no limit on frames per message).
typedef struct {
    size_t max_header;    // bytes of frame 0
    size_t max_total;     // bytes of all frames together (checked once they have arrived)
    size_t max_frame;     // bytes of one frame: ZMQ_MAXMSGSIZE, enforced while receiving;
                          // default min(BUS_DEFAULT_MAX_FRAME, max_total)
} bus_limits;

typedef struct {
    char name[BUS_NAME_MAX + 1];
    dtype_t dtype;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    size_t nbytes;
} bus_tensor_desc;

// One extra field: offsets into the buffer the header was decoded from.
typedef struct {
    uint32_t pair_off;    // start of the msgpack key (so key+value can be copied)
    uint32_t key_off, key_len;
    uint32_t val_off, val_end;
} bus_field_ref;

typedef struct {
    uint32_t version;
    char kind[BUS_KIND_MAX + 1];
    uint64_t id;
    uint32_t src;
    int ntensors;
    bus_tensor_desc tensors[BUS_MAX_TENSORS];
    int nfields;
    bus_field_ref fields[BUS_MAX_FIELDS];
} bus_header;

// Fills lim's zero fields with the defaults.
bus_limits bus_limits_resolve(const bus_limits *lim);

// Decodes and validates frame 0 (buf, len) against the payload frame lengths
// frame_len[0..nframes-1] (frames after the header). lim NULL = defaults.
// Returns 0 or a bus code (bus/errors.h); *out is undefined on error.
int bus_header_decode(const void *buf, size_t len, const size_t *frame_len, int nframes,
                      const bus_limits *lim, bus_header *out);

// Extra-field readers over the decoded buffer `base`. Each returns 0,
// VEL_ENOTFOUND (no such key) or BUS_EFIELD (the value has another type or
// does not fit). Integers read as floats are converted.
int bus_field_find(const uint8_t *base, const bus_header *h, const char *key);  // index or VEL_ENOTFOUND
int bus_field_int(const uint8_t *base, const bus_header *h, const char *key, int64_t *v);
int bus_field_uint(const uint8_t *base, const bus_header *h, const char *key, uint64_t *v);
int bus_field_float(const uint8_t *base, const bus_header *h, const char *key, double *v);
int bus_field_bool(const uint8_t *base, const bus_header *h, const char *key, int *v);
// String: copies with a terminating NUL; VEL_ERANGE if it needs more than cap bytes.
int bus_field_str(const uint8_t *base, const bus_header *h, const char *key, char *buf, size_t cap);
// Array of ints: *n gets the element count; VEL_ERANGE if *n > cap (nothing written).
int bus_field_ints(const uint8_t *base, const bus_header *h, const char *key, int64_t *out,
                   size_t cap, size_t *n);

#endif
