// Bad input on disk gets a clear error: paths that are not caches, LMDB
// environments that are not latent caches, metas that do not match what the
// caller expects, corrupt records and a corrupt meta (written with raw LMDB
// calls after the store is closed, since LMDB forbids opening one
// environment twice in a process).
#include <criterion/criterion.h>
#include <fcntl.h>
#include <lmdb.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/meta.h"
#include "store/record.h"
#include "store/store.h"
#include "tests/store/lmdb_raw.h"
#include "tests/store/store_testdata.h"
#include "tests/util.h"

#define ASSERT_OK(expr)                                                                  \
    do {                                                                                 \
        int rc_ = (expr);                                                                \
        cr_assert_eq(rc_, 0, "%s -> %d (%s: %s)", #expr, rc_, vel_strerror(rc_),       \
                     vel_error_detail());                                                \
    } while (0)

#define ASSERT_ERR(expr, code, needle)                                                   \
    do {                                                                                 \
        int rc_ = (expr);                                                                \
        cr_assert_eq(rc_, code, "%s -> %d (%s: %s), want %d", #expr, rc_,                \
                     vel_strerror(rc_), vel_error_detail(), code);                     \
        cr_assert(strstr(vel_error_detail(), needle), "detail \"%s\" lacks \"%s\"",      \
                  vel_error_detail(), needle);                                           \
    } while (0)

static void make_cache(const char *dir, uint64_t n) {
    store_meta m = td_meta(2, 2, 2, false);
    store *s;
    ASSERT_OK(store_create(&s, dir, &m, NULL));
    float buf[32];
    for (uint64_t i = 0; i < n; i++) {
        store_record r = td_record(buf, i, 8, false);
        ASSERT_OK(store_put_batch(s, &r, 1, NULL));
    }
    store_close(&s);
}

Test(store_errors, paths_that_are_not_caches) {
    char *dir = test_tmpdir("store-paths");
    store *s = (store *)0x1;
    char p[512];
    snprintf(p, sizeof p, "%s/nope", dir);
    ASSERT_ERR(store_open(&s, p, NULL, NULL, NULL), STORE_ENOTCACHE, "nope");
    cr_assert_null(s);
    ASSERT_ERR(store_open_rw(&s, p, NULL, NULL, NULL), STORE_ENOTCACHE, "missing");
    // A plain file.
    snprintf(p, sizeof p, "%s/file", dir);
    FILE *f = fopen(p, "w");
    fputs("hello", f);
    fclose(f);
    ASSERT_ERR(store_open(&s, p, NULL, NULL, NULL), STORE_ENOTCACHE, "not a directory");
    store_meta m = td_meta(2, 1, 1, false);
    ASSERT_ERR(store_create(&s, p, &m, NULL), STORE_ENOTCACHE, "not a directory");
    // An empty directory: open must not create anything in it.
    snprintf(p, sizeof p, "%s/empty", dir);
    mkdir(p, 0775);
    ASSERT_ERR(store_open(&s, p, NULL, NULL, NULL), STORE_ENOTCACHE, "data.mdb");
    char q[600];
    snprintf(q, sizeof q, "%s/data.mdb", p);
    cr_assert_neq(access(q, F_OK), 0, "open created files");
    // A directory whose data.mdb is not LMDB.
    snprintf(p, sizeof p, "%s/garbage", dir);
    mkdir(p, 0775);
    snprintf(q, sizeof q, "%s/data.mdb", p);
    f = fopen(q, "w");
    for (int i = 0; i < 3000; i++) fputc(i * 7, f);
    fclose(f);
    ASSERT_ERR(store_open(&s, p, NULL, NULL, NULL), STORE_ENOTCACHE, "not an LMDB cache");
    ASSERT_ERR(store_create(&s, p, &m, NULL), STORE_ENOTCACHE, "not an LMDB cache");
    cr_assert_null(s);
    snprintf(q, sizeof q, "%s/lock.mdb", p);
    cr_assert_neq(access(q, F_OK), 0, "a failed open left lock.mdb behind");
    ASSERT_ERR(store_open(&s, "", NULL, NULL, NULL), VEL_EINVAL, "empty path");
    rm_rf(dir); free(dir);
}

