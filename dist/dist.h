// dist.h: data-parallel training. One process per device (or per CPU
// worker); every rank holds the whole model, takes its own slice of each
// global batch, and averages gradients with an all-reduce before the
// optimizer step, so all ranks keep identical parameters.
//
//   ranks     dist_env_read: RANK / WORLD_SIZE / LOCAL_RANK, else
//             SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID, else Open MPI's
//             OMPI_COMM_WORLD_RANK / _SIZE / _LOCAL_RANK, else 0 / 1 / 0.
//   sharding  dist_epoch_order (a permutation that depends only on seed and
//             epoch, identical on every rank) and dist_local_batch (rank r
//             takes the r-th contiguous slice of each global batch).
//   backends  DIST_NONE (world size 1, no library), DIST_MPI (Open MPI,
//             host buffers; dlopened, see dist_mpi.c), DIST_NCCL (device
//             buffers; dlopened, dist/nccl.cu; the NCCL unique id is
//             passed through a file, dist_idfile_*).
//   gradients dist_grad_sync: bucketed all-reduce (average) over a flat
//             gradient buffer (param_table.grads), buckets launched as
//             backward finishes them (non-blocking) and waited on at the end.
//
// Equivalence (tested in tests/dist): world size W with the global batch
// split into W equal slices, each rank's loss a mean over its slice, gives
// the gradient of the mean over the whole batch up to fp32 rounding; world
// size 1 through any backend is bit-identical to not using dist at all
// (the sum over one rank is the value itself and the scale is 1).
//
// Not here: the optimizer, gradient clipping (they run after dist_grad_sync
// on identical buffers on every rank), model-parallel schemes.
#ifndef DIST_DIST_H
#define DIST_DIST_H

#include <stddef.h>
#include <stdint.h>

// Module range -670..-699 (core/error.h; messages in core/error.c).
enum {
    DIST_EENV = -670,       // rank variables missing, malformed or inconsistent
    DIST_ENOLIB = -671,     // the collective library could not be loaded
    DIST_ECOMM = -672,      // a collective call failed
    DIST_ETIMEOUT = -673,   // waited too long for the NCCL id file
    DIST_EBACKEND = -674,   // backend unknown or not built (NCCL without CUDA)
};
// Details of a failure (which variable, which call) go to this thread's
// vel_error_detail(); print vel_errmsg(rc).

typedef struct {
    int rank, world, local_rank;
    char source[24];   // which variables were used: "RANK", "SLURM", "OMPI", "default"
} dist_env;

// Reads the rank variables (order above). A family counts only when both its
// rank and size variables are set; a local rank defaults to 0 when its
// variable is missing. DIST_EENV for non-numbers, world < 1, rank >= world,
// local_rank >= world, and half-set families (rank without size or back).
int dist_env_read(dist_env *e);

// ---- sharding --------------------------------------------------------------

// order[0..n) = a permutation of 0..n-1 that depends only on (seed, epoch):
// Fisher-Yates driven by Philox (core/philox.h, stream = epoch). Every rank
// computes the same order without communicating.
void dist_epoch_order(int64_t *order, int64_t n, uint64_t seed, int64_t epoch);

// Number of whole global batches in an epoch of n samples (the tail that does
// not fill a global batch is dropped, as every rank must step together).
int64_t dist_steps_per_epoch(int64_t n, int64_t global_batch);

// The local slice of global batch `step`: local = global_batch / world
// samples, out[i] = order[step*global_batch + rank*local + i]. VEL_EINVAL if
// global_batch is not a multiple of world, VEL_ERANGE if step is past the
// epoch. *local_count receives local.
int dist_local_batch(int64_t *out, int64_t *local_count, const int64_t *order, int64_t n,
                     int64_t global_batch, int64_t step, int rank, int world);

// ---- communicator ----------------------------------------------------------

typedef enum { DIST_NONE = 0, DIST_MPI = 1, DIST_NCCL = 2 } dist_backend;
int dist_backend_parse(const char *name, dist_backend *b);   // "none" "mpi" "nccl"
const char *dist_backend_name(dist_backend b);

typedef struct {
    dist_backend backend;
    const char *nccl_id_path;   // NCCL: file for the unique id (else $VEL_NCCL_ID_FILE)
    double timeout_s;           // NCCL: how long ranks > 0 wait for the id file (0 = 120 s)
    void *cuda_ctx;             // NCCL: the vcuda_ctx whose device and stream to use
} dist_opts;

typedef struct dist_comm dist_comm;

// Joins the job. DIST_NONE needs world size 1. DIST_MPI initialises MPI
// (rank and size then come from MPI and must agree with dist_env_read when
// those variables are set). Caller frees with dist_finalize.
int dist_init(dist_comm **out, const dist_opts *opts);
void dist_finalize(dist_comm **c);        // sets *c = NULL; NULL-safe
int dist_rank(const dist_comm *c);
int dist_world(const dist_comm *c);
int dist_local_rank(const dist_comm *c);
dist_backend dist_get_backend(const dist_comm *c);

// In place: buf = sum over ranks of buf, then * (1/world). Host memory for
// MPI and NONE, device memory for NCCL. Blocking (NCCL: ordered on the
// context's stream; the host does not wait).
int dist_allreduce_avg(dist_comm *c, float *buf, int64_t n);
// In place: every rank receives root's buf (initial parameters).
int dist_broadcast(dist_comm *c, float *buf, int64_t n, int root);
int dist_barrier(dist_comm *c);

// ---- bucketed gradient sync -------------------------------------------------

typedef struct dist_grad_sync dist_grad_sync;

// Buckets of bucket_floats (0 = 1M floats, 4 MiB) tile [0, total) from the END,
// since backward finishes the last parameters first. grads is borrowed
// (host for MPI/NONE, device for NCCL) until destroy.
int dist_grad_sync_create(dist_grad_sync **out, dist_comm *c, float *grads, int64_t total,
                          int64_t bucket_floats);
void dist_grad_sync_destroy(dist_grad_sync **s);
int dist_grad_sync_buckets(const dist_grad_sync *s);
// Backward has finished every gradient at offsets >= `offset`: starts the
// all-reduce of each bucket that lies wholly in [offset, total) and has not
// started yet. Optional; calls must not go back up (offset only decreases).
int dist_grad_ready(dist_grad_sync *s, int64_t offset);
// Starts what is left, waits for all buckets, scales by 1/world. After it the
// gradient buffer is identical on every rank. Resets for the next step.
int dist_grad_finish(dist_grad_sync *s);

// ---- NCCL id file -------------------------------------------------------------

// Writes the id atomically (temp file in the same folder, fsync, rename) with
// a magic and the world size. Rank 0 calls it.
int dist_idfile_write(const char *path, const void *id, size_t n, int world);
// Polls until `path` holds a valid id for this world size written no earlier
// than not_before (seconds since the epoch, from time(); 0 = any), or until
// timeout_s passes (DIST_ETIMEOUT). Files with a wrong magic, size or world
// are rejected with VEL_EFORMAT once they are complete (a partly written file
// never appears, thanks to the rename).
int dist_idfile_read(const char *path, void *id, size_t n, int world, double timeout_s,
                     int64_t not_before);

#endif
