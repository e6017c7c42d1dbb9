// device.h: the `--device cpu|cuda` choice shared by every stage that
// computes, and device memory for models. Parses the flag's value and, for
// cuda, checks that this build has CUDA and that a GPU is present, with a
// message that says which is missing; device_activate then gives the calling
// thread the CUDA context every op runs on (nn/backend.h). Memory a model
// puts on the GPU (device_alloc, arena_commit_on, param_table_move) is
// registered with nn/backend.h, so the same forward/backward code runs there.
// Not here: the CUDA runtime itself (nn/cuda/vcuda.h), the op dispatch
// (nn/backend.h).
#ifndef NN_DEVICE_H
#define NN_DEVICE_H

#include <stddef.h>

typedef enum { DEVICE_CPU = 0, DEVICE_CUDA = 1 } device_kind;

// Module range -650..-669 (core/error.h lists the ranges; messages there).
enum {
    DEVICE_EBADNAME = -650,   // not "cpu" or "cuda"
    DEVICE_ENOCUDA = -651,    // built without nvcc
    DEVICE_ENOGPU = -652,     // CUDA requested but no GPU found
    DEVICE_ECONTEXT = -653,   // the CUDA context could not be created
    DEVICE_ENOCTX = -654,     // device memory used without device_activate on this thread
    DEVICE_ECOPY = -655,      // a copy or fill on the device failed
};


// "cpu" / "cuda" (also "gpu", "cuda:N" with N >= 0 stored in *index, -1 when
// absent). Only parses: does not look for a GPU.
int device_parse(const char *name, device_kind *kind, int *index);
const char *device_name(device_kind kind);

// 1 if this binary was built with CUDA (nvcc found at build time).
int device_cuda_built(void);
// Number of GPUs visible (0 when built without CUDA or when none is found).
int device_cuda_count(void);

// Parses `name` and, for cuda, checks that a GPU is usable. On failure
// returns a DEVICE_E* code; vel_errmsg(rc) says why, e.g. "device: CUDA
// requested but no GPU found: cudaGetDeviceCount: no CUDA-capable device is
// detected" (the caller names the flag: "--device cuda: ...").
int device_resolve(const char *name, device_kind *kind, int *index);

// Makes `kind` (index: -1 = LOCAL_RANK / first GPU) the calling thread's
// device. cpu: nothing to do, returns 0. cuda: creates a CUDA context (stream,
// cuBLAS, cuDNN), owned by this thread until device_release, and makes it the
// one every op on device memory runs on; a second call replaces it. Without a
// CUDA build or a GPU returns DEVICE_ENOCUDA / DEVICE_ENOGPU (DEVICE_ECONTEXT
// if creating the context fails) with a full sentence in msg.
int device_activate(device_kind kind, int index, char *msg, size_t msglen);
// Waits for and frees this thread's context (no-op without one).
void device_release(void);
// The active device of this thread: DEVICE_CUDA after a successful
// device_activate(DEVICE_CUDA, ...), else DEVICE_CPU.
device_kind device_current(void);

// bf16 autocast of the GEMMs and attention on this thread's GPU context
// (nn/cuda/vcuda.h: the fp32 linear ops multiply bf16 copies of their
// operands, attention reads bf16 q, k, v; fp32 accumulation, fp32 outputs
// and master weights/gradients; everything else stays fp32, as listed in
// nn/cuda/ops.h). 0, or DEVICE_ENOCTX (no device_activate) / DEVICE_ENOCUDA.
int device_autocast_bf16(int on);

// Memory (failures leave their detail with vel_fail, core/error.h).
// device_alloc: `bytes` zeroed bytes on kind (host: 64-byte aligned;
// cuda: registered with nn/backend.h, needs device_activate). Returns 0,
// VEL_ENOMEM, DEVICE_ENOCUDA, DEVICE_ENOCTX or DEVICE_ECOPY; *p = NULL on
// failure. device_free frees either kind (NULL-safe, sets *p = NULL).
int device_alloc(device_kind kind, void **p, size_t bytes);
void device_free(void **p);
// Which kind p belongs to (nn_on_device).
device_kind device_of(const void *p);
// Copies bytes from src to dst, each on the host or the device (any of the
// four directions); on return dst holds the data and src may be reused (the
// copy waits for the stream when host memory is involved; device to device
// stays queued in stream order). 0 or DEVICE_ENOCTX / DEVICE_ECOPY.
int device_copy(void *dst, const void *src, size_t bytes);
// Sets bytes of dst (host or device) to zero (queued on the device's stream).
int device_zero(void *dst, size_t bytes);

// One line for --help texts.
// (with the --threads line: every stage that takes --device parses both with
// stages/common/flags.h)
#define DEVICE_HELP "  --device cpu|cuda[:N]  where to compute (default cpu); cuda needs a GPU\n" \
                    "  --threads N          CPU threads (default OMP_NUM_THREADS, else all cores)\n"

#endif
