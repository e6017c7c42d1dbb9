// env.c: opening, creating and closing a cache, transaction helpers (map
// resize and growth), the meta record, count. Records: read.c and write.c.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base.h"
#include "store/internal.h"
#include "store/meta.h"

#define DEFAULT_MAP_SIZE ((size_t)64 << 20)
#define DEFAULT_MAX_MAP_SIZE ((size_t)4 << 40)
// The map size is rounded up by LMDB to whole pages; keep ours at least this.
#define MIN_MAP_SIZE ((size_t)1 << 20)

int store_rtxn_begin(store *s, MDB_txn **txn) {
    for (int tries = 0;; tries++) {
        int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
        if (rc == 0) {
            atomic_fetch_add(&s->open_txns, 1);
            store_guard_enter(s->path);
            return 0;
        }
        // Another process grew the map past ours: adopt its size. LMDB
        // allows that only with no transaction of ours open.
        if (rc == MDB_MAP_RESIZED && tries < 8) {
            if (atomic_load(&s->open_txns) != 0)
                return vel_fail(STORE_EBUSY, "%s: another process grew the map; end this "
                                  "process's read transactions to follow it", s->path);
            if ((rc = mdb_env_set_mapsize(s->env, 0)) != 0)
                return store_lmdb_fail(rc, "mdb_env_set_mapsize(0)");
            continue;
        }
        if (rc == MDB_READERS_FULL)
            return vel_fail(STORE_ELMDB, "%s: all LMDB reader slots in use (raise "
                              "store_opts.max_readers)", s->path);
        return store_lmdb_fail(rc, "mdb_txn_begin(read)");
    }
}

void store_rtxn_end(store *s, MDB_txn *txn) {
    mdb_txn_abort(txn);
    atomic_fetch_sub(&s->open_txns, 1);
    store_guard_leave();
}

int store_rcursor_open(store *s, MDB_txn **txn, MDB_cursor **cur) {
    int rc = store_rtxn_begin(s, txn);
    if (rc) return rc;
    if ((rc = mdb_cursor_open(*txn, s->dbi, cur))) {
        store_rtxn_end(s, *txn);
        return store_lmdb_fail(rc, "mdb_cursor_open");
    }
    return 0;
}

int store_wtxn_begin(store *s, MDB_txn **txn) {
    if (s->readonly) return vel_fail(STORE_EREADONLY, "%s: opened read-only", s->path);
    for (int tries = 0;; tries++) {
        // Blocks while a writer of any process holds LMDB's write lock.
        int rc = mdb_txn_begin(s->env, NULL, 0, txn);
        if (rc == 0) return 0;
        if (rc == MDB_MAP_RESIZED && tries < 8) {
            if (atomic_load(&s->open_txns) != 0)
                return vel_fail(STORE_EBUSY, "%s: map was resized by another process while "
                                  "this one holds a read transaction", s->path);
            if ((rc = mdb_env_set_mapsize(s->env, 0)) != 0)
                return store_lmdb_fail(rc, "mdb_env_set_mapsize(0)");
            continue;
        }
        return store_lmdb_fail(rc, "mdb_txn_begin(write)");
    }
}

int store_grow(store *s, size_t more) {
    if (atomic_load(&s->open_txns) != 0)
        return vel_fail(STORE_EBUSY, "%s: map is full and cannot grow while this process "
                          "holds a read transaction", s->path);
    // Reader slots left by killed processes pin old pages and make the map
    // look fuller than it is; clear them before deciding to grow.
    int dead = 0;
    int rc = mdb_reader_check(s->env, &dead);
    if (rc) return store_lmdb_fail(rc, "mdb_reader_check");
    MDB_envinfo info;
    if ((rc = mdb_env_info(s->env, &info))) return store_lmdb_fail(rc, "mdb_env_info");
    size_t cur = info.me_mapsize, cap = s->opts.max_map_size;
    if (cur >= cap)
        return vel_fail(STORE_EMAPCAP, "%s: map of %zu bytes is full and at its cap", s->path, cur);
    // Doubling keeps the number of grow-and-retry rounds logarithmic; the
    // second term covers one batch larger than the whole map.
    size_t want = cur > cap / 2 ? cap : 2 * cur;
    if (more > (cap - cur) / 2) want = cap;
    else if (want < cur + 2 * more) want = cur + 2 * more;
    if ((rc = mdb_env_set_mapsize(s->env, want)) != 0)
        return store_lmdb_fail(rc, "mdb_env_set_mapsize(grow)");
    return 0;
}

