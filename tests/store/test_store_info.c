// Runs bin/store-info (built by `make`, which `make test` does first) on a
// real cache, a corrupt one, a bad path and --help, and checks its output
// and exit status. Skipped, not failed, when the binary is not built.
#include <criterion/criterion.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/store/store_testdata.h"
#include "tests/util.h"

#define TOOL "bin/store-info"

// Runs the tool with args; returns its exit status, output (stdout+stderr) in out.
static int run(const char *args, char *out, size_t cap) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", TOOL, args);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(store_info, help_bad_path_real_and_corrupt_cache) {
    if (access(TOOL, X_OK) != 0) cr_skip_test("%s not built (run make)", TOOL);
    char out[8192];
    cr_assert_eq(run("--help", out, sizeof out), 0);
    cr_assert(strstr(out, "usage: store-info"), "%s", out);
    cr_assert_eq(run("", out, sizeof out), 2);
    cr_assert_eq(run("--frobnicate x", out, sizeof out), 2);
    cr_assert(strstr(out, "unknown option"), "%s", out);
    cr_assert_eq(run("/nonexistent/cache", out, sizeof out), 1);
    cr_assert(strstr(out, "/nonexistent/cache") && strstr(out, "not a cache directory"), "%s", out);

    char *dir = test_tmpdir("store-info");
    store_meta m = td_meta(2, 1, 1, true);
    store *s;
    cr_assert_eq(store_create(&s, dir, &m, NULL), 0);
    float buf[8];
    for (uint64_t i = 0; i < 37; i++) {
        store_record r = td_record(buf, i, 2, true);
        cr_assert_eq(store_put_batch(s, &r, 1, NULL), 0);
    }
    float mean[2] = {0.5f, -0.25f}, std[2] = {2.0f, 4.0f};
    cr_assert_eq(store_set_stats(s, mean, std), 0);
    store_close(&s);
    char args[600];
    snprintf(args, sizeof args, "--verify %s", dir);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "records:        37\n"), "%s", out);
    cr_assert(strstr(out, "latent:         2x1x1 f32\n"), "%s", out);
    cr_assert(strstr(out, "tokenizer_hash: sha256:tok-test\n"), "%s", out);
    cr_assert(strstr(out, "dataset:        testset (1000 images)\n"), "%s", out);
    cr_assert(strstr(out, "has_flip:       yes\n"), "%s", out);
    cr_assert(strstr(out, "     1 -0.25 4\n"), "%s", out);
    cr_assert(strstr(out, "verified:       37 records\n"), "%s", out);
    // Corrupt record 20 (raw LMDB, store closed): --verify must say so.
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_open(env, dir, 0, 0664), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    uint8_t key[8] = {0, 0, 0, 0, 0, 0, 0, 20};
    MDB_val k = {8, key}, v = {5, "\xc1\xc1\xc1\xc1\xc1"};
    cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    cr_assert_eq(run(args, out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, "after 20 good records") && strstr(out, "index 20"), "%s", out);
    rm_rf(dir);
    free(dir);
}
