// backend.h: how one op API serves the CPU and the GPU (in the manner of
// ggml's backend split). A model calls one function per op (nn/linear.h,
// nn/norm.h, ...); that function, in nn/FAMILY.c, looks at where its
// pointers live and calls FAMILY's CPU implementation (nn/cpu/, `_cpu`
// suffix) or its CUDA one (nn/cuda/, `_cuda` suffix, run on this thread's
// current context). Models never name a backend.
//
// Where a pointer lives: every device allocation (nn/cuda's vcuda_malloc and
// device arenas) registers its byte range [base, end) here; a pointer inside
// a registered range is a device pointer, anything else is host memory. A
// binary built without CUDA (no VEL_HAVE_CUDA) registers nothing, so every op
// takes the CPU branch and nothing links against libvelcuda.
//
// Errors: the CPU ops return nothing (their failures are CHECKed invariants),
// and CUDA ops run asynchronously, so a device-side failure is recorded as
// this thread's sticky error (the FIRST one wins, with the op's name) and the
// caller checks once per step with nn_sync(). Cases recorded there:
//   NN_ENOCUDAOP  device pointers, but the op has no CUDA implementation yet
//   NN_ENOCUDABUILD  device pointers in a binary built without CUDA (only a
//                 test can get there, by registering a fake range)
//   NN_EMIXED     some pointers on the device and some on the host
//   NN_ENOCTX     device pointers but no current CUDA context on this thread
//   VCUDA_E*      the CUDA op itself failed (launch, cuBLAS, cuDNN, ...)
// In every one of these cases the op has done nothing: a device pointer is
// never read by CPU code.
//
// Threads: the current context and the sticky error are per thread; call ops
// of one model from one thread (OpenMP inside the CPU ops is fine). The range
// table is shared by all threads (registration takes a lock; lookups are one
// atomic load when it is empty, which is always the case on CPU-only runs).
//
// Not here: the ops (nn/*.h), the CUDA runtime (nn/cuda/vcuda.h), device
// arenas and copies for models (nn/device.h).
#ifndef NN_BACKEND_H
#define NN_BACKEND_H
#include <stddef.h>

// nn/cuda's part of the shared range -600..-649 (nn/cuda/vcuda.h has -600..-619).
enum {
    NN_ENOCUDAOP = -620,     // the op has no CUDA implementation yet
    NN_ENOCUDABUILD = -621,  // a device pointer in a build without CUDA
    NN_EMIXED = -622,        // host and device pointers in one op call
    NN_ENOCTX = -623,        // device pointers but no current CUDA context
    NN_ERANGES = -624,       // the device range table is full
};

// ---- where memory lives -----------------------------------------------------
#define NN_MAX_DEVICE_RANGES 256
// Registers [base, base + bytes) as device memory. 0 or NN_ERANGES.
int nn_register_device_range(const void *base, size_t bytes);
// Forgets the range that starts at base (no-op if none).
void nn_unregister_device_range(const void *base);
// 1 if p lies inside a registered device range, else 0 (NULL: 0).
int nn_on_device(const void *p);

// ---- dispatch (used by the op functions in nn/FAMILY.c) ---------------------
enum { NN_FAIL = -1, NN_HOST = 0, NN_DEVICE = 1 };
// Where an op with these pointers runs: NN_HOST when none is on the device
// (NULLs are ignored), NN_DEVICE when all non-NULL ones are and a CUDA
// context is current (built with CUDA), else NN_FAIL after recording the
// sticky error for op.
int nn_where(const char *op, int n, const void *const *ptrs);
// Records status as the sticky error for op when it is nonzero; returns it.
int nn_cuda_status(const char *op, int status);
// Records NN_ENOCUDAOP for op; returns it.
int nn_no_cuda(const char *op);
// Records code with a message "op: text" unless an error is already pending;
// returns code.
int nn_fail(int code, const char *op, const char *text);

struct vcuda_ctx;
// This thread's CUDA context (NULL: none). Set by device_activate (nn/device.h);
// the caller keeps ownership.
void nn_set_cuda_ctx(struct vcuda_ctx *ctx);
struct vcuda_ctx *nn_cuda_ctx(void);

// The sticky error: waits for the current context's queued work (built with
// CUDA and a context set), then returns 0 or the first error since the last
// call and clears it; an error's detail ("op: what") is then also this
// thread's vel_fail detail, so vel_errmsg(code) prints it (core/error.h).
// The message of the last error stays in nn_last_error().
int nn_sync(void);
// The pending (or last returned) error without waiting or clearing.
int nn_pending_error(void);
const char *nn_last_error(void);    // "" if none yet

// Shorthands for the op functions. NN_WHERE takes every pointer argument.
#define NN_WHERE(...)                                                         \
    nn_where(__func__, (int)(sizeof((const void *[]){__VA_ARGS__}) / sizeof(void *)), \
             (const void *const[]){__VA_ARGS__})
#define NN_CTX nn_cuda_ctx()
#define NN_NO_CUDA() nn_no_cuda(__func__)
#ifdef VEL_HAVE_CUDA
#define NN_CUDA(call) nn_cuda_status(__func__, (call))
#else
// Unreachable without CUDA (nn_where never says NN_DEVICE); the call's
// tokens are dropped so nothing references libvelcuda.
#define NN_CUDA(call) nn_fail(NN_ENOCUDABUILD, __func__, "built without CUDA")
#endif
#endif
