// record.h: the byte layout of one cache record (value of an index key) and
// its encoder/decoder. Pure functions over bytes: no LMDB, no allocation that
// outlives a call. The decoder is the parser of outside bytes that
// fuzz/fuzz_store_record.c exercises.
//
// Layout: a msgpack map header, then the tensors back to back:
//   {"v": 1, "label": int32, "n": C*H*W, "flip": bool}
//   mu f32[n] | sigma f32[n] | (flip) mu_flip f32[n] | sigma_flip f32[n]
// f32 are little-endian (the build refuses big-endian hosts). The decoder
// requires the four header keys with those types (other keys are ignored for
// forward compatibility) and an exact total size.
#ifndef STORE_RECORD_H
#define STORE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define STORE_RECORD_VERSION 1
// Longest header the encoder writes (map of 4 with the widest ints) and the
// longest the decoder accepts (room for unknown extra keys from later
// versions, yet a bound on what a corrupt record can make us parse).
#define STORE_RECORD_HDR_MAX 64
#define STORE_RECORD_HDR_LIMIT 4096

// Header for one record into buf (cap >= STORE_RECORD_HDR_MAX); *len = bytes.
int store_record_header(uint8_t *buf, size_t cap, size_t *len, int32_t label,
                        int64_t numel, bool has_flip);
// Total value size for a header of hdr_len bytes.
size_t store_record_size(size_t hdr_len, int64_t numel, bool has_flip);

// Parses val[0..len) against the cache layout (numel per tensor, has_flip).
// Fills out (pointers into val; out->index left 0). Errors: STORE_EHEADER
// (not msgpack, wrong types, missing keys, bad version), STORE_ERECSIZE
// (n or flip disagree with the layout, or the size is not exact).
int store_record_decode(store_view *out, const void *val, size_t len, int64_t numel,
                        bool has_flip);

#endif
