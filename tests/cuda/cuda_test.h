// cuda_test.h: shared set-up for the CUDA tests: a context for the first GPU
// or a clean Criterion skip ("no GPU found: ...") when there is none or when
// the build has no CUDA. Header-only so each test binary stays one file.
// Not here: comparison helpers (tests/util.h has them).
#ifndef TESTS_CUDA_CUDA_TEST_H
#define TESTS_CUDA_CUDA_TEST_H

#include <criterion/criterion.h>

#ifdef VEL_HAVE_CUDA
#include "nn/cuda/vcuda.h"

// Returns a context or skips the calling test. Caller destroys it.
static inline vcuda_ctx *cuda_test_ctx(void) {
    int n = 0;
    vcuda_device_count(&n);
    if (n <= 0) cr_skip_test("no GPU found (%s); CUDA test skipped", vcuda_last_error());
    vcuda_ctx *ctx = NULL;
    int r = vcuda_ctx_create(&ctx, 0);
    cr_assert_eq(r, 0, "vcuda_ctx_create: %s: %s", vcuda_strerror(r), vcuda_last_error());
    return ctx;
}

// Device copy of a host array (test set-up only: aborts the test on failure).
static inline void *cuda_test_upload(vcuda_ctx *ctx, const void *host, size_t bytes) {
    void *d = NULL;
    int r = vcuda_malloc(&d, bytes);
    cr_assert_eq(r, 0, "vcuda_malloc(%zu): %s", bytes, vcuda_last_error());
    if (host) r = vcuda_h2d_sync(ctx, d, host, bytes);
    else r = vcuda_memset0(ctx, d, bytes);
    cr_assert_eq(r, 0, "upload: %s", vcuda_last_error());
    return d;
}

static inline void cuda_test_download(vcuda_ctx *ctx, void *host, const void *dev, size_t bytes) {
    int r = vcuda_d2h_sync(ctx, host, dev, bytes);
    cr_assert_eq(r, 0, "download: %s", vcuda_last_error());
}

#define CUDA_OK(call)                                                          \
    do {                                                                       \
        int r_ = (call);                                                       \
        cr_assert_eq(r_, 0, "%s: %s: %s", #call, vcuda_strerror(r_), vcuda_last_error()); \
    } while (0)
#endif

#endif
