// test_op_api.c: the op API on the GPU. The same model code (a two-layer MLP
// with an MSE loss and an Adam step, and an attention forward/backward) runs
// once with host buffers and once with its parameters moved to the device
// (param_table_move) and its activations in a device arena; the results
// agree within 1e-4 and nn_sync() reports no error. Also: an op with no CUDA
// implementation on device memory is a named sticky error, not a CPU read.
// Skips without a GPU.
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "core/error.h"
#include "nn/activation.h"
#include "nn/arena.h"
#include "nn/attention.h"
#include "nn/backend.h"
#include "nn/device.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "nn/optim.h"
#include "nn/params.h"
#include "tests/cuda/cuda_test.h"
#include "tests/util.h"

#ifdef VEL_HAVE_CUDA

#define TOL 1e-4

enum { N = 37, C = 24, H = 64, O = 12 };

typedef struct {
    float y[N * O];            // model output after the step
    float values[8192];        // parameters after the step
    int64_t total;
} mlp_result;

static float *to_host(const void *p, size_t bytes) {
    float *h = malloc(bytes);
    cr_assert_eq(device_copy(h, p, bytes), 0, "%s", vel_error_detail());
    return h;
}

// The model: y = W2 gelu(W1 x + b1) + b2, loss = mse(y, t), one Adam step,
// then a second forward. Identical code for both placements.
static void run_mlp(device_kind where, mlp_result *res) {
    param_table pt;
    param_table_init(&pt);
    param_add(&pt, "w1", 2, (int64_t[]){H, C});
    param_add(&pt, "b1", 1, (int64_t[]){H});
    param_add(&pt, "w2", 2, (int64_t[]){O, H});
    param_add(&pt, "b2", 1, (int64_t[]){O});
    cr_assert_eq(param_table_commit(&pt), 0);
    fill_normal(pt.values, pt.total, 7, 0.2f);   // host-side initialisation
    cr_assert_eq(param_table_move(&pt, where), 0, "%s", vel_error_detail());
    float *w1 = param_data(&pt, 0), *b1 = param_data(&pt, 1);
    float *w2 = param_data(&pt, 2), *b2 = param_data(&pt, 3);

    float hx[N * C], ht[N * O];
    fill_normal(hx, N * C, 8, 1.0f);
    fill_normal(ht, N * O, 9, 1.0f);
    arena a;
    for (int pass = 0; pass < 2; pass++) {   // measure, then carve for real
        if (pass == 0) arena_measure(&a);
        else cr_assert_eq(arena_commit_on(&a, where), 0, "%s", vel_error_detail());
        float *x = arena_floats(&a, N * C), *t = arena_floats(&a, N * O);
        float *h = arena_floats(&a, N * H), *g = arena_floats(&a, N * H);
        float *y = arena_floats(&a, N * O), *dy = arena_floats(&a, N * O);
        float *dg = arena_floats(&a, N * H), *dh = arena_floats(&a, N * H);
        if (pass == 0) continue;
        cr_assert_eq(device_copy(x, hx, sizeof hx), 0);
        cr_assert_eq(device_copy(t, ht, sizeof ht), 0);
        optim_config oc = optim_defaults(OPTIM_ADAMW);
        optim *o = NULL;
        cr_assert_eq(optim_create(&o, &pt, &oc), 0);
        param_zero_grads(&pt);
        linear_forward(h, x, w1, b1, N, C, H);
        gelu_forward(g, h, N * H);
        linear_forward(y, g, w2, b2, N, H, O);
        mse_loss_backward(dy, NULL, y, t, N * O, 1.0f);
        linear_backward(dg, param_grad(&pt, 2), param_grad(&pt, 3), dy, g, w2, N, H, O);
        gelu_backward(dh, dg, h, N * H);
        linear_backward(NULL, param_grad(&pt, 0), param_grad(&pt, 1), dh, x, w1, N, C, H);
        optim_step(o, &pt, 1e-2);
        linear_forward(h, x, w1, b1, N, C, H);
        gelu_forward(g, h, N * H);
        linear_forward(y, g, w2, b2, N, H, O);
        cr_assert_eq(nn_sync(), 0, "%s", nn_last_error());
        cr_assert_eq(device_copy(res->y, y, sizeof res->y), 0);
        cr_assert(pt.total <= 8192);
        res->total = pt.total;
        cr_assert_eq(device_copy(res->values, pt.values, (size_t)pt.total * 4), 0);
        optim_destroy(&o);
    }
    arena_free(&a);
    param_table_free(&pt);
}

