// runtime.cu: device discovery, the per-process context (stream + cuBLAS,
// cuBLASLt, cuDNN handles), device memory, copies and the
// error buffer behind vcuda_last_error(). API and ownership: vcuda.h.
// Not here: kernels (convert.cu and the op files).
//
// Load-time safety: no global constructors call into CUDA; libcudart only
// reaches the driver on the first API call, and cudaGetDeviceCount reports a
// missing driver as an error code (cudaErrorNoDevice /
// cudaErrorInsufficientDriver), which vcuda_device_count turns into n = 0.
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <cublasLt.h>

#include "nn/cuda/check.cuh"

static thread_local char g_err[512];

extern "C" void vcuda_set_error(const char *file, int line, const char *fmt, ...) {
    int k = snprintf(g_err, sizeof g_err, "%s:%d: ", file, line);
    if (k < 0 || (size_t)k >= sizeof g_err) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err + k, sizeof g_err - (size_t)k, fmt, ap);
    va_end(ap);
}

extern "C" const char *vcuda_last_error(void) { return g_err; }

extern "C" int vcuda_device_count(int *n) {
    *n = 0;
    int c = 0;
    cudaError_t e = cudaGetDeviceCount(&c);
    if (e != cudaSuccess) {
        // No driver, no device, driver too old: all mean "no GPU here".
        vcuda_set_error(__FILE__, __LINE__, "cudaGetDeviceCount: %s (%s)",
                        cudaGetErrorString(e), cudaGetErrorName(e));
        cudaGetLastError();   // clear the sticky-free error so later calls start clean
        return 0;
    }
    if (c == 0) vcuda_set_error(__FILE__, __LINE__, "cudaGetDeviceCount: 0 devices");
    *n = c;
    return 0;
}

static int env_int(const char *name, int *out) {
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < 0 || v > 1 << 20) return -1;
    *out = (int)v;
    return 1;
}

extern "C" int vcuda_pick_device(int *device) {
    int n;
    vcuda_device_count(&n);
    if (n <= 0) return VCUDA_ENODEV;
    int local = 0;
    int r = env_int("LOCAL_RANK", &local);
    if (r == 0) r = env_int("SLURM_LOCALID", &local);
    if (r < 0) {
        vcuda_set_error(__FILE__, __LINE__, "LOCAL_RANK / SLURM_LOCALID is not a non-negative integer");
        return VEL_EINVAL;
    }
    *device = local % n;
    return 0;
}

struct vcuda_ctx {
    int device;
    int tf32;
    int autocast_bf16;   // fp32 linear ops run their GEMMs on bf16 copies (linear.cu)
    cudaStream_t stream;
    cublasHandle_t blas;
    cublasLtHandle_t lt;
    cudnnHandle_t dnn;
    void *ws;
    size_t ws_bytes;
    void *scratch;          // vcuda_ctx_scratch's buffer, grown on demand
    size_t scratch_bytes;
    cudaDeviceProp prop;
};

// Default math never lowers fp32 GEMMs to TF32 (that needs
// CUBLAS_TF32_TENSOR_OP_MATH), so fp32 matches the CPU within 1e-4, while
// bf16 GEMMs keep their tensor cores (pedantic mode could refuse them).
// Reduced-precision split-K reductions are disallowed: bf16 outputs are
// rounded once, from the fp32 sum.
static cublasMath_t math_mode(int tf32) {
    return (cublasMath_t)((tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH) |
                          CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION);
}

// cuBLASLt heuristics pick better kernels with a workspace; 32 MiB is what
// cuBLAS itself recommends for Hopper.
#define VCUDA_WS_BYTES ((size_t)32 << 20)