int store_meta_read_txn(MDB_txn *txn, MDB_dbi dbi, store_meta *m) {
    MDB_val k = {8, (void *)STORE_META_KEY}, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc == MDB_NOTFOUND) return vel_fail(STORE_ENOMETA, "no __meta__ record");
    if (rc) return store_lmdb_fail(rc, "mdb_get(__meta__)");
    return store_meta_decode(m, v.mv_data, v.mv_size);
}

int store_meta_write_txn(MDB_txn *txn, MDB_dbi dbi, const store_meta *m) {
    char *buf;
    size_t len;
    int rc = store_meta_encode(m, &buf, &len);
    if (rc) return rc;
    MDB_val k = {8, (void *)STORE_META_KEY}, v = {len, buf};
    rc = mdb_put(txn, dbi, &k, &v, 0);
    free(buf);
    return rc;   // raw LMDB code: the caller handles MDB_MAP_FULL
}

static bool is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool has_file(const char *path, const char *name) {
    char *p;
    if (asprintf(&p, "%s/%s", path, name) < 0) return false;
    struct stat st;
    bool ok = stat(p, &st) == 0 && S_ISREG(st.st_mode);
    free(p);
    return ok;
}

// LMDB maps data.mdb and trusts its meta page: a file cut short (a copy
// that stopped early, a full disk) turns the first read of a missing page
// into SIGBUS. The committed meta names the last page in use, so a file
// shorter than (last page + 1) x page size is refused before any page is
// touched.
static int check_file_size(MDB_env *env, const char *path) {
    MDB_envinfo info;
    MDB_stat st;
    int rc = mdb_env_info(env, &info);
    if (!rc) rc = mdb_env_stat(env, &st);
    if (rc) return store_lmdb_fail(rc, "mdb_env_info");
    char *p;
    if (asprintf(&p, "%s/data.mdb", path) < 0) return vel_fail(VEL_ENOMEM, "asprintf");
    struct stat fs;
    int e = stat(p, &fs);
    free(p);
    if (e) return vel_fail(VEL_EIO, "%s/data.mdb: %s", path, strerror(errno));
    uint64_t need = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    if ((uint64_t)fs.st_size < need)
        return vel_fail(STORE_ETRUNC, "%s/data.mdb is %lld bytes but its last page ends at byte %llu "
                        "(page %zu of %u bytes): the file was cut short; restore or re-encode the cache",
                        path, (long long)fs.st_size, (unsigned long long)need, (size_t)info.me_last_pgno,
                        st.ms_psize);
    return 0;
}

// Opens the environment at an existing directory; s->opts/readonly set.
static int env_open(store *s, const char *path) {
    s->path = strdup(path);
    if (!s->path) return vel_fail(VEL_ENOMEM, "strdup");
    int rc = mdb_env_create(&s->env);
    if (rc) return store_lmdb_fail(rc, "mdb_env_create");
    if ((rc = mdb_env_set_maxreaders(s->env, s->opts.max_readers ? s->opts.max_readers : 126)))
        return store_lmdb_fail(rc, "mdb_env_set_maxreaders");
    // Readers adopt the size recorded in the file; writers start from the
    // configured size (LMDB never goes below the data already there).
    if (!s->readonly && (rc = mdb_env_set_mapsize(s->env, s->opts.map_size)))
        return store_lmdb_fail(rc, "mdb_env_set_mapsize");
    // NOTLS: read txns are not tied to a thread and reader slots to txns;
    // NORDAHEAD: training reads records at random, readahead only wastes
    // page cache once the cache is larger than RAM.
    unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
    if (s->readonly) flags |= MDB_RDONLY;
    if (s->opts.nosync) flags |= MDB_NOSYNC;
    // LMDB creates lock.mdb before it looks at data.mdb; if the directory
    // turns out not to be a cache, remove the lock file it left there.
    bool had_lock = has_file(path, "lock.mdb");
    if ((rc = mdb_env_open(s->env, path, flags, 0664))) {
        char *lock;
        if (!had_lock && asprintf(&lock, "%s/lock.mdb", path) >= 0) {
            unlink(lock);
            free(lock);
        }
        return vel_fail(STORE_ENOTCACHE, "%s: not an LMDB cache (mdb_env_open: %s)", path,
                          mdb_strerror(rc));
    }
    if ((rc = check_file_size(s->env, path))) return rc;
    // Reader slots of processes that died (SIGKILL) would pin old pages.
    int dead = 0;
    if ((rc = mdb_reader_check(s->env, &dead))) return store_lmdb_fail(rc, "mdb_reader_check");
    return 0;
}