Test(op_api, mlp_step_on_the_gpu_matches_the_cpu) {
    cuda_test_activate();
    static mlp_result cpu, gpu;
    run_mlp(DEVICE_CPU, &cpu);
    run_mlp(DEVICE_CUDA, &gpu);
    cr_assert_eq(cpu.total, gpu.total);
    expect_close_f32("mlp y after one step", gpu.y, cpu.y, N * O, TOL, TOL);
    expect_close_f32("mlp parameters after one step", gpu.values, cpu.values, cpu.total, TOL, TOL);
    device_release();
}

// Attention through the op API (the backward's scratch comes from the
// context). T = 150: several warps per block (the old reductions gave NaN).
Test(op_api, attention_on_the_gpu_matches_the_cpu) {
    cuda_test_activate();
    enum { B = 2, T = 150, NH = 3, HD = 32, D = NH * HD, NQKV = B * T * 3 * D, NO = B * T * D };
    float *qkv = malloc(NQKV * 4), *g = malloc(NO * 4), *dqkv = calloc(NQKV, 4);
    float *out = malloc(NO * 4), *lse = malloc(B * NH * T * 4);
    fill_normal(qkv, NQKV, 31, 1.0f);
    fill_normal(g, NO, 32, 1.0f);
    attention_forward(out, lse, qkv, B, T, NH, HD);
    attention_backward(dqkv, g, qkv, out, lse, B, T, NH, HD);
    float *d_qkv, *d_g, *d_dqkv, *d_out, *d_lse;
    cr_assert_eq(device_alloc(DEVICE_CUDA, (void **)&d_qkv, NQKV * 4), 0);
    cr_assert_eq(device_alloc(DEVICE_CUDA, (void **)&d_dqkv, NQKV * 4), 0);
    cr_assert_eq(device_alloc(DEVICE_CUDA, (void **)&d_g, NO * 4), 0);
    cr_assert_eq(device_alloc(DEVICE_CUDA, (void **)&d_out, NO * 4), 0);
    cr_assert_eq(device_alloc(DEVICE_CUDA, (void **)&d_lse, B * NH * T * 4), 0);
    cr_assert_eq(device_copy(d_qkv, qkv, NQKV * 4), 0);
    cr_assert_eq(device_copy(d_g, g, NO * 4), 0);
    attention_forward(d_out, d_lse, d_qkv, B, T, NH, HD);
    attention_backward(d_dqkv, d_g, d_qkv, d_out, d_lse, B, T, NH, HD);
    cr_assert_eq(nn_sync(), 0, "%s", nn_last_error());
    float *h_out = to_host(d_out, NO * 4), *h_lse = to_host(d_lse, B * NH * T * 4);
    float *h_dqkv = to_host(d_dqkv, NQKV * 4);
    expect_close_f32("attention out", h_out, out, NO, TOL, TOL);
    expect_close_f32("attention lse", h_lse, lse, B * NH * T, TOL, TOL);
    expect_close_f32("attention dqkv", h_dqkv, dqkv, NQKV, TOL, TOL);
    void *p[] = {d_qkv, d_g, d_dqkv, d_out, d_lse};
    for (int i = 0; i < 5; i++) device_free(&p[i]);
    free(qkv); free(g); free(dqkv); free(out); free(lse);
    free(h_out); free(h_lse); free(h_dqkv);
    device_release();
}

Test(op_api, op_without_cuda_code_is_a_named_error) {
    cuda_test_activate();
    float *d;
    cr_assert_eq(device_alloc(DEVICE_CUDA, (void **)&d, 64 * 4), 0);
    double v = l1_loss_forward(d, d, 64);   // (kl_loss_forward has CUDA code since loss_vae.cu)
    cr_expect(v != v, "NaN expected");
    cr_expect_eq(nn_sync(), NN_ENOCUDAOP);
    cr_expect(strstr(nn_last_error(), "l1_loss_forward") != NULL, "%s", nn_last_error());
    device_free((void **)&d);
    device_release();
}
#else
Test(op_api, skipped) { cr_skip_test("built without nvcc: CUDA tests skipped"); }
#endif
