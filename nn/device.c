// device.c: `--device` parsing, the GPU presence check, the thread's device
// context and device memory (see device.h). The CUDA branches exist only when
// mk/cuda.mk defines VEL_HAVE_CUDA, i.e. when build/libvelcuda.a is linked
// into every binary.
#include "nn/device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "nn/backend.h"
#ifdef VEL_HAVE_CUDA
#include "nn/cuda/vcuda.h"
#endif

int device_parse(const char *name, device_kind *kind, int *index) {
    *index = -1;
    if (!name) return DEVICE_EBADNAME;
    if (strcmp(name, "cpu") == 0) {
        *kind = DEVICE_CPU;
        return 0;
    }
    const char *rest = NULL;
    if (strncmp(name, "cuda", 4) == 0) rest = name + 4;
    else if (strncmp(name, "gpu", 3) == 0) rest = name + 3;
    if (!rest) return DEVICE_EBADNAME;
    if (*rest == ':') {
        char *end;
        if (rest[1] < '0' || rest[1] > '9') return DEVICE_EBADNAME;
        long v = strtol(rest + 1, &end, 10);
        if (*end || v > 4095) return DEVICE_EBADNAME;
        *index = (int)v;
    } else if (*rest) {
        return DEVICE_EBADNAME;
    }
    *kind = DEVICE_CUDA;
    return 0;
}

const char *device_name(device_kind kind) { return kind == DEVICE_CUDA ? "cuda" : "cpu"; }

int device_cuda_built(void) {
#ifdef VEL_HAVE_CUDA
    return 1;
#else
    return 0;
#endif
}

int device_cuda_count(void) {
#ifdef VEL_HAVE_CUDA
    int n = 0;
    vcuda_device_count(&n);
    return n;
#else
    return 0;
#endif
}

int device_resolve(const char *name, device_kind *kind, int *index) {
    int r = device_parse(name, kind, index);
    if (r) return vel_fail(r, "'%s'", name ? name : "(null)");
    if (*kind == DEVICE_CPU) return 0;
#ifdef VEL_HAVE_CUDA
    int n = 0;
    vcuda_device_count(&n);
    if (n <= 0) return vel_fail(DEVICE_ENOGPU, "%s", vcuda_last_error());
    if (*index >= n) return vel_fail(DEVICE_ENOGPU, "only %d GPU%s visible", n, n == 1 ? "" : "s");
    return 0;
#else
    return DEVICE_ENOCUDA;
#endif
}

// ---- the thread's device ------------------------------------------------------

#ifdef VEL_HAVE_CUDA
static _Thread_local vcuda_ctx *t_ctx;   // owned; also nn_cuda_ctx() of this thread
#endif

// Failures give their sentence both in msg and as the vel_fail detail.
int device_activate(device_kind kind, int index, char *msg, size_t msglen) {
    if (msglen) msg[0] = 0;
    if (kind == DEVICE_CPU) return 0;
    char name[32];
    if (index >= 0) snprintf(name, sizeof name, "cuda:%d", index);
    else snprintf(name, sizeof name, "cuda");
#ifdef VEL_HAVE_CUDA
    device_kind k;
    int idx, r = device_resolve(name, &k, &idx);
    if (r) {
        snprintf(msg, msglen, "--device %s: %s", name, vel_errmsg(r));
        return vel_fail(r, "%s", msg);   // the detail is the same sentence
    }
    device_release();
    r = vcuda_ctx_create(&t_ctx, index);
    if (r) {
        snprintf(msg, msglen, "--device %s: %s: %s (%s)", name, vel_strerror(DEVICE_ECONTEXT),
                 vel_strerror(r), vcuda_last_error());
        return vel_fail(DEVICE_ECONTEXT, "%s", msg);
    }
    nn_set_cuda_ctx(t_ctx);
    return 0;
#else
    snprintf(msg, msglen, "--device %s: %s", name, vel_strerror(DEVICE_ENOCUDA));
    return vel_fail(DEVICE_ENOCUDA, "%s", msg);
#endif
}

void device_release(void) {
#ifdef VEL_HAVE_CUDA
    if (!t_ctx) return;
    nn_set_cuda_ctx(NULL);
    vcuda_ctx_destroy(&t_ctx);
#endif
}

