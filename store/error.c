// error.c: LMDB return codes mapped to store codes (details through
// vel_fail, core/error.h), key encoding.
// Not here: anything that touches the map (env.c, read.c, write.c).
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/base.h"
#include "store/internal.h"
#include "store/meta.h"

int store_lmdb_fail(int rc, const char *what) {
    int code = STORE_ELMDB;
    if (rc == ENOMEM) code = VEL_ENOMEM;
    else if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) code = STORE_ENOTCACHE;
    else if (rc == MDB_NOTFOUND) code = STORE_ENOKEY;
    else if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND) code = STORE_ECORRUPT;   // an input error (exit 2)
    return vel_fail(code, "%s: %s", what, mdb_strerror(rc));
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
