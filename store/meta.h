// meta.h: the msgpack encoding of the "__meta__" record and the checks on a
// store_meta. Pure functions over bytes and structs: no LMDB.
//
// Encoding: a msgpack map
//   {"format": "vel-latent-cache", "format_version": 1,
//    "tokenizer_hash": str, "shape": [C, H, W], "dtype": "f32",
//    "mean": [f32 x C] | nil, "std": [f32 x C] | nil,
//    "dataset": str, "dataset_size": uint, "code_version": str,
//    "has_flip": bool}
// mean/std are packed as msgpack float32, so they round-trip bit-exactly.
// The decoder requires every key (unknown keys are ignored) and validates
// types, string lengths, shape bounds and stats (finite, std > 0).
#ifndef STORE_META_H
#define STORE_META_H

#include <stddef.h>

#include "store/store.h"

#define STORE_META_KEY "__meta__"
#define STORE_META_FORMAT "vel-latent-cache"
#define STORE_META_VERSION 1
#define STORE_META_LIMIT (1u << 20)   // bytes; real metas are ~10 KB at most

// Checks a meta built by a caller (shape bounds, dtype, strings, stats):
// 0, STORE_ESHAPE or STORE_EMETA (detail in vel_error_detail).
int store_meta_validate(const store_meta *m);
// *buf malloc'ed, caller frees with free().
int store_meta_encode(const store_meta *m, char **buf, size_t *len);
int store_meta_decode(store_meta *m, const void *buf, size_t len);
// have vs an expectation: hash (NULL: skip) -> STORE_EHASH, shape (NULL:
// skip) -> STORE_ESHAPE.
int store_meta_expect(const store_meta *have, const char *hash, const int64_t *shape);
// Reopening for writing: everything but stats and code version must agree.
int store_meta_compatible(const store_meta *have, const store_meta *want);

#endif