device_kind device_current(void) {
#ifdef VEL_HAVE_CUDA
    if (t_ctx) return DEVICE_CUDA;
#endif
    return DEVICE_CPU;
}

int device_autocast_bf16(int on) {
#ifdef VEL_HAVE_CUDA
    if (!t_ctx) return vel_fail(DEVICE_ENOCTX, "device_autocast_bf16: no device is active on this thread");
    vcuda_set_autocast_bf16(t_ctx, on);
    return 0;
#else
    (void)on;
    return vel_fail(DEVICE_ENOCUDA, "device_autocast_bf16: built without CUDA");
#endif
}

device_kind device_of(const void *p) { return nn_on_device(p) ? DEVICE_CUDA : DEVICE_CPU; }

// ---- memory ---------------------------------------------------------------------

#ifdef VEL_HAVE_CUDA
// The context device memory is used through: this thread's (device_activate).
static vcuda_ctx *need_ctx(const char *what) {
    vcuda_ctx *c = (vcuda_ctx *)nn_cuda_ctx();
    if (!c) vel_fail(DEVICE_ENOCTX, "%s: no device is active on this thread (device_activate)", what);
    return c;
}

static int cuda_fail(int r, const char *what) {
    char d[300];
    snprintf(d, sizeof d, "%s: %s (%s)", what, vel_strerror(r), vcuda_last_error());
    return vel_fail(r == VCUDA_EOOM ? VEL_ENOMEM : DEVICE_ECOPY, "%s", d);
}
#endif

int device_alloc(device_kind kind, void **p, size_t bytes) {
    *p = NULL;
    size_t n = (bytes + 63) & ~(size_t)63;
    if (n == 0) n = 64;
    if (kind == DEVICE_CPU) {
        *p = aligned_alloc(64, n);
        if (!*p) return vel_fail(VEL_ENOMEM, "device_alloc: out of host memory");
        memset(*p, 0, n);
        return 0;
    }
#ifdef VEL_HAVE_CUDA
    vcuda_ctx *c = need_ctx("device_alloc");
    if (!c) return DEVICE_ENOCTX;
    int r = vcuda_malloc(p, n);
    if (r) return cuda_fail(r, "device_alloc");
    r = vcuda_memset0(c, *p, n);
    if (!r) r = vcuda_sync(c);
    if (r) {
        vcuda_free(p);
        return cuda_fail(r, "device_alloc (zeroing)");
    }
    return 0;
#else
    return vel_fail(DEVICE_ENOCUDA, "device_alloc: built without CUDA");
#endif
}

void device_free(void **p) {
    if (!p || !*p) return;
#ifdef VEL_HAVE_CUDA
    if (nn_on_device(*p)) {
        vcuda_free(p);   // cudaFree waits for the device first
        return;
    }
#endif
    free(*p);
    *p = NULL;
}

int device_copy(void *dst, const void *src, size_t bytes) {
    if (bytes == 0) return 0;
    int dd = nn_on_device(dst), sd = nn_on_device(src);
    if (!dd && !sd) {
        memmove(dst, src, bytes);
        return 0;
    }
#ifdef VEL_HAVE_CUDA
    vcuda_ctx *c = need_ctx("device_copy");
    if (!c) return DEVICE_ENOCTX;
    int r = dd && sd ? vcuda_d2d(c, dst, src, bytes)
            : dd     ? vcuda_h2d_sync(c, dst, src, bytes)
                     : vcuda_d2h_sync(c, dst, src, bytes);
    return r ? cuda_fail(r, "device_copy") : 0;
#else
    return vel_fail(DEVICE_ENOCUDA, "device_copy: built without CUDA");
#endif
}

int device_zero(void *dst, size_t bytes) {
    if (bytes == 0) return 0;
    if (!nn_on_device(dst)) {
        memset(dst, 0, bytes);
        return 0;
    }
#ifdef VEL_HAVE_CUDA
    vcuda_ctx *c = need_ctx("device_zero");
    if (!c) return DEVICE_ENOCTX;
    int r = vcuda_memset0(c, dst, bytes);
    return r ? cuda_fail(r, "device_zero") : 0;
#else
    return vel_fail(DEVICE_ENOCUDA, "device_zero: built without CUDA");
#endif
}
