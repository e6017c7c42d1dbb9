// error.c: store_strerror, the per-thread detail message, key encoding.
// Not here: anything that touches the map (env.c, read.c, write.c).
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/base.h"
#include "store/internal.h"
#include "store/meta.h"

// Per thread so that reader threads do not overwrite each other's detail.
static _Thread_local char last_error[512];

const char *store_strerror(int err) {
    switch (err) {
    case STORE_ENOTCACHE: return "not an LMDB latent cache (missing, not a directory, or not LMDB)";
    case STORE_ENOMETA: return "LMDB environment without a __meta__ record (not a latent cache)";
    case STORE_EMETA: return "cache metadata malformed or incompatible";
    case STORE_EHASH: return "cache was encoded with a different tokenizer checkpoint";
    case STORE_ESHAPE: return "cache latent shape or dtype differs from the expected one";
    case STORE_ERECSIZE: return "record size disagrees with its header or the cache layout";
    case STORE_EHEADER: return "corrupt record header (not the expected msgpack map)";
    case STORE_EMISMATCH: return "index already cached with different content";
    case STORE_ENOKEY: return "index not in the cache";
    case STORE_ELMDB: return "LMDB error";
    case STORE_EREADONLY: return "cache opened read-only";
    case STORE_ENOFLIP: return "cache holds no flipped variants";
    case STORE_ENOSTATS: return "cache has no normalisation statistics yet";
    case STORE_EBUSY: return "map must grow while a read transaction is open";
    case STORE_EINDEX: return "index above STORE_MAX_INDEX";
    case STORE_EKEY: return "cache holds a key that is neither an index nor __meta__";
    case STORE_EMAPCAP: return "cache map would have to grow past its configured cap";
    default: return vel_strerror(err);
    }
}

const char *store_last_error(void) { return last_error; }

int store_fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

int store_lmdb_fail(int rc, const char *what) {
    int code = STORE_ELMDB;
    if (rc == ENOMEM) code = VEL_ENOMEM;
    else if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) code = STORE_ENOTCACHE;
    else if (rc == MDB_NOTFOUND) code = STORE_ENOKEY;
    return store_fail(code, "%s: %s", what, mdb_strerror(rc));
}

void store_key_encode(uint8_t key[8], uint64_t index) {
    for (int i = 0; i < 8; i++) key[i] = (uint8_t)(index >> (56 - 8 * i));
}

uint64_t store_key_decode(const uint8_t key[8]) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | key[i];
    return v;
}

bool store_key_is_meta(const MDB_val *k) {
    return k->mv_size == 8 && memcmp(k->mv_data, STORE_META_KEY, 8) == 0;
}