Test(store_errors, lmdb_env_without_meta_is_not_a_cache) {
    char *dir = test_tmpdir("store-nometa");
    const char key[8] = {0, 0, 0, 0, 0, 0, 0, 1};
    raw_put(dir, key, 8, "other data", 10);
    store *s;
    ASSERT_ERR(store_open(&s, dir, NULL, NULL, NULL), STORE_ENOMETA, "__meta__");
    store_meta m = td_meta(2, 1, 1, false);
    ASSERT_ERR(store_create(&s, dir, &m, NULL), STORE_ENOMETA, "refusing");
    rm_rf(dir); free(dir);
}

Test(store_errors, meta_mismatch_hash_and_shape) {
    char *dir = test_tmpdir("store-mismatch");
    make_cache(dir, 3);
    store *s;
    int64_t good[3] = {2, 2, 2}, bad[3] = {2, 4, 4};
    ASSERT_OK(store_open(&s, dir, "sha256:tok-test", good, NULL));
    store_close(&s);
    ASSERT_ERR(store_open(&s, dir, "sha256:other-tokenizer", good, NULL), STORE_EHASH, "other-tokenizer");
    cr_assert_null(s);
    ASSERT_ERR(store_open(&s, dir, NULL, bad, NULL), STORE_ESHAPE, "2x4x4");
    store_meta m = td_meta(2, 2, 2, false);
    strcpy(m.tokenizer_hash, "sha256:new");
    ASSERT_ERR(store_create(&s, dir, &m, NULL), STORE_EHASH, "sha256:new");
    m = td_meta(4, 2, 2, false);
    ASSERT_ERR(store_create(&s, dir, &m, NULL), STORE_ESHAPE, "4x2x2");
    rm_rf(dir); free(dir);
}

Test(store_errors, corrupt_records_wrong_size_and_bad_header) {
    char *dir = test_tmpdir("store-corrupt");
    make_cache(dir, 10);
    uint8_t key[8] = {0};
    // Record 3: a valid header, payload one float short.
    uint8_t val[256];
    size_t hl;
    ASSERT_OK(store_record_header(val, sizeof val, &hl, 3, 8, false));
    memset(val + hl, 0, 64);
    key[7] = 3;
    raw_put(dir, key, 8, val, hl + 60);
    // Record 4: header says n=4, cache layout needs 8.
    ASSERT_OK(store_record_header(val, sizeof val, &hl, 4, 4, false));
    key[7] = 4;
    raw_put(dir, key, 8, val, hl + 32);
    // Record 5: malformed msgpack header (0xc1 is never valid).
    memset(val, 0xc1, 80);
    key[7] = 5;
    raw_put(dir, key, 8, val, 80);
    // Record 6: msgpack map truncated in the middle.
    ASSERT_OK(store_record_header(val, sizeof val, &hl, 6, 8, false));
    key[7] = 6;
    raw_put(dir, key, 8, val, hl / 2);
    // A key that is neither an index nor __meta__.
    raw_put(dir, "\0\0\0\x20", 4, "x", 1);

    store *s;
    ASSERT_OK(store_open(&s, dir, NULL, NULL, NULL));
    float mu[8], sg[8];
    ASSERT_ERR(store_get(s, mu, sg, NULL, 3, false), STORE_ERECSIZE, "index 3");
    ASSERT_ERR(store_get(s, mu, sg, NULL, 4, false), STORE_ERECSIZE, "n=4");
    ASSERT_ERR(store_get(s, mu, sg, NULL, 5, false), STORE_EHEADER, "index 5");
    ASSERT_ERR(store_get(s, mu, sg, NULL, 6, false), STORE_EHEADER, "index 6");
    ASSERT_OK(store_get(s, mu, sg, NULL, 7, false));
    uint64_t idx[3] = {1, 5, 2};
    ASSERT_ERR(store_read_batch(s, mu, NULL, NULL, idx, NULL, 3), STORE_EHEADER, "index 5");
    // Iteration stops with the error at the first corrupt record.
    store_iter *it;
    ASSERT_OK(store_iter_open(s, &it, 0));
    store_view v;
    int rc, seen = 0;
    while ((rc = store_iter_next(it, &v)) == 1) seen++;
    cr_assert_eq(rc, STORE_ERECSIZE);
    cr_assert_eq(seen, 3);
    store_iter_close(&it);
    // The stray 4-byte key 00 00 00 20 sorts after index 9 (memcmp order)
    // and before __meta__: iteration from 7 reaches it, and so does missing.
    ASSERT_OK(store_iter_open(s, &it, 7));
    seen = 0;
    while ((rc = store_iter_next(it, &v)) == 1) seen++;
    cr_assert_eq(seen, 3);
    cr_assert_eq(rc, STORE_EKEY, "got %d %s", rc, vel_error_detail());
    store_iter_close(&it);
    uint64_t *miss;
    size_t nmiss;
    ASSERT_ERR(store_missing(s, 0, 100, &miss, &nmiss), STORE_EKEY, "key of 4 bytes");
    cr_assert_null(miss);
    store_close(&s);
    // Verify mode on put reports a corrupt existing record, not a mismatch.
    store_meta m = td_meta(2, 2, 2, false);
    ASSERT_OK(store_create(&s, dir, &m, NULL));
    float buf[32];
    store_record r = td_record(buf, 5, 8, false);
    ASSERT_ERR(store_put_batch(s, &r, 1, NULL), STORE_EHEADER, "msgpack");
    store_close(&s);
    rm_rf(dir); free(dir);
}