static store *store_new(const store_opts *opts, bool readonly) {
    store *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if (opts) s->opts = *opts;
    if (!s->opts.map_size) s->opts.map_size = DEFAULT_MAP_SIZE;
    if (s->opts.map_size < MIN_MAP_SIZE) s->opts.map_size = MIN_MAP_SIZE;
    if (!s->opts.max_map_size) s->opts.max_map_size = DEFAULT_MAX_MAP_SIZE;
    if (s->opts.max_map_size < s->opts.map_size) s->opts.max_map_size = s->opts.map_size;
    s->readonly = readonly;
    s->dbi = 0;
    atomic_init(&s->open_txns, 0);
    return s;
}

void store_close(store **sp) {
    if (!sp || !*sp) return;
    store *s = *sp;
    CHECK(atomic_load(&s->open_txns) == 0);   // end every txn/iterator first
    if (s->env) {
        if (s->opts.nosync && !s->readonly) mdb_env_sync(s->env, 1);
        mdb_env_close(s->env);
    }
    free(s->path);
    free(s);
    *sp = NULL;
}

static int open_existing(store **out, const char *path, const char *expect_hash,
                         const int64_t *expect_shape, const store_opts *opts, bool readonly) {
    *out = NULL;
    if (!path || !*path) return vel_fail(VEL_EINVAL, "store: empty path");
    if (!is_dir(path))
        return vel_fail(STORE_ENOTCACHE, "%s: not a cache directory (missing or not a directory)", path);
    if (!has_file(path, "data.mdb"))
        return vel_fail(STORE_ENOTCACHE, "%s: directory holds no data.mdb (not an LMDB cache)", path);
    store *s = store_new(opts, readonly);
    if (!s) return vel_fail(VEL_ENOMEM, "store: handle");
    int rc = env_open(s, path);
    MDB_txn *txn = NULL;
    if (!rc) rc = store_rtxn_begin(s, &txn);
    if (!rc && (rc = mdb_dbi_open(txn, NULL, 0, &s->dbi)))
        rc = store_lmdb_fail(rc, "mdb_dbi_open");
    if (!rc) {
        rc = store_meta_read_txn(txn, s->dbi, &s->meta);
        if (rc == STORE_ENOMETA) vel_fail(rc, "%s: LMDB environment without __meta__ (not a latent cache)", path);
    }
    if (txn) store_rtxn_end(s, txn);
    if (!rc) rc = store_meta_expect(&s->meta, expect_hash, expect_shape);
    if (rc) { store_close(&s); return rc; }
    *out = s;
    return 0;
}

int store_open(store **out, const char *path, const char *expect_hash,
               const int64_t *expect_shape, const store_opts *opts) {
    return open_existing(out, path, expect_hash, expect_shape, opts, true);
}

int store_open_rw(store **out, const char *path, const char *expect_hash,
                  const int64_t *expect_shape, const store_opts *opts) {
    return open_existing(out, path, expect_hash, expect_shape, opts, false);
}

// Inside one write txn, so that concurrent creators agree: the first writes
// the meta, the others find it and check it.
static int create_meta(store *s, const store_meta *want) {
    for (;;) {
        MDB_txn *txn;
        int rc = store_wtxn_begin(s, &txn);
        if (rc) return rc;
        if ((rc = mdb_dbi_open(txn, NULL, 0, &s->dbi))) {
            mdb_txn_abort(txn);
            return store_lmdb_fail(rc, "mdb_dbi_open");
        }
        rc = store_meta_read_txn(txn, s->dbi, &s->meta);
        if (rc == 0) {
            mdb_txn_abort(txn);
            return store_meta_compatible(&s->meta, want);
        }
        if (rc != STORE_ENOMETA) { mdb_txn_abort(txn); return rc; }
        MDB_stat st;
        if ((rc = mdb_stat(txn, s->dbi, &st))) { mdb_txn_abort(txn); return store_lmdb_fail(rc, "mdb_stat"); }
        if (st.ms_entries != 0) {
            mdb_txn_abort(txn);
            return vel_fail(STORE_ENOMETA, "%s: LMDB environment holds %zu keys but no __meta__ "
                              "(not a latent cache; refusing to write into it)", s->path, st.ms_entries);
        }
        rc = store_meta_write_txn(txn, s->dbi, want);
        if (rc == 0) rc = mdb_txn_commit(txn);
        else mdb_txn_abort(txn);
        if (rc == MDB_MAP_FULL) {
            if ((rc = store_grow(s, 1 << 20))) return rc;
            continue;
        }
        if (rc < 0 && rc > -300) return rc;   // our own code from encode
        if (rc) return store_lmdb_fail(rc, "writing __meta__");
        s->meta = *want;
        return 0;
    }
}

