// cuda_test.h: shared set-up for the CUDA tests: a context for the first GPU
// or a clean Criterion skip ("no GPU found: ...") when there is none or when
// the build has no CUDA. Header-only so each test binary stays one file.
// Not here: comparison helpers (tests/util.h has them).
#ifndef TESTS_CUDA_CUDA_TEST_H
#define TESTS_CUDA_CUDA_TEST_H

#include <stdlib.h>

#include <criterion/criterion.h>

#include "core/tensor.h"
#include "tests/util.h"

#ifdef VEL_HAVE_CUDA
#include "core/error.h"
#include "nn/cuda/vcuda.h"
#include "nn/device.h"

// Returns a context or skips the calling test. Caller destroys it.
static inline vcuda_ctx *cuda_test_ctx(void) {
    int n = 0;
    vcuda_device_count(&n);
    if (n <= 0) cr_skip_test("no GPU found (%s); CUDA test skipped", vcuda_last_error());
    vcuda_ctx *ctx = NULL;
    int r = vcuda_ctx_create(&ctx, 0);
    cr_assert_eq(r, 0, "vcuda_ctx_create: %s: %s", vel_strerror(r), vcuda_last_error());
    return ctx;
}

// Makes the first GPU this thread's device for the op API (nn/device.h:
// device_activate) or skips the calling test. Caller: device_release().
static inline void cuda_test_activate(void) {
    if (device_cuda_count() <= 0) cr_skip_test("no GPU found; CUDA test skipped");
    char msg[256];
    int r = device_activate(DEVICE_CUDA, 0, msg, sizeof msg);
    cr_assert_eq(r, 0, "%s", msg);
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
        cr_assert_eq(r_, 0, "%s: %s: %s", #call, vel_strerror(r_), vcuda_last_error()); \
    } while (0)

// Downloads n floats from dev and compares with the CPU result (HACKING.md's
// |x - r| <= atol + rtol |r|, full report on failure).
static inline void parity_f32(vcuda_ctx *ctx, const char *what, const float *dev, const float *cpu,
                              int64_t n, double atol, double rtol) {
    float *h = (float *)malloc((size_t)n * sizeof(float));
    cuda_test_download(ctx, h, dev, (size_t)n * sizeof(float));
    cmp_result r = compare_f32(h, cpu, n, atol, rtol);
    cr_log_info("%s: n=%lld max_abs=%.3g max_rel=%.3g nmse=%.3g", what, (long long)n, r.max_abs,
                r.max_rel, r.nmse);
    expect_close_f32(what, h, cpu, n, atol, rtol);
    free(h);
}

// bf16 results: rtol 1e-2 (atol for values near zero) and NMSE <= 1e-4
// (issue 4's bf16 criteria), after widening the device bf16 to f32.
static inline void parity_bf16(vcuda_ctx *ctx, const char *what, const uint16_t *dev,
                               const float *cpu, int64_t n, double atol) {
    uint16_t *hb = (uint16_t *)malloc((size_t)n * 2);
    float *h = (float *)malloc((size_t)n * sizeof(float));
    cuda_test_download(ctx, hb, dev, (size_t)n * 2);
    for (int64_t i = 0; i < n; i++) h[i] = bf16_to_f32(hb[i]);
    cmp_result r = compare_f32(h, cpu, n, atol, 1e-2);
    cr_log_info("%s (bf16): n=%lld max_abs=%.3g max_rel=%.3g nmse=%.3g", what, (long long)n,
                r.max_abs, r.max_rel, r.nmse);
    cr_expect_leq(r.nmse, 1e-4, "%s: NMSE %.3g > 1e-4", what, r.nmse);
    expect_close_f32(what, h, cpu, n, atol, 1e-2);
    free(h);
    free(hb);
}

// Host array of n floats rounded to bf16 (bits) and the rounded values back
// as f32, so the CPU reference sees exactly the inputs the GPU sees.
static inline uint16_t *to_bf16_round(float *x, int64_t n) {
    uint16_t *b = (uint16_t *)malloc((size_t)n * 2);
    for (int64_t i = 0; i < n; i++) {
        b[i] = f32_to_bf16(x[i]);
        x[i] = bf16_to_f32(b[i]);
    }
    return b;
}
#endif

#endif