Test(store_errors, corrupt_meta_record) {
    char *dir = test_tmpdir("store-badmeta");
    make_cache(dir, 2);
    uint8_t junk[40];
    memset(junk, 0x91, sizeof junk);   // nested arrays, truncated
    raw_put(dir, STORE_META_KEY, 8, junk, sizeof junk);
    store *s;
    ASSERT_ERR(store_open(&s, dir, NULL, NULL, NULL), STORE_EMETA, "msgpack");
    store_meta m = td_meta(2, 2, 2, false);
    ASSERT_ERR(store_create(&s, dir, &m, NULL), STORE_EMETA, "meta");
    // A well-formed map with a wrong format tag.
    uint8_t other[] = {0x81, 0xa1, 'a', 0x01};
    raw_put(dir, STORE_META_KEY, 8, other, sizeof other);
    ASSERT_ERR(store_open(&s, dir, NULL, NULL, NULL), STORE_EMETA, "missing");
    rm_rf(dir); free(dir);
}

// Issue 15 item 9: a NaN or infinity never enters the cache; the detail names
// the record, the tensor and the element.
Test(store_errors, writer_refuses_non_finite_values) {
    char *dir = test_tmpdir("nonfinite");
    store_meta m = td_meta(2, 1, 1, false);
    store *s;
    cr_assert_eq(store_create(&s, dir, &m, NULL), 0);
    float buf[8];
    store_record r = td_record(buf, 5, 2, false);
    float sigma[2] = {0.5f, NAN};
    r.sigma = sigma;
    cr_assert_eq(store_put_batch(s, &r, 1, NULL), VEL_ENONFINITE);
    cr_assert(strstr(vel_error_detail(), "index 5): sigma[1] = nan"), "%s", vel_error_detail());
    float mu[2] = {INFINITY, 0};
    r = td_record(buf, 6, 2, false);
    r.mu = mu;
    cr_assert_eq(store_put_batch(s, &r, 1, NULL), VEL_ENONFINITE);
    cr_assert(strstr(vel_error_detail(), "mu[0] = inf"), "%s", vel_error_detail());
    uint64_t n = 1;
    cr_assert_eq(store_count(s, &n), 0);
    cr_assert_eq(n, 0, "nothing was written");
    store_close(&s);
    rm_rf(dir);
    free(dir);
}

// A fault while a read transaction is open (LMDB following a damaged page,
// a file cut short under the map) ends the process with exit 2 and one line
// naming the cache; outside read transactions the guard steps aside and the
// fault is what it would be without it. Each case runs in a forked child
// that makes a real fault: a null write (SIGSEGV), or a read of an mmap'ed
// file after truncating it (SIGBUS).
enum { FAULT_NONE, FAULT_SEGV, FAULT_BUS };

static void make_fault(int kind, const char *dir) {
    if (kind == FAULT_SEGV) {
        static volatile uintptr_t bad = 8;   // an address never mapped (the compiler cannot see it)
        *(volatile int *)bad = 1;
    }
    char p[600];
    snprintf(p, sizeof p, "%s/bus-file", dir);
    int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, 8192)) _exit(90);
    volatile char *m = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED || ftruncate(fd, 0)) _exit(91);
    (void)m[4096];
}

// Child: opens the cache, holds `open_txns` read transactions (nested: two
// begun, one ended when 2 is asked), faults. Returns the wait status; stderr in DIR/err.
static int fault_in_child(const char *dir, int open_txns, int kind) {
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        char p[600];
        snprintf(p, sizeof p, "%s/err", dir);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || dup2(fd, 2) < 0) _exit(92);
        store *s = NULL;
        store_txn *t1 = NULL, *t2 = NULL;
        if (store_open(&s, dir, NULL, NULL, NULL)) _exit(93);
        if (store_txn_begin(s, &t1)) _exit(94);   // installs the handler
        if (open_txns == 0) store_txn_end(&t1);
        if (open_txns == 2) {
            if (store_txn_begin(s, &t2)) _exit(95);
            store_txn_end(&t2);   // one of two ended: still guarded
        }
        make_fault(kind, dir);
        _exit(96);   // the fault did not happen
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return st;
}

