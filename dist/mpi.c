// dist_mpi.c: the DIST_MPI backend over Open MPI, loaded with dlopen at
// dist_init time so that libvel.a (and every binary) has no link-time or
// load-time dependency on MPI; only a process that asks for --dist mpi needs
// libmpi.so.40 (Debian's libopenmpi3).
//
// ABI note: the MPI standard fixes names, not an ABI. This file speaks Open
// MPI's (4.x and 5.x): handles (MPI_Comm, MPI_Datatype, MPI_Op, MPI_Request)
// are pointers; MPI_COMM_WORLD, MPI_FLOAT and MPI_SUM are the addresses of
// the exported globals ompi_mpi_comm_world, ompi_mpi_float, ompi_mpi_op_sum;
// MPI_IN_PLACE is (void *)1 and MPI_STATUS_IGNORE is NULL (mpi.h of Open MPI
// 4.1). Another MPI (MPICH: integer handles) would need its own table.
// Not here: MPI_Init_thread levels beyond the default (all calls come from the
// thread that called dist_init).
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "dist/backend.h"

typedef void *mpi_handle;
#define OMPI_IN_PLACE ((void *)1)

typedef struct {
    void *lib;
    int we_initialised;
    mpi_handle comm_world, t_float, op_sum;
    int (*Init)(int *, char ***);
    int (*Initialized)(int *);
    int (*Finalized)(int *);
    int (*Finalize)(void);
    int (*Comm_rank)(mpi_handle, int *);
    int (*Comm_size)(mpi_handle, int *);
    int (*Allreduce)(const void *, void *, int, mpi_handle, mpi_handle, mpi_handle);
    int (*Iallreduce)(const void *, void *, int, mpi_handle, mpi_handle, mpi_handle, mpi_handle *);
    int (*Wait)(mpi_handle *, void *);
    int (*Bcast)(void *, int, mpi_handle, int, mpi_handle);
    int (*Barrier)(mpi_handle);
} mpi_api;

// One MPI per process: MPI cannot be initialised twice, so the loaded table
// outlives a dist_finalize and MPI_Finalize runs at exit.
static mpi_api g_mpi;

static void mpi_at_exit(void) {
    int fin = 0;
    if (g_mpi.Finalized && g_mpi.Finalized(&fin) == 0 && !fin) g_mpi.Finalize();
}

static int mpi_load(void) {
    if (g_mpi.lib) return 0;
    // Where the library lives: VEL_MPI_LIB overrides; else the soname of Open
    // MPI 4/5. RTLD_GLOBAL because Open MPI's own plugins (mca_*.so) resolve
    // symbols of libmpi / libopen-pal against the global scope.
    const char *names[] = {getenv("VEL_MPI_LIB"), "libmpi.so.40", "libmpi.so"};
    char why[256] = "";
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !g_mpi.lib; i++) {
        if (!names[i] || !*names[i]) continue;
        g_mpi.lib = dlopen(names[i], RTLD_NOW | RTLD_GLOBAL);
        if (!g_mpi.lib) snprintf(why, sizeof why, "%s", dlerror());
    }
    if (!g_mpi.lib) {
        return vel_fail(DIST_ENOLIB, "Open MPI not found (dlopen libmpi.so.40: %s); install libopenmpi3 or set VEL_MPI_LIB",
                        why);
    }
    struct { const char *name; void **slot; } syms[] = {
        {"MPI_Init", (void **)&g_mpi.Init},
        {"MPI_Initialized", (void **)&g_mpi.Initialized},
        {"MPI_Finalized", (void **)&g_mpi.Finalized},
        {"MPI_Finalize", (void **)&g_mpi.Finalize},
        {"MPI_Comm_rank", (void **)&g_mpi.Comm_rank},
        {"MPI_Comm_size", (void **)&g_mpi.Comm_size},
        {"MPI_Allreduce", (void **)&g_mpi.Allreduce},
        {"MPI_Iallreduce", (void **)&g_mpi.Iallreduce},
        {"MPI_Wait", (void **)&g_mpi.Wait},
        {"MPI_Bcast", (void **)&g_mpi.Bcast},
        {"MPI_Barrier", (void **)&g_mpi.Barrier},
        {"ompi_mpi_comm_world", &g_mpi.comm_world},
        {"ompi_mpi_float", &g_mpi.t_float},
        {"ompi_mpi_op_sum", &g_mpi.op_sum},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        // POSIX dlsym returns an object pointer; this is its documented use.
        void *p = dlsym(g_mpi.lib, syms[i].name);
        if (!p) {
            vel_fail(DIST_ENOLIB, "libmpi has no symbol %s (not Open MPI 4/5?)", syms[i].name);
            dlclose(g_mpi.lib);
            memset(&g_mpi, 0, sizeof g_mpi);
            return DIST_ENOLIB;
        }
        memcpy(syms[i].slot, &p, sizeof p);
    }
    return 0;
}

