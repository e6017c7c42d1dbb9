// dist.c: rank discovery, sharding, the backend-independent communicator
// calls, bucketed gradient sync and the NCCL id file (API: dist.h). The
// collective libraries live in dist/mpi.c and dist/nccl.cu and
// are reached through the dist_ops table (dist/backend.h).
#include "dist/dist.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/base.h"
#include "dist/backend.h"
#include "core/philox.h"

// ---- environment ----------------------------------------------------------

// 0 = unset, 1 = parsed, -1 = malformed (error recorded).
static int env_int(const char *name, int *out) {
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < 0 || v > 1000000) {
        vel_fail(DIST_EENV, "%s='%s' is not an integer in [0, 1000000]", name, s);
        return -1;
    }
    *out = (int)v;
    return 1;
}

int dist_env_read(dist_env *e) {
    static const struct { const char *tag, *rank, *size, *local; } fam[] = {
        {"RANK", "RANK", "WORLD_SIZE", "LOCAL_RANK"},
        {"SLURM", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"},
        {"OMPI", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"},
    };
    memset(e, 0, sizeof *e);
    for (size_t i = 0; i < sizeof fam / sizeof fam[0]; i++) {
        int rank = 0, world = 0, local = 0;
        int hr = env_int(fam[i].rank, &rank), hw = env_int(fam[i].size, &world);
        if (hr < 0 || hw < 0) return DIST_EENV;
        if (hr == 0 && hw == 0) continue;
        if (hr == 0 || hw == 0) {
            return vel_fail(DIST_EENV, "%s is set but %s is not", hr ? fam[i].rank : fam[i].size,
                           hr ? fam[i].size : fam[i].rank);
        }
        int hl = env_int(fam[i].local, &local);
        if (hl < 0) return DIST_EENV;
        if (world < 1 || rank >= world) {
            return vel_fail(DIST_EENV, "%s=%d must be below %s=%d (>= 1)", fam[i].rank, rank, fam[i].size, world);
        }
        if (local >= world) {
            return vel_fail(DIST_EENV, "%s=%d must be below %s=%d", fam[i].local, local, fam[i].size, world);
        }
        e->rank = rank;
        e->world = world;
        e->local_rank = local;
        snprintf(e->source, sizeof e->source, "%s", fam[i].tag);
        return 0;
    }
    e->world = 1;
    snprintf(e->source, sizeof e->source, "default");
    return 0;
}

// ---- sharding -------------------------------------------------------------

void dist_epoch_order(int64_t *order, int64_t n, uint64_t seed, int64_t epoch) {
    for (int64_t i = 0; i < n; i++) order[i] = i;
    // Fisher-Yates from the top; draw i uses Philox block i of stream `epoch`,
    // so the order is a pure function of (seed, epoch). The modulo bias of a
    // 64-bit draw is below n / 2^64: irrelevant for any data set.
    for (int64_t i = n - 1; i > 0; i--) {
        uint32_t w[4];
        philox_block(w, seed, (uint32_t)epoch, (uint64_t)i);
        uint64_t r = ((uint64_t)w[1] << 32) | w[0];
        int64_t j = (int64_t)(r % (uint64_t)(i + 1));
        int64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

int64_t dist_steps_per_epoch(int64_t n, int64_t global_batch) {
    return global_batch > 0 && n > 0 ? n / global_batch : 0;
}

int dist_local_batch(int64_t *out, int64_t *local_count, const int64_t *order, int64_t n,
                     int64_t global_batch, int64_t step, int rank, int world) {
    *local_count = 0;
    if (world < 1 || rank < 0 || rank >= world || global_batch < 1) return VEL_EINVAL;
    if (global_batch % world) {
        return vel_fail(VEL_EINVAL, "global batch %lld is not a multiple of the world size %d",
                       (long long)global_batch, world);
    }
    if (step < 0 || step >= dist_steps_per_epoch(n, global_batch)) {
        return vel_fail(VEL_ERANGE, "step %lld is past the %lld whole batches of the epoch", (long long)step,
                       (long long)dist_steps_per_epoch(n, global_batch));
    }
    int64_t local = global_batch / world;
    const int64_t *src = order + step * global_batch + (int64_t)rank * local;
    memcpy(out, src, (size_t)local * sizeof *out);
    *local_count = local;
    return 0;
}

// ---- communicator ---------------------------------------------------------

int dist_backend_parse(const char *name, dist_backend *b) {
    if (name && strcmp(name, "none") == 0) *b = DIST_NONE;
    else if (name && strcmp(name, "mpi") == 0) *b = DIST_MPI;
    else if (name && strcmp(name, "nccl") == 0) *b = DIST_NCCL;
    else {
        return vel_fail(DIST_EBACKEND, "unknown distributed backend '%s' (expected none, mpi or nccl)",
                       name ? name : "(null)");
    }
    return 0;
}

const char *dist_backend_name(dist_backend b) {
    return b == DIST_MPI ? "mpi" : b == DIST_NCCL ? "nccl" : "none";
}

// DIST_NONE: one rank, the collectives are identities.
static int none_sum(dist_comm *c, float *buf, int64_t n) { (void)c; (void)buf; (void)n; return 0; }
static int none_start(dist_comm *c, float *buf, int64_t n, void **req) {
    (void)c; (void)buf; (void)n;
    *req = NULL;
    return 0;
}
static int none_wait(dist_comm *c, void **req) { (void)c; *req = NULL; return 0; }
static int host_scale(dist_comm *c, float *buf, int64_t n, float s) {
    (void)c;
    for (int64_t i = 0; i < n; i++) buf[i] *= s;
    return 0;
}
static int none_bcast(dist_comm *c, float *buf, int64_t n, int root) {
    (void)c; (void)buf; (void)n;
    return root == 0 ? 0 : VEL_EINVAL;
}
static int none_barrier(dist_comm *c) { (void)c; return 0; }
static void none_fini(dist_comm *c) { (void)c; }
static const dist_ops none_ops = {none_sum, none_start, none_wait, host_scale,
                                  none_bcast, none_barrier, none_fini};

int dist_init(dist_comm **out, const dist_opts *o) {
    *out = NULL;
    dist_env e;
    int r = dist_env_read(&e);
    if (r) return r;
    dist_comm *c = xcalloc(1, sizeof *c);
    c->backend = o->backend;
    c->rank = e.rank;
    c->world = e.world;
    c->local_rank = e.local_rank;
    switch (o->backend) {
    case DIST_NONE:
        if (e.world != 1) {
            vel_fail(DIST_EENV, "backend none needs world size 1, but %s says %d ranks (use mpi or nccl)",
                           e.source, e.world);
            free(c);
            return DIST_EENV;
        }
        c->ops = &none_ops;
        break;
    case DIST_MPI:
        r = dist_mpi_open(c);
        if (!r && strcmp(e.source, "default") && (c->rank != e.rank || c->world != e.world)) {
            r = vel_fail(DIST_EENV, "MPI says rank %d of %d but the %s variables say %d of %d", c->rank,
                           c->world, e.source, e.rank, e.world);
            c->ops->fini(c);
        }
        break;
    case DIST_NCCL:
#ifdef VEL_HAVE_CUDA
        r = dist_nccl_open(c, o);
#else
        r = vel_fail(DIST_EBACKEND, "backend nccl needs a CUDA build (nvcc was not found at build time)");
#endif
        break;
    default:
        r = vel_fail(DIST_EBACKEND, "unknown backend %d", (int)o->backend);
    }
    if (r) {
        free(c);
        return r;
    }
    *out = c;
    return 0;
}

void dist_finalize(dist_comm **pc) {
    if (!pc || !*pc) return;
    (*pc)->ops->fini(*pc);
    free(*pc);
    *pc = NULL;
}

int dist_rank(const dist_comm *c) { return c->rank; }
int dist_world(const dist_comm *c) { return c->world; }
int dist_local_rank(const dist_comm *c) { return c->local_rank; }
dist_backend dist_get_backend(const dist_comm *c) { return c->backend; }

int dist_allreduce_avg(dist_comm *c, float *buf, int64_t n) {
    if (n <= 0) return 0;
    int r = c->ops->allreduce_sum(c, buf, n);
    if (r) return r;
    // Sum then one multiply: for world 1 the multiply by 1.0f is exact, so
    // the data-parallel path cannot change a single-rank result.
    return c->ops->scale(c, buf, n, 1.0f / (float)c->world);
}

int dist_broadcast(dist_comm *c, float *buf, int64_t n, int root) {
    if (root < 0 || root >= c->world) return VEL_EINVAL;
    return n > 0 ? c->ops->bcast(c, buf, n, root) : 0;
}

int dist_barrier(dist_comm *c) { return c->ops->barrier(c); }

// ---- bucketed gradient sync ----------------------------------------------

struct dist_grad_sync {
    dist_comm *c;
    float *grads;
    int64_t total, bucket;
    int nb;          // bucket count; bucket k covers [lo(k), hi(k)), k = 0 is the last one
    int started;     // buckets 0..started-1 have been started
    void **req;      // one per bucket
};

static int64_t bucket_hi(const dist_grad_sync *s, int k) { return s->total - (int64_t)k * s->bucket; }
static int64_t bucket_lo(const dist_grad_sync *s, int k) {
    int64_t lo = s->total - (int64_t)(k + 1) * s->bucket;
    return lo < 0 ? 0 : lo;
}

int dist_grad_sync_create(dist_grad_sync **out, dist_comm *c, float *grads, int64_t total,
                          int64_t bucket_floats) {
    *out = NULL;
    if (total < 0 || bucket_floats < 0) return VEL_EINVAL;
    dist_grad_sync *s = xcalloc(1, sizeof *s);
    s->c = c;
    s->grads = grads;
    s->total = total;
    // MPI counts are int: keep every bucket well below 2^31 elements.
    s->bucket = bucket_floats ? bucket_floats : (int64_t)1 << 20;
    if (s->bucket > (int64_t)1 << 30) s->bucket = (int64_t)1 << 30;
    s->nb = total ? (int)((total + s->bucket - 1) / s->bucket) : 0;
    s->req = xcalloc((size_t)(s->nb ? s->nb : 1), sizeof *s->req);
    *out = s;
    return 0;
}

void dist_grad_sync_destroy(dist_grad_sync **ps) {
    if (!ps || !*ps) return;
    dist_grad_sync *s = *ps;
    for (int k = 0; k < s->started; k++)
        if (s->req[k]) s->c->ops->wait(s->c, &s->req[k]);
    free(s->req);
    free(s);
    *ps = NULL;
}

int dist_grad_sync_buckets(const dist_grad_sync *s) { return s->nb; }

int dist_grad_ready(dist_grad_sync *s, int64_t offset) {
    while (s->started < s->nb && bucket_lo(s, s->started) >= offset) {
        int k = s->started;
        int r = s->c->ops->start_sum(s->c, s->grads + bucket_lo(s, k),
                                     bucket_hi(s, k) - bucket_lo(s, k), &s->req[k]);
        if (r) return r;
        s->started++;
    }
    return 0;
}

int dist_grad_finish(dist_grad_sync *s) {
    int r = dist_grad_ready(s, 0);
    for (int k = 0; k < s->started; k++) {
        int rw = s->c->ops->wait(s->c, &s->req[k]);
        if (!r) r = rw;
    }
    s->started = 0;
    if (r) return r;
    return s->total ? s->c->ops->scale(s->c, s->grads, s->total, 1.0f / (float)s->c->world) : 0;
}

// ---- NCCL id file ---------------------------------------------------------

#define IDFILE_MAGIC "VELNCCL1"
// Layout: magic (8 bytes), world (u32 LE), payload size (u32 LE), payload.

int dist_idfile_write(const char *path, const void *id, size_t n, int world) {
    if (!path || !*path || n > 4096 || world < 1) return VEL_EINVAL;
    size_t len = strlen(path);
    char *tmp = xmalloc(len + 32);
    snprintf(tmp, len + 32, "%s.tmp.%ld", path, (long)getpid());
    unsigned char hdr[16];
    memcpy(hdr, IDFILE_MAGIC, 8);
    for (int i = 0; i < 4; i++) {
        hdr[8 + i] = (unsigned char)((uint32_t)world >> (8 * i));
        hdr[12 + i] = (unsigned char)((uint32_t)n >> (8 * i));
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int ok = fd >= 0 && write(fd, hdr, sizeof hdr) == (ssize_t)sizeof hdr &&
             write(fd, id, n) == (ssize_t)n && fsync(fd) == 0;
    if (fd >= 0 && close(fd) != 0) ok = 0;
    if (ok && rename(tmp, path) != 0) ok = 0;
    if (!ok) {
        vel_fail(VEL_EIO, "writing NCCL id file %s: %s", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return ok ? 0 : VEL_EIO;
}

// 1 = read a valid id, 0 = not there (yet), < 0 = error.
static int idfile_try(const char *path, void *id, size_t n, int world, int64_t not_before) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return errno == ENOENT ? 0 : VEL_EIO;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return VEL_EIO;
    }
    if (not_before && (int64_t)st.st_mtime < not_before) {
        close(fd);
        return 0;   // a stale file from an earlier run: wait for rank 0's
    }
    unsigned char buf[16 + 4096 + 1];
    ssize_t got = read(fd, buf, sizeof buf);
    close(fd);
    if (got < 16 || memcmp(buf, IDFILE_MAGIC, 8) != 0) {
        return vel_fail(VEL_EFORMAT, "%s is not an NCCL id file (bad magic or shorter than 16 bytes)", path);
    }
    uint32_t w = 0, sz = 0;
    for (int i = 0; i < 4; i++) {
        w |= (uint32_t)buf[8 + i] << (8 * i);
        sz |= (uint32_t)buf[12 + i] << (8 * i);
    }
    if (sz != n || (size_t)got != 16 + n) {
        return vel_fail(VEL_EFORMAT, "%s: id of %u bytes in a %zd-byte file, expected %zu", path, sz, got, n);
    }
    if ((int)w != world) {
        return vel_fail(VEL_EFORMAT, "%s was written for world size %u, this job has %d", path, w, world);
    }
    memcpy(id, buf + 16, n);
    return 1;
}

int dist_idfile_read(const char *path, void *id, size_t n, int world, double timeout_s,
                     int64_t not_before) {
    if (!path || !*path || n > 4096) return VEL_EINVAL;
    double t0 = vel_now();
    for (;;) {
        int r = idfile_try(path, id, n, world, not_before);
        if (r == 1) return 0;
        if (r < 0) {
            if (r == VEL_EIO) vel_fail(VEL_EIO, "reading NCCL id file %s: %s", path, strerror(errno));
            return r;
        }
        if (vel_now() - t0 > timeout_s) {
            return vel_fail(DIST_ETIMEOUT, "no NCCL id in %s after %.0f s (is rank 0 running and writing it?)",
                           path, timeout_s);
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}
