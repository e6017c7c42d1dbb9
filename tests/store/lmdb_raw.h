// lmdb_raw.h: writing into a cache behind the store's back (store closed),
// to build what a damaged or hand-edited cache holds. Header-only, as
// store_testdata.h, for the Criterion tests of tests/store/.
#ifndef TESTS_STORE_LMDB_RAW_H
#define TESTS_STORE_LMDB_RAW_H

#include <criterion/criterion.h>
#include <lmdb.h>

// Raw LMDB put of key/value into the env at dir.
static inline void raw_put(const char *dir, const void *key, size_t klen, const void *val,
                           size_t vlen) {
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_open(env, dir, 0, 0664), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

#endif
