// test_parity_embed_ema.c: CUDA vs CPU, through the op API, for the timestep
// embedding (within 1e-6: double on both sides, rounded once), the EMA
// update and swap (bit-identical: the same fp32 expression, no fused
// multiply-add) and clip_grad_norm (norm and clipped gradients within 1e-6;
// the device sums each slice in a tree, the CPU in a running sum).
// Skips without a GPU.
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "core/error.h"
#include "nn/backend.h"
#include "nn/device.h"
#include "nn/ema.h"
#include "nn/embed.h"
#include "nn/optim.h"
#include "nn/params.h"
#include "tests/util.h"

#ifdef VEL_HAVE_CUDA

static void activate_or_skip(void) {
    if (device_cuda_count() <= 0) cr_skip_test("no GPU found; CUDA test skipped");
    char msg[256];
    cr_assert_eq(device_activate(DEVICE_CUDA, 0, msg, sizeof msg), 0, "%s", msg);
}

static float *upload(const float *h, size_t n) {
    float *d;
    cr_assert_eq(device_alloc(DEVICE_CUDA, (void **)&d, n * 4), 0, "%s", vel_error_detail());
    if (h) cr_assert_eq(device_copy(d, h, n * 4), 0, "%s", vel_error_detail());
    return d;
}

static void download(float *h, const float *d, size_t n) {
    cr_assert_eq(device_copy(h, d, n * 4), 0, "%s", vel_error_detail());
}

Test(parity_embed_ema, timestep_embedding) {
    activate_or_skip();
    enum { B = 9, DIM = 256 };
    float t[B], out[B * DIM], got[B * DIM];
    fill_uniform(t, B, 3, 0.0f, 1.0f);
    t[0] = 0.0f;
    t[1] = 1.0f;
    timestep_embedding(out, t, B, DIM, 10000.0);
    float *d_t = upload(t, B), *d_out = upload(NULL, B * DIM);
    timestep_embedding(d_out, d_t, B, DIM, 10000.0);
    cr_assert_eq(nn_sync(), 0, "%s", nn_last_error());
    download(got, d_out, B * DIM);
    expect_close_f32("timestep embedding", got, out, B * DIM, 1e-6, 1e-6);
    device_free((void **)&d_t);
    device_free((void **)&d_out);
    device_release();
}

static void table(param_table *pt, uint64_t seed) {
    param_table_init(pt);
    param_add(pt, "w", 2, (int64_t[]){37, 29});
    param_add(pt, "b", 1, (int64_t[]){29});
    cr_assert_eq(param_table_commit(pt), 0);
    fill_normal(pt->values, pt->total, seed, 1.0f);
    fill_normal(pt->grads, pt->total, seed + 1, 3.0f);
}

Test(parity_embed_ema, ema_update_swap_and_clip) {
    activate_or_skip();
    param_table c, g;
    table(&c, 5);
    table(&g, 5);
    cr_assert_eq(param_table_move(&g, DEVICE_CUDA), 0, "%s", vel_error_detail());
    ema *ec, *eg;
    cr_assert_eq(ema_create(&ec, &c), 0);
    cr_assert_eq(ema_create(&eg, &g), 0);
    for (int step = 0; step < 3; step++) {   // move the weights, then average
        fill_normal(c.values, c.total, 10 + step, 1.0f);
        cr_assert_eq(device_copy(g.values, c.values, (size_t)c.total * 4), 0);
        ema_update(ec, &c, 0.9);
        ema_update(eg, &g, 0.9);
    }
    ema_swap(ec, &c);
    ema_swap(eg, &g);
    float norm_c = clip_grad_norm(&c, 1.0f), norm_g = clip_grad_norm(&g, 1.0f);
    cr_assert_eq(nn_sync(), 0, "%s", nn_last_error());
    size_t n = (size_t)c.total;
    float *h = malloc(n * 4);
    download(h, eg->shadow, n);
    cr_expect_eq(memcmp(h, ec->shadow, n * 4), 0, "EMA shadow after swap differs from the CPU's");
    download(h, g.values, n);
    cr_expect_eq(memcmp(h, c.values, n * 4), 0, "EMA values after swap differ from the CPU's");
    cr_expect_float_eq(norm_g, norm_c, 1e-6f * norm_c, "norm %g vs CPU %g", norm_g, norm_c);
    download(h, g.grads, n);
    expect_close_f32("clipped gradients", h, c.grads, (int64_t)n, 1e-6, 1e-6);
    free(h);
    ema_destroy(&ec);
    ema_destroy(&eg);
    param_table_free(&c);
    param_table_free(&g);
    device_release();
}
#else
Test(parity_embed_ema, skipped) { cr_skip_test("built without nvcc: CUDA parity tests skipped"); }
#endif
