// test_parity_flow_loss.c: nn/flow_loss.h on the GPU (flow_loss_cuda, and
// the op API on device pointers) against the CPU op on the same inputs: the
// two loss values (reduced on the device in double: relative 1e-12, the
// difference being only the order of double additions), dv accumulated onto
// a non-zero start (1e-4, HACKING.md's CUDA-vs-CPU default; the kernels are
// loss.cu's, checked there too), a position where |v| is below the cosine's
// eps, cos_weight 0, values only (dv NULL), a size that is not a multiple of
// the reduction grid, and two runs bit-identical. Skips without a GPU.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "nn/flow_loss.h"
#include "tests/cuda/cuda_test.h"

#ifdef VEL_HAVE_CUDA
#include "core/error.h"
#include "nn/backend.h"
#include "nn/cuda/ops.h"
#include "nn/device.h"

#define VTOL 1e-12
#define TOL 1e-4

static void expect_vals(const char *what, const double *g, const double *c) {
    for (int k = 0; k < 2; k++)
        cr_expect(fabs(g[k] - c[k]) <= VTOL * fabs(c[k]) + 1e-300, "%s: value %d gpu %.17g cpu %.17g",
                  what, k, g[k], c[k]);
}

// One comparison: (O, C, I) tensors, weight w; the first position's v is
// set to ~0 (below the cosine eps) when tiny_first.
static void compare(int O, int C, int I, float w, int tiny_first, uint64_t seed) {
    vcuda_ctx *ctx = cuda_test_ctx();
    const int64_t n = (int64_t)O * C * I;
    float *v = malloc(n * 4), *u = malloc(n * 4), *dv = malloc(n * 4);
    fill_normal(v, n, seed, 1.0f);
    fill_normal(u, n, seed + 1, 1.0f);
    fill_normal(dv, n, seed + 2, 0.1f);
    if (tiny_first)
        for (int c = 0; c < C; c++) v[(int64_t)c * I] = 1e-12f;
    float *d_v = cuda_test_upload(ctx, v, n * 4), *d_u = cuda_test_upload(ctx, u, n * 4);
    float *d_dv = cuda_test_upload(ctx, dv, n * 4);
    double *d_vals = cuda_test_upload(ctx, NULL, 2 * sizeof(double));
    double cv[2], gv[2], gv2[2];
    flow_loss(cv, dv, v, u, O, C, I, w);
    CUDA_OK(flow_loss_cuda(ctx, d_vals, d_dv, d_v, d_u, O, C, I, w));
    CUDA_OK(vcuda_sync(ctx));
    cuda_test_download(ctx, gv, d_vals, sizeof gv);
    cr_log_info("O%d C%d I%d w%g: mse gpu %.17g cpu %.17g; cos gpu %.17g cpu %.17g", O, C, I, w,
                gv[0], cv[0], gv[1], cv[1]);
    expect_vals("flow loss", gv, cv);
    parity_f32(ctx, "flow loss dv (accumulated)", d_dv, dv, n, TOL, TOL);
    // values only, twice: identical bits, and equal to the first values
    CUDA_OK(flow_loss_cuda(ctx, d_vals, NULL, d_v, d_u, O, C, I, w));
    CUDA_OK(vcuda_sync(ctx));
    cuda_test_download(ctx, gv2, d_vals, sizeof gv2);
    cr_expect(memcmp(gv, gv2, sizeof gv) == 0, "values differ between two runs");
    void *p[] = {d_v, d_u, d_dv, d_vals};
    for (int i = 0; i < 4; i++) vcuda_free(&p[i]);
    free(v); free(u); free(dv);
    vcuda_ctx_destroy(&ctx);
}

// The B/1 step's loss shape (batch 4 here): 32 channels of 16 x 16.
Test(parity_flow_loss, dit_b1_shape) { compare(4, 32, 256, 1.0f, 0, 1); }
// More elements than one pass of the 256 x 256 grid, not a multiple of it.
Test(parity_flow_loss, ragged_large) { compare(7, 5, 4001, 0.5f, 0, 2); }
Test(parity_flow_loss, tiny_vector_below_eps) { compare(2, 4, 9, 1.0f, 1, 3); }
Test(parity_flow_loss, mse_only) { compare(3, 4, 10, 0.0f, 0, 4); }

// Through the op API on device memory (as models/dit_train.c calls it).
Test(parity_flow_loss, op_api_dispatch) {
    cuda_test_activate();
    enum { O = 2, C = 4, I = 64, N = O * C * I };
    float v[N], u[N], dv[N] = {0}, h[N];
    fill_normal(v, N, 11, 1.0f);
    fill_normal(u, N, 12, 1.0f);
    double cv[2], gv[2];
    flow_loss(cv, dv, v, u, O, C, I, 1.0f);
    float *d[3];
    double *dvals;
    const float *src[3] = {v, u, NULL};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(device_alloc(DEVICE_CUDA, (void **)&d[i], sizeof v), 0);
        if (src[i]) cr_assert_eq(device_copy(d[i], src[i], sizeof v), 0);
    }
    cr_assert_eq(device_alloc(DEVICE_CUDA, (void **)&dvals, sizeof gv), 0);
    flow_loss(dvals, d[2], d[0], d[1], O, C, I, 1.0f);
    int e = nn_sync();
    cr_assert_eq(e, 0, "%s", vel_errmsg(e));
    cr_assert_eq(device_copy(gv, dvals, sizeof gv), 0);
    expect_vals("op API", gv, cv);
    cr_assert_eq(device_copy(h, d[2], sizeof h), 0);
    expect_close_f32("op API dv", h, dv, N, TOL, TOL);
    for (int i = 0; i < 3; i++) device_free((void **)&d[i]);
    device_free((void **)&dvals);
    device_release();
}
#else
Test(parity_flow_loss, skipped) { cr_skip_test("built without nvcc: CUDA parity tests skipped"); }
#endif