Test(store_errors, fault_inside_a_read_txn_exits_2_naming_the_cache) {
    char *dir = test_tmpdir("store_fault_guard");
    make_cache(dir, 4);
    char p[600];
    snprintf(p, sizeof p, "%s/err", dir);
    const struct { int txns, kind; const char *says; } guarded[] = {
        {1, FAULT_SEGV, "faulted inside LMDB"}, {2, FAULT_SEGV, "faulted inside LMDB"},
        {1, FAULT_BUS, "hit the end of its file"},
    };
    for (size_t i = 0; i < sizeof guarded / sizeof *guarded; i++) {
        int st = fault_in_child(dir, guarded[i].txns, guarded[i].kind);
        char *err = test_read_file(p, NULL);
        cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 2, "case %zu: status %#x, stderr: %s", i, st, err);
        cr_expect(err && strstr(err, guarded[i].says) && strstr(err, dir), "case %zu: stderr: %s", i, err);
        free(err);
    }
    // No read transaction open: not the guard's business (killed by the
    // signal; under a sanitizer, its own report and exit).
    for (int kind = FAULT_SEGV; kind <= FAULT_BUS; kind++) {
        int st = fault_in_child(dir, 0, kind);
        char *err = test_read_file(p, NULL);
        cr_expect(!(WIFEXITED(st) && (WEXITSTATUS(st) == 2 || WEXITSTATUS(st) >= 90)),
                  "kind %d without a txn: status %#x, stderr: %s", kind, st, err);
        cr_expect(!err || !strstr(err, "store: "), "kind %d: the guard spoke: %s", kind, err);
        free(err);
    }
    rm_rf(dir);
    free(dir);
}

// Damage in LMDB's own meta pages (both copies): a root page past the end of
// the file (LMDB: MDB_PAGE_NOTFOUND) and an entry count no file of this size
// could hold (it used to reach malloc as ~2^50 indices) are STORE_ECORRUPT,
// an input error. Offsets: LMDB 0.9's MDB_meta after the 16-byte page
// header; the main database's md_entries at 120, md_root at 128.
static void patch_meta_pages(const char *dir, int off, uint64_t value) {
    char p[600];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    int fd = open(p, O_RDWR);
    cr_assert(fd >= 0);
    const long psize = sysconf(_SC_PAGESIZE);
    for (int page = 0; page < 2; page++) {
        uint32_t magic = 0;
        cr_assert_eq(pread(fd, &magic, 4, page * psize + 16), 4);
        cr_assert_eq(magic, 0xBEEFC0DEu, "page %d is not an LMDB meta page", page);
        cr_assert_eq(pwrite(fd, &value, 8, page * psize + off), 8);
    }
    close(fd);
}

Test(store_errors, damaged_meta_pages_are_a_corrupt_cache) {
    char *dir = test_tmpdir("store_meta_pages");
    make_cache(dir, 4);
    store *s = NULL;
    ASSERT_OK(store_open(&s, dir, NULL, NULL, NULL));
    uint64_t n = 0;
    ASSERT_OK(store_count(s, &n));
    cr_assert_eq(n, 4);
    store_close(&s);

    patch_meta_pages(dir, 120, (uint64_t)1 << 50);   // md_entries
    ASSERT_OK(store_open(&s, dir, NULL, NULL, NULL));
    ASSERT_ERR(store_count(s, &n), STORE_ECORRUPT, "entries claimed");
    uint64_t *idx = NULL;
    size_t k = 0;
    ASSERT_ERR(store_list_indices(s, &idx, &k), STORE_ECORRUPT, "entries claimed");
    cr_assert_null(idx);
    store_close(&s);
    cr_assert_eq(vel_exit_code(STORE_ECORRUPT), 2, "a damaged cache is an input error");

    patch_meta_pages(dir, 120, 5);
    patch_meta_pages(dir, 128, (uint64_t)1 << 40);   // md_root
    ASSERT_ERR(store_open(&s, dir, NULL, NULL, NULL), STORE_ECORRUPT, "MDB_PAGE_NOTFOUND");
    rm_rf(dir);
    free(dir);
}