int store_create(store **out, const char *path, const store_meta *meta, const store_opts *opts) {
    *out = NULL;
    if (!path || !*path || !meta) return vel_fail(VEL_EINVAL, "store_create: empty path or meta");
    int rc = store_meta_validate(meta);
    if (rc) return rc;
    if (mkdir(path, 0775) != 0 && errno != EEXIST)
        return vel_fail(VEL_EIO, "%s: cannot create directory: %s", path, strerror(errno));
    if (!is_dir(path))
        return vel_fail(STORE_ENOTCACHE, "%s: exists and is not a directory", path);
    store *s = store_new(opts, false);
    if (!s) return vel_fail(VEL_ENOMEM, "store: handle");
    rc = env_open(s, path);
    if (!rc) rc = create_meta(s, meta);
    if (rc) { store_close(&s); return rc; }
    *out = s;
    return 0;
}

const store_meta *store_get_meta(const store *s) { return &s->meta; }

int store_meta_reload(store *s) {
    MDB_txn *txn;
    int rc = store_rtxn_begin(s, &txn);
    if (rc) return rc;
    store_meta m = {0};
    rc = store_meta_read_txn(txn, s->dbi, &m);
    store_rtxn_end(s, txn);
    if (!rc) s->meta = m;
    return rc;
}

int store_set_stats(store *s, const float *mean, const float *std) {
    for (;;) {
        MDB_txn *txn;
        int rc = store_wtxn_begin(s, &txn);
        if (rc) return rc;
        store_meta m = {0};
        if ((rc = store_meta_read_txn(txn, s->dbi, &m))) { mdb_txn_abort(txn); return rc; }
        memcpy(m.mean, mean, (size_t)m.shape[0] * sizeof(float));
        memcpy(m.std, std, (size_t)m.shape[0] * sizeof(float));
        m.has_stats = true;
        if ((rc = store_meta_validate(&m))) { mdb_txn_abort(txn); return rc; }
        rc = store_meta_write_txn(txn, s->dbi, &m);
        if (rc == 0) rc = mdb_txn_commit(txn);
        else mdb_txn_abort(txn);
        if (rc == MDB_MAP_FULL) {
            if ((rc = store_grow(s, 1 << 20))) return rc;
            continue;
        }
        if (rc < 0 && rc > -300) return rc;
        if (rc) return store_lmdb_fail(rc, "writing __meta__ stats");
        s->meta = m;
        return 0;
    }
}

int store_entries(store *s, MDB_txn *txn, size_t *entries) {
    MDB_stat st;
    int rc = mdb_stat(txn, s->dbi, &st);
    if (rc) return store_lmdb_fail(rc, "mdb_stat");
    // A damaged meta page can claim any count; every entry takes at least a
    // node header and its 8-byte key (16 bytes) of the file's pages.
    MDB_envinfo info;
    if ((rc = mdb_env_info(s->env, &info))) return store_lmdb_fail(rc, "mdb_env_info");
    const size_t room = ((size_t)info.me_last_pgno + 1) * st.ms_psize / 16;
    if (st.ms_entries > room)
        return vel_fail(STORE_ECORRUPT, "%s: %zu entries claimed, at most %zu fit its %zu pages", s->path,
                        st.ms_entries, room, (size_t)info.me_last_pgno + 1);
    *entries = st.ms_entries;
    return 0;
}

int store_count(store *s, uint64_t *n) {
    MDB_txn *txn;
    int rc = store_rtxn_begin(s, &txn);
    if (rc) return rc;
    size_t entries = 0;
    rc = store_entries(s, txn, &entries);
    store_rtxn_end(s, txn);
    if (rc) return rc;
    *n = entries ? entries - 1 : 0;   // the meta is always there
    return 0;
}

int store_map_size(store *s, size_t *bytes) {
    MDB_envinfo info;
    int rc = mdb_env_info(s->env, &info);
    if (rc) return store_lmdb_fail(rc, "mdb_env_info");
    *bytes = info.me_mapsize;
    return 0;
}
