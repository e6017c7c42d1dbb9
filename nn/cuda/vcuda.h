// vcuda.h: the CUDA runtime layer of the nn core, callable from C11: device
// discovery, one context per process (device, stream, cuBLAS / cuBLASLt /
// cuDNN handles), device buffers, host<->device copies,
// bf16 <-> f32 conversion kernels, and error codes with messages.
//
// Not here: the ops themselves (nn/cuda/ops.h), the --device flag
// (nn/device.h), NCCL (dist/dist.h).
//
// This header never includes CUDA headers, so plain C code (stages, tests)
// compiles without them: streams and library handles travel as void *.
// It exists only when nvcc was found at build time (build/libvelcuda.so,
// loaded on the first call through the stubs of nn/cuda/lazy.h); C code that
// calls it must be guarded by #ifdef VEL_HAVE_CUDA, which mk/cuda.mk defines
// exactly then.
//
// Nothing here may fail at load time
// without a GPU: no static initialisers touch the driver; the first call that
// does is vcuda_device_count(), which turns "no driver" / "no device" into
// n = 0 and a message instead of an error exit.
//
// Errors: functions return 0 or a negative code from the range below (or
// VEL_EINVAL / VEL_ENOMEM from core/base.h); the text of the last CUDA, cuBLAS
// or cuDNN failure on this thread (with file:line) is in vcuda_last_error().
#ifndef NN_CUDA_VCUDA_H
#define NN_CUDA_VCUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Range -600..-619 (nn/backend.h has -620..-649; core/error.h lists the
// others, and core/error.c holds the messages).
enum {
    VCUDA_ENODEV = -600,    // no CUDA driver or no device (or bad device index)
    VCUDA_ERUNTIME = -601,  // a CUDA runtime call failed (see vcuda_last_error)
    VCUDA_ECUBLAS = -602,   // a cuBLAS / cuBLASLt call failed
    VCUDA_ECUDNN = -603,    // a cuDNN call failed
    VCUDA_EOOM = -604,      // cudaMalloc failed: out of device memory
};

const char *vcuda_last_error(void);      // thread-local, "" if none yet

// Number of usable devices. Never fails hard: without a driver or device it
// sets *n = 0, returns 0 and leaves the reason in vcuda_last_error().
int vcuda_device_count(int *n);

// Device index to use: LOCAL_RANK, else SLURM_LOCALID, else 0, modulo the
// device count (so 8 ranks on 8 GPUs get one each). VCUDA_ENODEV if none.
int vcuda_pick_device(int *device);

typedef struct vcuda_ctx vcuda_ctx;

// Creates the context on `device` (-1 = vcuda_pick_device): makes the device
// current for this thread, creates a non-blocking stream, cuBLAS, cuBLASLt
// and cuDNN handles bound to that stream, and a 32 MiB cuBLASLt workspace.
// TF32 is OFF by default (fp32 GEMMs are true fp32, for parity with the CPU);
// vcuda_set_tf32(ctx, 1) turns it on. Caller frees with vcuda_ctx_destroy.
int vcuda_ctx_create(vcuda_ctx **out, int device);
void vcuda_ctx_destroy(vcuda_ctx **ctx);   // sets *ctx = NULL; NULL-safe

int vcuda_device(const vcuda_ctx *ctx);
void *vcuda_stream(const vcuda_ctx *ctx);        // cudaStream_t
void *vcuda_cublas(const vcuda_ctx *ctx);        // cublasHandle_t
void *vcuda_cublaslt(const vcuda_ctx *ctx);      // cublasLtHandle_t
void *vcuda_cudnn(const vcuda_ctx *ctx);         // cudnnHandle_t
void *vcuda_workspace(const vcuda_ctx *ctx, size_t *bytes);  // cuBLASLt scratch
int vcuda_tf32(const vcuda_ctx *ctx);
// A device buffer of at least `bytes` owned by the context, for op scratch
// the op API does not take from the caller (attention backward). It grows
// (free + cudaMalloc, which waits for the device) only when a call needs
// more than any before, i.e. in the first step of a loop of fixed shapes;
// valid until the next call or vcuda_ctx_destroy.
int vcuda_ctx_scratch(vcuda_ctx *ctx, size_t bytes, void **p);
int vcuda_set_tf32(vcuda_ctx *ctx, int on);
// bf16 autocast of the GEMMs (off by default): while on, the fp32 linear ops
// (linear_forward_cuda / linear_backward_cuda) round their inputs and weight
// to bf16 copies in the context's scratch and multiply those with fp32
// accumulation into fp32 outputs and gradients, like torch.autocast for
// matmuls with fp32 master weights; the attention ops round q, k, v to bf16
// (flash_attn.cu). Every other op stays fp32 (the list: ops.h).
int vcuda_autocast_bf16(const vcuda_ctx *ctx);
void vcuda_set_autocast_bf16(vcuda_ctx *ctx, int on);
// One line: "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB, device 0)".
int vcuda_describe(const vcuda_ctx *ctx, char *buf, size_t len);

// Waits for all work on the context's stream; returns the first async error.
int vcuda_sync(vcuda_ctx *ctx);

// Device memory (cudaMalloc / cudaFree), registered with nn/backend.h while
// allocated (so ops on it run on the GPU). *p = NULL on failure.
int vcuda_malloc(void **p, size_t bytes);
void vcuda_free(void **p);                 // sets *p = NULL; NULL-safe
int vcuda_memset0(vcuda_ctx *ctx, void *dst, size_t bytes);   // async on stream

// Copies on the context's stream; the *_sync variants also wait, so the host
// buffer may be reused / read on return. Host buffers may be pageable.
int vcuda_h2d(vcuda_ctx *ctx, void *dst, const void *src, size_t bytes);
int vcuda_d2h(vcuda_ctx *ctx, void *dst, const void *src, size_t bytes);
int vcuda_d2d(vcuda_ctx *ctx, void *dst, const void *src, size_t bytes);
int vcuda_h2d_sync(vcuda_ctx *ctx, void *dst, const void *src, size_t bytes);
int vcuda_d2h_sync(vcuda_ctx *ctx, void *dst, const void *src, size_t bytes);

// Device arenas for models: nn/arena.h (arena_commit_on), through vcuda_malloc.

// bf16 <-> f32 on the device, round to nearest even (NaN stays NaN), the same
// rounding as f32_to_bf16 in core/tensor.h, so both sides agree bit for bit.
int vcuda_f32_to_bf16(vcuda_ctx *ctx, uint16_t *dst, const float *src, int64_t n);
int vcuda_bf16_to_f32(vcuda_ctx *ctx, float *dst, const uint16_t *src, int64_t n);

#ifdef __cplusplus
}
#endif

#endif
