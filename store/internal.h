// internal.h: what the store's .c files share and callers must not use: the
// handle layouts, error formatting, key encoding, LMDB transaction helpers.
#ifndef STORE_INTERNAL_H
#define STORE_INTERNAL_H

#include <lmdb.h>
#include <stdatomic.h>

#include "store/store.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "store: records hold little-endian f32 copied raw; big-endian hosts are not supported"
#endif

struct store {
    MDB_env *env;
    MDB_dbi dbi;
    bool readonly;
    store_opts opts;
    store_meta meta;
    char *path;
    atomic_int open_txns;   // read txns of this process (map resize needs 0)
};

struct store_txn {
    store *s;
    MDB_txn *txn;
};

struct store_iter {
    store_txn *t;
    MDB_cursor *cur;
    uint64_t start;
    bool started;
};

// Maps an LMDB return code (what: the call that failed) to a store code.
int store_lmdb_fail(int rc, const char *what);

void store_key_encode(uint8_t key[8], uint64_t index);
uint64_t store_key_decode(const uint8_t key[8]);
bool store_key_is_meta(const MDB_val *k);

// Read txn with MDB_MAP_RESIZED handled; counts in s->open_txns.
int store_rtxn_begin(store *s, MDB_txn **txn);
void store_rtxn_end(store *s, MDB_txn *txn);
// A read txn and a cursor over the records (for full scans); on success the
// caller closes the cursor and ends the txn with store_rtxn_end.
int store_rcursor_open(store *s, MDB_txn **txn, MDB_cursor **cur);
// Write txn (MDB_MAP_RESIZED handled) and growth after MDB_MAP_FULL.
int store_wtxn_begin(store *s, MDB_txn **txn);
int store_grow(store *s, size_t at_least_more);

// Reads and decodes __meta__ inside txn.
int store_meta_read_txn(MDB_txn *txn, MDB_dbi dbi, store_meta *m);
int store_meta_write_txn(MDB_txn *txn, MDB_dbi dbi, const store_meta *m);

// The cache's entry count (records and the meta) in txn's snapshot;
// STORE_ECORRUPT when it is more than the file's pages could hold.
int store_entries(store *s, MDB_txn *txn, size_t *entries);

// fault_guard.c: while a read transaction of this thread is open, a SIGSEGV
// or SIGBUS (LMDB following a damaged page, a file cut short under the map)
// exits 2 naming the cache instead of crashing. Nests; per thread.
void store_guard_enter(const char *path);
void store_guard_leave(void);

#endif
