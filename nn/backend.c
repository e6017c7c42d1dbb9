// backend.c: the device range table, the per-thread CUDA context and the
// sticky op error behind nn/backend.h.
#include "nn/backend.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "core/base.h"
#ifdef VEL_HAVE_CUDA
#include "nn/cuda/vcuda.h"
#endif

typedef struct { uintptr_t lo, hi; } range;

static range g_ranges[NN_MAX_DEVICE_RANGES];
static int g_nranges;                 // guarded by g_lock
static atomic_int g_any;              // g_nranges, readable without the lock
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static _Thread_local struct vcuda_ctx *t_ctx;
static _Thread_local int t_err;       // pending sticky error (0: none)
static _Thread_local char t_msg[320];

int nn_register_device_range(const void *base, size_t bytes) {
    if (!base || !bytes) return 0;
    pthread_mutex_lock(&g_lock);
    int r = 0;
    if (g_nranges == NN_MAX_DEVICE_RANGES) {
        r = NN_ERANGES;
    } else {
        g_ranges[g_nranges].lo = (uintptr_t)base;
        g_ranges[g_nranges].hi = (uintptr_t)base + bytes;
        g_nranges++;
        atomic_store(&g_any, g_nranges);
    }
    pthread_mutex_unlock(&g_lock);
    return r;
}

void nn_unregister_device_range(const void *base) {
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < g_nranges; i++) {
        if (g_ranges[i].lo == (uintptr_t)base) {
            g_ranges[i] = g_ranges[--g_nranges];
            break;
        }
    }
    atomic_store(&g_any, g_nranges);
    pthread_mutex_unlock(&g_lock);
}

int nn_on_device(const void *p) {
    if (!p || atomic_load_explicit(&g_any, memory_order_acquire) == 0) return 0;
    uintptr_t a = (uintptr_t)p;
    int hit = 0;
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < g_nranges && !hit; i++) hit = a >= g_ranges[i].lo && a < g_ranges[i].hi;
    pthread_mutex_unlock(&g_lock);
    return hit;
}

int nn_fail(int code, const char *op, const char *text) {
    if (!t_err) {
        t_err = code;
        snprintf(t_msg, sizeof t_msg, "%s: %s", op, text);
    }
    return code;
}

int nn_no_cuda(const char *op) {
    return nn_fail(NN_ENOCUDAOP, op, vel_strerror(NN_ENOCUDAOP));
}

int nn_cuda_status(const char *op, int status) {
    if (status == 0) return 0;
#ifdef VEL_HAVE_CUDA
    char text[300];
    const char *detail = vcuda_last_error();
    snprintf(text, sizeof text, "%s%s%s", vel_strerror(status), detail[0] ? ": " : "", detail);
    return nn_fail(status, op, text);
#else
    return nn_fail(status, op, vel_strerror(status));
#endif
}

int nn_where(const char *op, int n, const void *const *ptrs) {
    if (atomic_load_explicit(&g_any, memory_order_acquire) == 0) return NN_HOST;
    int dev = 0, host = 0;
    for (int i = 0; i < n; i++) {
        if (!ptrs[i]) continue;
        if (nn_on_device(ptrs[i])) dev++;
        else host++;
    }
    if (!dev) return NN_HOST;
    if (host) {
        nn_fail(NN_EMIXED, op, vel_strerror(NN_EMIXED));
        return NN_FAIL;
    }
#ifdef VEL_HAVE_CUDA
    if (!t_ctx) {
        nn_fail(NN_ENOCTX, op, "device pointers but no CUDA context on this thread "
                               "(call device_activate first)");
        return NN_FAIL;
    }
    return NN_DEVICE;
#else
    nn_fail(NN_ENOCUDABUILD, op, "device pointers in a binary built without CUDA");
    return NN_FAIL;
#endif
}

void nn_set_cuda_ctx(struct vcuda_ctx *ctx) { t_ctx = ctx; }
struct vcuda_ctx *nn_cuda_ctx(void) { return t_ctx; }

int nn_sync(void) {
#ifdef VEL_HAVE_CUDA
    if (t_ctx) {
        int r = vcuda_sync(t_ctx);
        if (r) nn_cuda_status("nn_sync", r);
    }
#endif
    int e = t_err;
    t_err = 0;
    // Hand the first error over in the one error style (core/error.h), so the
    // caller prints vel_errmsg(e) like any other failure.
    if (e) vel_fail(e, "%s", t_msg);
    return e;
}

int nn_pending_error(void) { return t_err; }
const char *nn_last_error(void) { return t_msg; }
