// dist_nccl.cu: the DIST_NCCL backend (dist/dist.h): gradients all-reduced on
// the GPU with NCCL, one process per GPU. libnccl.so.2 is loaded with dlopen
// on first use, so binaries carry no link-time dependency on NCCL and a
// machine without it fails only when --dist nccl is asked for, with a message.
// The few NCCL declarations below are written from the documented NCCL 2.x
// API (nccl.h: ncclUniqueId is 128 opaque bytes, ncclFloat32 = 7,
// ncclSum = 0, ncclSuccess = 0), so no nccl.h is needed at build time.
//
// Bootstrap: rank 0 creates the unique id and writes it to the id file
// (dist_idfile_write, atomic rename); the other ranks poll for it
// (dist_idfile_read), ignoring files older than their own start minus 60 s.
// Overlap: buckets are reduced on a separate stream that first waits on an
// event recorded on the compute stream, so backward kernels for earlier
// layers keep running while finished buckets are reduced; wait() makes the
// compute stream wait on the bucket's completion event (host never blocks).
// Not here: multi-node topology tuning, in-place bf16 gradients.
#include <dlfcn.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "nn/cuda/check.cuh"
extern "C" {
#include "core/error.h"
#include "dist/backend.h"
}

typedef struct { char internal[128]; } nccl_id;
typedef struct nccl_comm_opaque *nccl_comm;
enum { NCCL_OK = 0, NCCL_FLOAT32 = 7, NCCL_SUM = 0 };

static struct {
    void *lib;
    int (*GetUniqueId)(nccl_id *);
    int (*CommInitRank)(nccl_comm *, int, nccl_id, int);
    int (*CommDestroy)(nccl_comm);
    int (*AllReduce)(const void *, void *, size_t, int, int, nccl_comm, cudaStream_t);
    int (*Broadcast)(const void *, void *, size_t, int, int, nccl_comm, cudaStream_t);
    const char *(*GetErrorString)(int);
} g_nccl;

static int nccl_load(void) {
    if (g_nccl.lib) return 0;
    const char *names[] = {getenv("VEL_NCCL_LIB"), "libnccl.so.2", "libnccl.so"};
    char why[256] = "";
    for (const char *n : names) {
        if (!n || !*n || g_nccl.lib) continue;
        g_nccl.lib = dlopen(n, RTLD_NOW | RTLD_LOCAL);
        if (!g_nccl.lib) snprintf(why, sizeof why, "%s", dlerror());
    }
    if (!g_nccl.lib) {
        return vel_fail(DIST_ENOLIB, "NCCL not found (dlopen libnccl.so.2: %s); set VEL_NCCL_LIB", why);
    }
    struct { const char *name; void **slot; } syms[] = {
        {"ncclGetUniqueId", (void **)&g_nccl.GetUniqueId},
        {"ncclCommInitRank", (void **)&g_nccl.CommInitRank},
        {"ncclCommDestroy", (void **)&g_nccl.CommDestroy},
        {"ncclAllReduce", (void **)&g_nccl.AllReduce},
        {"ncclBroadcast", (void **)&g_nccl.Broadcast},
        {"ncclGetErrorString", (void **)&g_nccl.GetErrorString},
    };
    for (auto &s : syms) {
        void *p = dlsym(g_nccl.lib, s.name);
        if (!p) {
            vel_fail(DIST_ENOLIB, "libnccl has no symbol %s", s.name);
            dlclose(g_nccl.lib);
            memset(&g_nccl, 0, sizeof g_nccl);
            return DIST_ENOLIB;
        }
        memcpy(s.slot, &p, sizeof p);
    }
    return 0;
}

