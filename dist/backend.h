// dist_backend.h: what dist/dist.c needs from a collective backend (MPI in
// dist/mpi.c, NCCL in dist/nccl.cu). Internal to nn/dist*: callers
// use dist/dist.h. Plain C, also included from C++ (the NCCL .cu file).
#ifndef DIST_BACKEND_H
#define DIST_BACKEND_H

#include <stdint.h>

#include "dist/dist.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    // buf = sum over ranks, in place, blocking (NCCL: stream-ordered).
    int (*allreduce_sum)(dist_comm *c, float *buf, int64_t n);
    // Non-blocking sum, in place; *req receives a handle for wait.
    int (*start_sum)(dist_comm *c, float *buf, int64_t n, void **req);
    int (*wait)(dist_comm *c, void **req);
    int (*scale)(dist_comm *c, float *buf, int64_t n, float s);
    int (*bcast)(dist_comm *c, float *buf, int64_t n, int root);
    int (*barrier)(dist_comm *c);
    void (*fini)(dist_comm *c);
} dist_ops;

struct dist_comm {
    dist_backend backend;
    int rank, world, local_rank;
    const dist_ops *ops;
    void *impl;   // backend state, freed by ops->fini
};


// Backend openers: fill c->rank/world (from the library), c->ops, c->impl.
int dist_mpi_open(dist_comm *c);
#ifdef VEL_HAVE_CUDA
int dist_nccl_open(dist_comm *c, const dist_opts *o);
#endif

#ifdef __cplusplus
}
#endif

#endif
