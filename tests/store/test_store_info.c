// Runs bin/store-info (built by `make`, which `make test` does first) on a
// real cache, a corrupt one, a bad path and --help, and checks its output
// and exit status. Skipped, not failed, when the binary is not built.
#include <criterion/criterion.h>
#include <lmdb.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/record.h"
#include "store/store.h"
#include "tests/store/lmdb_raw.h"
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
    cr_assert_eq(run("/nonexistent/cache", out, sizeof out), 2);   // input error: exit 2
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
    cr_assert(strstr(out, "verified:       37 records, 0 undecodable, 0 stray keys, 0 bad labels, 0 with"), "%s",
              out);
    // Corrupt record 20 (raw LMDB, store closed): --verify must say so.
    uint8_t key[8] = {0, 0, 0, 0, 0, 0, 0, 20};
    raw_put(dir, key, 8, "\xc1\xc1\xc1\xc1\xc1", 5);
    cr_assert_eq(run(args, out, sizeof out), 2, "%s", out);
    cr_assert(strstr(out, "36 records, 1 undecodable") && strstr(out, "index 20"), "%s", out);
    rm_rf(dir);
    free(dir);
}

static char *small_cache(const char *name, int nrec) {
    char *dir = test_tmpdir(name);
    store_meta m = td_meta(2, 1, 1, false);
    store *s;
    cr_assert_eq(store_create(&s, dir, &m, NULL), 0);
    float buf[8];
    for (int i = 0; i < nrec; i++) {
        store_record r = td_record(buf, (uint64_t)i, 2, false);
        r.label = i % 3;
        cr_assert_eq(store_put_batch(s, &r, 1, NULL), 0);
    }
    store_close(&s);
    return dir;
}

// Issue 15 item 10: keys that are not record indices and labels out of
// range used to pass --verify (records: N+1, verified: N, exit 0).
Test(store_info, verify_flags_stray_keys_labels_and_nan) {
    if (access(TOOL, X_OK) != 0) cr_skip_test("%s not built (run make)", TOOL);
    char out[8192], args[700];
    char *dir = small_cache("si-stray", 5);
    raw_put(dir, "zzzz", 4, "\x00", 1);   // sorts after __meta__: the index iterator never sees it
    snprintf(args, sizeof args, "--verify %s", dir);
    cr_assert_eq(run(args, out, sizeof out), 2, "%s", out);
    cr_assert(strstr(out, "5 records, 0 undecodable, 1 stray keys") && strstr(out, "not a record index"), "%s", out);
    rm_rf(dir);
    free(dir);

    dir = small_cache("si-label", 5);
    snprintf(args, sizeof args, "--verify %s", dir);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    snprintf(args, sizeof args, "--num-classes 2 %s", dir);   // labels 0, 1, 2: 2 is out
    cr_assert_eq(run(args, out, sizeof out), 2, "%s", out);
    cr_assert(strstr(out, "1 bad labels") && strstr(out, "index 2: label 2 outside -1..1"), "%s", out);
    snprintf(args, sizeof args, "--num-classes 0 %s", dir);
    cr_assert_eq(run(args, out, sizeof out), 2, "%s", out);
    cr_assert(strstr(out, "--num-classes wants"), "%s", out);
    // A NaN in sigma of record 3 (the writer refuses one; a damaged file can hold it).
    store *s;
    cr_assert_eq(store_open(&s, dir, NULL, NULL, NULL), 0);
    float mu[2], sg[2];
    int32_t lab;
    cr_assert_eq(store_get(s, mu, sg, &lab, 3, false), 0);
    store_close(&s);
    uint8_t key[8] = {0, 0, 0, 0, 0, 0, 0, 3}, val[64];
    size_t hl;
    cr_assert_eq(store_record_header(val, sizeof val, &hl, lab, 2, false), 0);
    sg[1] = NAN;
    memcpy(val + hl, mu, 8);
    memcpy(val + hl + 8, sg, 8);
    raw_put(dir, key, 8, val, hl + 16);
    snprintf(args, sizeof args, "--verify %s", dir);
    cr_assert_eq(run(args, out, sizeof out), 2, "%s", out);
    cr_assert(strstr(out, "1 with non-finite") && strstr(out, "index 3: sigma[1] = nan"), "%s", out);
    rm_rf(dir);
    free(dir);
}

// Issue 15 item 1: a data.mdb cut short made every reader die of SIGBUS.
Test(store_info, truncated_data_file_is_refused) {
    if (access(TOOL, X_OK) != 0) cr_skip_test("%s not built (run make)", TOOL);
    char out[8192], args[700], path[700];
    char *dir = small_cache("si-trunc", 400);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(truncate(path, st.st_size - 3 * 4096), 0);
    snprintf(args, sizeof args, "--verify %s", dir);
    cr_assert_eq(run(args, out, sizeof out), 2, "%s", out);   // not 135 (SIGBUS)
    cr_assert(strstr(out, "data.mdb is truncated") && strstr(out, "cut short"), "%s", out);
    store *s = NULL;
    cr_assert_eq(store_open(&s, dir, NULL, NULL, NULL), STORE_ETRUNC);
    cr_assert_null(s);
    rm_rf(dir);
    free(dir);
}