#define MPI_TRY(call)                                                  \
    do {                                                               \
        int e_ = (call);                                               \
        if (e_ != 0) {                                                 \
            return vel_fail(DIST_ECOMM, "%s failed with MPI error %d", #call, e_);                                         \
        }                                                              \
    } while (0)

// MPI counts are int: longer buffers go in chunks of 2^30.
#define MPI_CHUNK ((int64_t)1 << 30)

static int m_sum(dist_comm *c, float *buf, int64_t n) {
    (void)c;
    for (int64_t o = 0; o < n; o += MPI_CHUNK) {
        int k = (int)(n - o < MPI_CHUNK ? n - o : MPI_CHUNK);
        MPI_TRY(g_mpi.Allreduce(OMPI_IN_PLACE, buf + o, k, g_mpi.t_float, g_mpi.op_sum, g_mpi.comm_world));
    }
    return 0;
}

static int m_start(dist_comm *c, float *buf, int64_t n, void **req) {
    (void)c;
    *req = NULL;
    if (n > MPI_CHUNK) return VEL_EINVAL;   // dist_grad_sync caps buckets at 2^30
    mpi_handle r = NULL;
    MPI_TRY(g_mpi.Iallreduce(OMPI_IN_PLACE, buf, (int)n, g_mpi.t_float, g_mpi.op_sum,
                             g_mpi.comm_world, &r));
    *req = r;
    return 0;
}

static int m_wait(dist_comm *c, void **req) {
    (void)c;
    if (!*req) return 0;
    mpi_handle r = *req;
    *req = NULL;
    MPI_TRY(g_mpi.Wait(&r, NULL));
    return 0;
}

static int m_scale(dist_comm *c, float *buf, int64_t n, float s) {
    (void)c;
    for (int64_t i = 0; i < n; i++) buf[i] *= s;
    return 0;
}

static int m_bcast(dist_comm *c, float *buf, int64_t n, int root) {
    (void)c;
    for (int64_t o = 0; o < n; o += MPI_CHUNK) {
        int k = (int)(n - o < MPI_CHUNK ? n - o : MPI_CHUNK);
        MPI_TRY(g_mpi.Bcast(buf + o, k, g_mpi.t_float, root, g_mpi.comm_world));
    }
    return 0;
}

static int m_barrier(dist_comm *c) {
    (void)c;
    MPI_TRY(g_mpi.Barrier(g_mpi.comm_world));
    return 0;
}

static void m_fini(dist_comm *c) { (void)c; }

static const dist_ops mpi_ops = {m_sum, m_start, m_wait, m_scale, m_bcast, m_barrier, m_fini};

int dist_mpi_open(dist_comm *c) {
    int r = mpi_load();
    if (r) return r;
    int inited = 0;
    MPI_TRY(g_mpi.Initialized(&inited));
    if (!inited) {
        MPI_TRY(g_mpi.Init(NULL, NULL));
        g_mpi.we_initialised = 1;
        atexit(mpi_at_exit);
    }
    MPI_TRY(g_mpi.Comm_rank(g_mpi.comm_world, &c->rank));
    MPI_TRY(g_mpi.Comm_size(g_mpi.comm_world, &c->world));
    c->ops = &mpi_ops;
    return 0;
}
