// test_runtime.c: nn/device.h parsing (runs everywhere) and the nn/cuda
// runtime: context, copies, device arena, bf16 conversion bit-identical to
// nn/tensor.c's (skipped with a message when there is no GPU).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "core/tensor.h"
#include "nn/arena.h"
#include "nn/backend.h"
#include "nn/device.h"
#include "tests/cuda/cuda_test.h"
#include "tests/util.h"

Test(device, parse) {
    device_kind k;
    int idx;
    cr_assert_eq(device_parse("cpu", &k, &idx), 0);
    cr_assert_eq(k, DEVICE_CPU);
    cr_assert_eq(idx, -1);
    cr_assert_eq(device_parse("cuda", &k, &idx), 0);
    cr_assert_eq(k, DEVICE_CUDA);
    cr_assert_eq(device_parse("cuda:3", &k, &idx), 0);
    cr_assert_eq(idx, 3);
    cr_assert_eq(device_parse("gpu", &k, &idx), 0);
    cr_assert_eq(k, DEVICE_CUDA);
    const char *bad[] = {"", "CPU", "cudax", "cuda:", "cuda:-1", "cuda:1x", "cuda:99999", "tpu", NULL};
    for (int i = 0; bad[i]; i++)
        cr_assert_eq(device_parse(bad[i], &k, &idx), DEVICE_EBADNAME, "'%s' accepted", bad[i]);
    cr_assert_eq(device_parse(NULL, &k, &idx), DEVICE_EBADNAME);
}

Test(device, resolve_messages) {
    device_kind k;
    int idx;
    cr_assert_eq(device_resolve("cpu", &k, &idx), 0);
    cr_assert_eq(device_resolve("npu", &k, &idx), DEVICE_EBADNAME);
    const char *msg = vel_errmsg(DEVICE_EBADNAME);
    cr_assert(strstr(msg, "npu") && strstr(msg, "expected cpu or cuda"), "msg: %s", msg);
    int r = device_resolve("cuda", &k, &idx);
    msg = vel_errmsg(r);
    if (!device_cuda_built()) {
        cr_assert_eq(r, DEVICE_ENOCUDA);
        cr_assert(strstr(msg, "no CUDA support"), "msg: %s", msg);
    } else if (device_cuda_count() == 0) {
        cr_assert_eq(r, DEVICE_ENOGPU);
        cr_assert(strstr(msg, "CUDA requested but no GPU found"), "msg: %s", msg);
    } else {
        cr_assert_eq(r, 0, "msg: %s", msg);
        cr_assert_eq(device_resolve("cuda:4095", &k, &idx), DEVICE_ENOGPU);
    }
}

#ifdef VEL_HAVE_CUDA
Test(cuda_runtime, no_gpu_is_reported_not_fatal) {
    int n = -1;
    cr_assert_eq(vcuda_device_count(&n), 0);
    cr_assert(n >= 0);
    if (n == 0) {
        vcuda_ctx *ctx = (vcuda_ctx *)1;
        cr_assert_eq(vcuda_ctx_create(&ctx, -1), VCUDA_ENODEV);
        cr_assert_null(ctx);
        cr_assert(strlen(vcuda_last_error()) > 0);
    }
}

Test(cuda_runtime, context_copies_arena) {
    vcuda_ctx *ctx = cuda_test_ctx();
    char desc[256];
    vcuda_describe(ctx, desc, sizeof desc);
    cr_log_info("device: %s", desc);
    cr_assert_eq(vcuda_tf32(ctx), 0, "TF32 must be off by default");
    vcuda_ctx_destroy(&ctx);
    cr_assert_null(ctx);
    // The device arena models use: nn/arena.h on the context of device_activate.
    char msg[256];
    cr_assert_eq(device_activate(DEVICE_CUDA, 0, msg, sizeof msg), 0, "%s", msg);
    arena a;
    arena_measure(&a);
    cr_assert_null(arena_floats(&a, 1000));
    cr_assert_null(arena_floats(&a, 3));
    cr_assert_eq(arena_commit_on(&a, DEVICE_CUDA), 0, "%s", vel_error_detail());
    float *d0 = arena_floats(&a, 1000), *d1 = arena_floats(&a, 3);
    cr_assert_eq((uintptr_t)d0 % ARENA_ALIGN, 0);
    cr_assert_eq((uintptr_t)d1 % ARENA_ALIGN, 0);
    cr_assert(nn_on_device(d0) && nn_on_device(d1 + 2));
    float h[1000], back[1000];
    fill_normal(h, 1000, 1, 1.0f);
    cr_assert_eq(device_copy(d0, h, sizeof h), 0);
    cr_assert_eq(device_copy(d0 + 500, d0, 500 * sizeof(float)), 0);
    cr_assert_eq(device_copy(back, d0, sizeof back), 0);
    cr_assert_eq(memcmp(back, h, 500 * sizeof(float)), 0);
    cr_assert_eq(memcmp(back + 500, h, 500 * sizeof(float)), 0);
    float z[3] = {1, 2, 3};
    cr_assert_eq(device_copy(z, d1, sizeof z), 0);   // committed arena is zeroed
    cr_assert(z[0] == 0 && z[1] == 0 && z[2] == 0);
    char *base = a.base;
    arena_free(&a);
    cr_assert(!nn_on_device(base), "freed arena still registered");
    device_release();
}

Test(cuda_runtime, bf16_matches_cpu_bits) {
    vcuda_ctx *ctx = cuda_test_ctx();
    enum { N = 4096 };
    float *h = malloc(N * sizeof(float)), *back = malloc(N * sizeof(float));
    uint16_t *hb = malloc(N * 2);
    fill_normal(h, N, 7, 3.0f);
    // Ties, denormals, huge values, infinities and NaN.
    h[0] = 1.00390625f;   // exactly between two bf16 values: rounds to even
    h[1] = 1.01171875f;
    h[2] = 1e-40f;
    h[3] = 3.4e38f;
    h[4] = INFINITY;
    h[5] = -INFINITY;
    h[6] = NAN;
    h[7] = -0.0f;
    float *d = cuda_test_upload(ctx, h, N * sizeof(float));
    uint16_t *db = cuda_test_upload(ctx, NULL, N * 2);
    CUDA_OK(vcuda_f32_to_bf16(ctx, db, d, N));
    cuda_test_download(ctx, hb, db, N * 2);
    for (int i = 0; i < N; i++)
        cr_assert_eq(hb[i], f32_to_bf16(h[i]), "i=%d x=%g gpu=%04x cpu=%04x", i, h[i], hb[i],
                     f32_to_bf16(h[i]));
    CUDA_OK(vcuda_bf16_to_f32(ctx, d, db, N));
    cuda_test_download(ctx, back, d, N * sizeof(float));
    for (int i = 0; i < N; i++) {
        float want = bf16_to_f32(hb[i]);
        cr_assert(memcmp(&back[i], &want, 4) == 0, "i=%d", i);
    }
    vcuda_free((void **)&d);
    vcuda_free((void **)&db);
    cr_assert_null(d);
    free(h); free(back); free(hb);
    vcuda_ctx_destroy(&ctx);
}
#else
Test(cuda_runtime, skipped) { cr_skip_test("built without nvcc: CUDA tests skipped"); }
#endif