static int ctx_init(vcuda_ctx *c, int device) {
    int n;
    vcuda_device_count(&n);
    if (n <= 0) return VCUDA_ENODEV;
    if (device < 0) {
        int r = vcuda_pick_device(&device);
        if (r) return r;
    }
    if (device >= n) {
        vcuda_set_error(__FILE__, __LINE__, "device %d requested but only %d present", device, n);
        return VCUDA_ENODEV;
    }
    c->device = device;
    VCUDA_TRY(cudaSetDevice(device));
    VCUDA_TRY(cudaGetDeviceProperties(&c->prop, device));
    VCUDA_TRY(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    CUBLAS_TRY(cublasCreate(&c->blas));
    CUBLAS_TRY(cublasSetStream(c->blas, c->stream));
    CUBLAS_TRY(cublasSetMathMode(c->blas, math_mode(0)));
    CUBLAS_TRY(cublasLtCreate(&c->lt));
    CUDNN_TRY(cudnnCreate(&c->dnn));
    CUDNN_TRY(cudnnSetStream(c->dnn, c->stream));
    VCUDA_TRY(cudaMalloc(&c->ws, VCUDA_WS_BYTES));
    c->ws_bytes = VCUDA_WS_BYTES;
    CUBLAS_TRY(cublasSetWorkspace(c->blas, c->ws, c->ws_bytes));
    return 0;
}

extern "C" int vcuda_ctx_create(vcuda_ctx **out, int device) {
    *out = NULL;
    vcuda_ctx *c = (vcuda_ctx *)calloc(1, sizeof *c);
    if (!c) return VEL_ENOMEM;
    int r = ctx_init(c, device);
    if (r) {
        vcuda_ctx_destroy(&c);
        return r;
    }
    *out = c;
    return 0;
}

extern "C" void vcuda_ctx_destroy(vcuda_ctx **pc) {
    if (!pc || !*pc) return;
    vcuda_ctx *c = *pc;
    if (c->stream) cudaStreamSynchronize(c->stream);
    if (c->dnn) cudnnDestroy(c->dnn);
    if (c->lt) cublasLtDestroy(c->lt);
    if (c->blas) cublasDestroy(c->blas);
    if (c->ws) cudaFree(c->ws);
    if (c->scratch) cudaFree(c->scratch);
    if (c->stream) cudaStreamDestroy(c->stream);
    free(c);
    *pc = NULL;
}

extern "C" int vcuda_device(const vcuda_ctx *c) { return c->device; }
extern "C" void *vcuda_stream(const vcuda_ctx *c) { return (void *)c->stream; }
extern "C" void *vcuda_cublas(const vcuda_ctx *c) { return (void *)c->blas; }
extern "C" void *vcuda_cublaslt(const vcuda_ctx *c) { return (void *)c->lt; }
extern "C" void *vcuda_cudnn(const vcuda_ctx *c) { return (void *)c->dnn; }
extern "C" void *vcuda_workspace(const vcuda_ctx *c, size_t *bytes) {
    if (bytes) *bytes = c->ws_bytes;
    return c->ws;
}
extern "C" int vcuda_tf32(const vcuda_ctx *c) { return c->tf32; }
extern "C" int vcuda_autocast_bf16(const vcuda_ctx *c) { return c->autocast_bf16; }
extern "C" void vcuda_set_autocast_bf16(vcuda_ctx *c, int on) { c->autocast_bf16 = on ? 1 : 0; }

extern "C" int vcuda_ctx_scratch(vcuda_ctx *c, size_t bytes, void **p) {
    *p = NULL;
    if (bytes > c->scratch_bytes) {
        // cudaFree waits for the device, so no queued kernel still uses the old buffer.
        if (c->scratch) cudaFree(c->scratch);
        c->scratch = NULL;
        c->scratch_bytes = 0;
        VCUDA_TRY(cudaMalloc(&c->scratch, bytes));
        c->scratch_bytes = bytes;
    }
    *p = c->scratch;
    return 0;
}

extern "C" int vcuda_set_tf32(vcuda_ctx *c, int on) {
    CUBLAS_TRY(cublasSetMathMode(c->blas, math_mode(on)));
    c->tf32 = on ? 1 : 0;
    return 0;
}

extern "C" int vcuda_describe(const vcuda_ctx *c, char *buf, size_t len) {
    snprintf(buf, len, "%s (sm_%d%d, %.1f GiB, device %d)", c->prop.name, c->prop.major,
             c->prop.minor, (double)c->prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), c->device);
    return 0;
}

extern "C" int vcuda_sync(vcuda_ctx *c) {
    VCUDA_TRY(cudaStreamSynchronize(c->stream));
    VCUDA_TRY(cudaGetLastError());
    return 0;
}

// Every device allocation handed out is registered with nn/backend.h, so the
// op API sends any op on it to the CUDA side.
static int track(void *p, size_t bytes) {
    int r = nn_register_device_range(p, bytes);
    if (r) vcuda_set_error(__FILE__, __LINE__, "%s", vel_strerror(r));
    return r;
}

extern "C" int vcuda_malloc(void **p, size_t bytes) {
    *p = NULL;
    if (!bytes) bytes = 256;
    VCUDA_TRY(cudaMalloc(p, bytes));
    int r = track(*p, bytes);
    if (r) {
        cudaFree(*p);
        *p = NULL;
    }
    return r;
}

extern "C" void vcuda_free(void **p) {
    if (!p || !*p) return;
    nn_unregister_device_range(*p);
    cudaFree(*p);
    *p = NULL;
}

extern "C" int vcuda_memset0(vcuda_ctx *c, void *dst, size_t bytes) {
    VCUDA_TRY(cudaMemsetAsync(dst, 0, bytes, c->stream));
    return 0;
}

static int copy(vcuda_ctx *c, void *dst, const void *src, size_t bytes, cudaMemcpyKind k, int wait) {
    if (bytes == 0) return 0;
    VCUDA_TRY(cudaMemcpyAsync(dst, src, bytes, k, c->stream));
    if (wait) VCUDA_TRY(cudaStreamSynchronize(c->stream));
    return 0;
}

extern "C" int vcuda_h2d(vcuda_ctx *c, void *d, const void *s, size_t n) { return copy(c, d, s, n, cudaMemcpyHostToDevice, 0); }
extern "C" int vcuda_d2h(vcuda_ctx *c, void *d, const void *s, size_t n) { return copy(c, d, s, n, cudaMemcpyDeviceToHost, 0); }
extern "C" int vcuda_d2d(vcuda_ctx *c, void *d, const void *s, size_t n) { return copy(c, d, s, n, cudaMemcpyDeviceToDevice, 0); }
extern "C" int vcuda_h2d_sync(vcuda_ctx *c, void *d, const void *s, size_t n) { return copy(c, d, s, n, cudaMemcpyHostToDevice, 1); }
extern "C" int vcuda_d2h_sync(vcuda_ctx *c, void *d, const void *s, size_t n) { return copy(c, d, s, n, cudaMemcpyDeviceToHost, 1); }