#define NCCL_TRY(call)                                                              \
    do {                                                                            \
        int e_ = (call);                                                            \
        if (e_ != NCCL_OK) {                                                        \
            return vel_fail(DIST_ECOMM, "%s: %s", #call, g_nccl.GetErrorString(e_));                                                      \
        }                                                                           \
    } while (0)

// CUDA failures inside the backend are reported through vel_fail (vel_error_detail) too.
#define CU_TRY(call)                                                                \
    do {                                                                            \
        cudaError_t e_ = (call);                                                    \
        if (e_ != cudaSuccess) {                                                    \
            return vel_fail(DIST_ECOMM, "%s: %s", #call, cudaGetErrorString(e_));                                                      \
        }                                                                           \
    } while (0)

// Requests are events from a small ring; 256 buckets in flight is far more
// than any model here needs (1M-float buckets -> 1 GB of gradients).
#define NCCL_MAX_REQ 256

typedef struct {
    nccl_comm comm;
    cudaStream_t compute, side;
    cudaEvent_t ready[NCCL_MAX_REQ], done[NCCL_MAX_REQ];
    int next;
} nccl_state;

static nccl_state *st(dist_comm *c) { return (nccl_state *)c->impl; }

static int n_sum(dist_comm *c, float *buf, int64_t n) {
    NCCL_TRY(g_nccl.AllReduce(buf, buf, (size_t)n, NCCL_FLOAT32, NCCL_SUM, st(c)->comm, st(c)->compute));
    return 0;
}

static int n_start(dist_comm *c, float *buf, int64_t n, void **req) {
    nccl_state *s = st(c);
    int k = s->next;
    s->next = (s->next + 1) % NCCL_MAX_REQ;
    CU_TRY(cudaEventRecord(s->ready[k], s->compute));
    CU_TRY(cudaStreamWaitEvent(s->side, s->ready[k], 0));
    NCCL_TRY(g_nccl.AllReduce(buf, buf, (size_t)n, NCCL_FLOAT32, NCCL_SUM, s->comm, s->side));
    CU_TRY(cudaEventRecord(s->done[k], s->side));
    *req = (void *)(intptr_t)(k + 1);
    return 0;
}

static int n_wait(dist_comm *c, void **req) {
    intptr_t k = (intptr_t)*req - 1;
    *req = NULL;
    if (k < 0) return 0;
    CU_TRY(cudaStreamWaitEvent(st(c)->compute, st(c)->done[k], 0));
    return 0;
}

__global__ void k_scale(float *x, int64_t n, float s) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        x[i] *= s;
}

static int n_scale(dist_comm *c, float *buf, int64_t n, float s) {
    k_scale<<<vcuda_blocks(n, 256), 256, 0, st(c)->compute>>>(buf, n, s);
    CU_TRY(cudaGetLastError());
    return 0;
}

static int n_bcast(dist_comm *c, float *buf, int64_t n, int root) {
    NCCL_TRY(g_nccl.Broadcast(buf, buf, (size_t)n, NCCL_FLOAT32, root, st(c)->comm, st(c)->compute));
    return 0;
}

static int n_barrier(dist_comm *c) {
    // A one-float all-reduce orders every rank; then wait for it on the host.
    nccl_state *s = st(c);
    float *tmp = NULL;
    CU_TRY(cudaMallocAsync((void **)&tmp, sizeof(float), s->compute));
    CU_TRY(cudaMemsetAsync(tmp, 0, sizeof(float), s->compute));
    int r = n_sum(c, tmp, 1);
    cudaFreeAsync(tmp, s->compute);
    if (r) return r;
    CU_TRY(cudaStreamSynchronize(s->compute));
    return 0;
}

static void n_fini(dist_comm *c) {
    nccl_state *s = st(c);
    if (!s) return;
    cudaStreamSynchronize(s->compute);
    if (s->side) cudaStreamSynchronize(s->side);
    if (s->comm) g_nccl.CommDestroy(s->comm);
    for (int k = 0; k < NCCL_MAX_REQ; k++) {
        if (s->ready[k]) cudaEventDestroy(s->ready[k]);
        if (s->done[k]) cudaEventDestroy(s->done[k]);
    }
    if (s->side) cudaStreamDestroy(s->side);
    free(s);
    c->impl = NULL;
}

static const dist_ops nccl_ops = {n_sum, n_start, n_wait, n_scale, n_bcast, n_barrier, n_fini};

static int nccl_open(dist_comm *c, const dist_opts *o, nccl_state *s) {
    const char *path = o->nccl_id_path ? o->nccl_id_path : getenv("VEL_NCCL_ID_FILE");
    if (c->world > 1 && (!path || !*path)) {
        return vel_fail(DIST_EENV, "NCCL with %d ranks needs an id file: pass its path or set VEL_NCCL_ID_FILE "
                       "(a path all ranks can see, fresh for each run)", c->world);
    }
    s->compute = (cudaStream_t)vcuda_stream((vcuda_ctx *)o->cuda_ctx);
    CU_TRY(cudaSetDevice(vcuda_device((vcuda_ctx *)o->cuda_ctx)));
    CU_TRY(cudaStreamCreateWithFlags(&s->side, cudaStreamNonBlocking));
    for (int k = 0; k < NCCL_MAX_REQ; k++) {
        CU_TRY(cudaEventCreateWithFlags(&s->ready[k], cudaEventDisableTiming));
        CU_TRY(cudaEventCreateWithFlags(&s->done[k], cudaEventDisableTiming));
    }
    nccl_id id;
    memset(&id, 0, sizeof id);
    if (c->rank == 0) {
        NCCL_TRY(g_nccl.GetUniqueId(&id));
        if (c->world > 1) {
            int r = dist_idfile_write(path, &id, sizeof id, c->world);
            if (r) return r;
        }
    } else {
        double timeout = o->timeout_s > 0 ? o->timeout_s : 120.0;
        // Ignore id files from earlier runs: rank 0 writes after its own start,
        // which is within a minute of ours in any sane launch.
        int r = dist_idfile_read(path, &id, sizeof id, c->world, timeout, (int64_t)time(NULL) - 60);
        if (r) return r;
    }
    NCCL_TRY(g_nccl.CommInitRank(&s->comm, c->world, id, c->rank));
    return 0;
}

extern "C" int dist_nccl_open(dist_comm *c, const dist_opts *o) {
    if (!o->cuda_ctx) {
        return vel_fail(VEL_EINVAL, "backend nccl needs a CUDA context (dist_opts.cuda_ctx)");
    }
    int r = nccl_load();
    if (r) return r;
    nccl_state *s = (nccl_state *)calloc(1, sizeof *s);
    if (!s) return VEL_ENOMEM;
    c->impl = s;
    c->ops = &nccl_ops;
    r = nccl_open(c, o, s);
    if (r) n_fini(c);
    return r;
}
