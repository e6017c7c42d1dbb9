// device.c: `--device` parsing and the GPU presence check (see device.h).
// The CUDA branch exists only when mk/cuda.mk defines VEL_HAVE_CUDA, i.e.
// when build/libvelcuda.a is linked into every binary.
#include "nn/device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#ifdef VEL_HAVE_CUDA
#include "nn/cuda/vcuda.h"
#endif

const char *device_strerror(int err) {
    switch (err) {
    case DEVICE_EBADNAME: return "unknown device (expected cpu or cuda)";
    case DEVICE_ENOCUDA: return "this build has no CUDA support (nvcc was not found at build time)";
    case DEVICE_ENOGPU: return "CUDA requested but no GPU found";
    default: return vel_strerror(err);
    }
}

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

int device_resolve(const char *name, device_kind *kind, int *index, char *msg, size_t msglen) {
    if (msglen) msg[0] = 0;
    int r = device_parse(name, kind, index);
    if (r) {
        snprintf(msg, msglen, "--device '%s': %s", name ? name : "(null)", device_strerror(r));
        return r;
    }
    if (*kind == DEVICE_CPU) return 0;
#ifdef VEL_HAVE_CUDA
    int n = 0;
    vcuda_device_count(&n);
    if (n <= 0) {
        snprintf(msg, msglen, "--device %s: %s (%s)", name, device_strerror(DEVICE_ENOGPU),
                 vcuda_last_error());
        return DEVICE_ENOGPU;
    }
    if (*index >= n) {
        snprintf(msg, msglen, "--device %s: %s (only %d GPU%s visible)", name,
                 device_strerror(DEVICE_ENOGPU), n, n == 1 ? "" : "s");
        return DEVICE_ENOGPU;
    }
    return 0;
#else
    snprintf(msg, msglen, "--device %s: %s", name, device_strerror(DEVICE_ENOCUDA));
    return DEVICE_ENOCUDA;
#endif
}
