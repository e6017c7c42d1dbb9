// check.cuh: error plumbing shared by the .cu files of nn/cuda (C++ only,
// never included from C). A failing CUDA / cuBLAS / cuDNN call records
// "file:line: call: message" in the thread-local buffer behind
// vcuda_last_error() and makes the enclosing function return a VCUDA_E* code.
// Not here: the public API (vcuda.h).
#ifndef NN_CUDA_CHECK_CUH
#define NN_CUDA_CHECK_CUH

#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <cudnn.h>

#include "nn/cuda/vcuda.h"

// core/base.h is C11: give C++ its _Noreturn spelling and C linkage.
#ifndef _Noreturn
#define _Noreturn [[noreturn]]
#endif
extern "C" {
#include "core/base.h"
#include "nn/backend.h"
}

// Records a message (printf-style) as the last error of this thread.
extern "C" void vcuda_set_error(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define VCUDA_TRY(call)                                                        \
    do {                                                                       \
        cudaError_t e_ = (call);                                               \
        if (e_ != cudaSuccess) {                                               \
            vcuda_set_error(__FILE__, __LINE__, "%s: %s (%s)", #call,          \
                            cudaGetErrorString(e_), cudaGetErrorName(e_));     \
            return e_ == cudaErrorMemoryAllocation ? VCUDA_EOOM : VCUDA_ERUNTIME; \
        }                                                                      \
    } while (0)

#define CUBLAS_TRY(call)                                                       \
    do {                                                                       \
        cublasStatus_t s_ = (call);                                            \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                     \
            vcuda_set_error(__FILE__, __LINE__, "%s: %s (%d)", #call,          \
                            cublasGetStatusString(s_), (int)s_);               \
            return VCUDA_ECUBLAS;                                              \
        }                                                                      \
    } while (0)

#define CUDNN_TRY(call)                                                        \
    do {                                                                       \
        cudnnStatus_t s_ = (call);                                             \
        if (s_ != CUDNN_STATUS_SUCCESS) {                                      \
            vcuda_set_error(__FILE__, __LINE__, "%s: %s", #call,               \
                            cudnnGetErrorString(s_));                          \
            return VCUDA_ECUDNN;                                               \
        }                                                                      \
    } while (0)

// After a kernel launch: catches bad launch configurations right away
// (asynchronous faults surface at the next vcuda_sync).
#define VCUDA_LAUNCHED() VCUDA_TRY(cudaGetLastError())

// Grid size for n elements, capped so the grid-stride loops cover the rest.
static inline unsigned vcuda_blocks(int64_t n, int threads) {
    int64_t b = (n + threads - 1) / threads;
    if (b < 1) b = 1;
    if (b > 65535LL * 8) b = 65535LL * 8;
    return (unsigned)b;
}

#endif
