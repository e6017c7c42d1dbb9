// test_parity_act_norm.c: CUDA vs CPU for the element-wise activations,
// softmax and the three norms, forward and backward (fp32, within 1e-4). The
// CPU ops are checked against numpy and finite differences in tests/nn, so
// agreement here carries those checks over. Gradient buffers start non-zero
// to check accumulation. Skips with a message without a GPU.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "nn/activation.h"
#include "core/base.h"
#include "nn/norm.h"
#include "tests/cuda/cuda_test.h"

#ifdef VEL_HAVE_CUDA
#include "nn/cuda/ops.h"

#define TOL 1e-4

typedef struct {
    vcuda_ctx *ctx;
    void *dev[16];
    int nd;
} bufs;

static float *up(bufs *b, const float *h, int64_t n) {
    float *d = cuda_test_upload(b->ctx, h, (size_t)n * 4);
    b->dev[b->nd++] = d;
    return d;
}
static void release(bufs *b) {
    for (int i = 0; i < b->nd; i++) vcuda_free(&b->dev[i]);
    b->nd = 0;
}

Test(parity_act, elementwise_forward_backward) {
    bufs b = {.ctx = cuda_test_ctx()};
    enum { n = 10007 };
    float *x = malloc(n * 4), *dy = malloc(n * 4), *y = malloc(n * 4), *dx = malloc(n * 4);
    fill_normal(x, n, 21, 3.0f);
    fill_normal(dy, n, 22, 1.0f);
    x[0] = 0.0f;   // the kink of relu / leaky: both sides must agree on it
    const char *names[] = {"relu", "silu", "gelu", "leaky_relu"};
    for (int k = 0; k < 4; k++) {
        fill_normal(dx, n, 23, 0.5f);
        float *d_x = up(&b, x, n), *d_dy = up(&b, dy, n), *d_y = up(&b, NULL, n), *d_dx = up(&b, dx, n);
        switch (k) {
        case 0:
            relu_forward(y, x, n); relu_backward(dx, dy, x, n);
            CUDA_OK(relu_forward_cuda(b.ctx, d_y, d_x, n)); CUDA_OK(relu_backward_cuda(b.ctx, d_dx, d_dy, d_x, n));
            break;
        case 1:
            silu_forward(y, x, n); silu_backward(dx, dy, x, n);
            CUDA_OK(silu_forward_cuda(b.ctx, d_y, d_x, n)); CUDA_OK(silu_backward_cuda(b.ctx, d_dx, d_dy, d_x, n));
            break;
        case 2:
            gelu_forward(y, x, n); gelu_backward(dx, dy, x, n);
            CUDA_OK(gelu_forward_cuda(b.ctx, d_y, d_x, n)); CUDA_OK(gelu_backward_cuda(b.ctx, d_dx, d_dy, d_x, n));
            break;
        default:
            leaky_relu_forward(y, x, n, 0.2f); leaky_relu_backward(dx, dy, x, n, 0.2f);
            CUDA_OK(leaky_relu_forward_cuda(b.ctx, d_y, d_x, n, 0.2f));
            CUDA_OK(leaky_relu_backward_cuda(b.ctx, d_dx, d_dy, d_x, n, 0.2f));
        }
        CUDA_OK(vcuda_sync(b.ctx));
        char what[64];
        snprintf(what, sizeof what, "%s forward", names[k]);
        parity_f32(b.ctx, what, d_y, y, n, TOL, TOL);
        snprintf(what, sizeof what, "%s backward", names[k]);
        parity_f32(b.ctx, what, d_dx, dx, n, TOL, TOL);
        release(&b);
    }
    free(x); free(dy); free(y); free(dx);
    vcuda_ctx_destroy(&b.ctx);
}

Test(parity_act, softmax_forward_backward) {
    bufs b = {.ctx = cuda_test_ctx()};
    // C = 1000 > 32 lanes and C = 7 < 32 lanes: both paths of the warp loop.
    int shapes[2][2] = {{37, 1000}, {129, 7}};
    for (int s = 0; s < 2; s++) {
        int N = shapes[s][0], C = shapes[s][1];
        float *x = malloc((size_t)N * C * 4), *y = malloc((size_t)N * C * 4);
        float *dy = malloc((size_t)N * C * 4), *dx = malloc((size_t)N * C * 4);
        fill_normal(x, N * C, 31 + s, 4.0f);
        fill_normal(dy, N * C, 33 + s, 1.0f);
        fill_normal(dx, N * C, 35 + s, 0.5f);
        float *d_x = up(&b, x, N * C), *d_y = up(&b, NULL, N * C), *d_dy = up(&b, dy, N * C);
        float *d_dx = up(&b, dx, N * C);
        softmax_forward(y, x, N, C);
        softmax_backward(dx, dy, y, N, C);
        CUDA_OK(softmax_forward_cuda(b.ctx, d_y, d_x, N, C));
        CUDA_OK(softmax_backward_cuda(b.ctx, d_dx, d_dy, d_y, N, C));
        CUDA_OK(vcuda_sync(b.ctx));
        parity_f32(b.ctx, "softmax forward", d_y, y, N * C, TOL, TOL);
        parity_f32(b.ctx, "softmax backward", d_dx, dx, N * C, TOL, TOL);
        release(&b);
        free(x); free(y); free(dy); free(dx);
    }
    vcuda_ctx_destroy(&b.ctx);
}

Test(parity_norm, layernorm_rmsnorm) {
    bufs b = {.ctx = cuda_test_ctx()};
    enum { N = 67, C = 768 };
    float *x = malloc(N * C * 4), *y = malloc(N * C * 4), *dy = malloc(N * C * 4);
    float *dx = malloc(N * C * 4), *w = malloc(C * 4), *bias = malloc(C * 4);
    float *dw = malloc(C * 4), *db = malloc(C * 4), *mean = malloc(N * 4), *rstd = malloc(N * 4);
    fill_normal(x, N * C, 41, 2.0f);
    for (int i = 0; i < N * C; i++) x[i] += 1.5f;   // a non-zero mean, as real activations have
    fill_normal(dy, N * C, 42, 1.0f);
    fill_normal(w, C, 43, 0.5f);
    for (int i = 0; i < C; i++) w[i] += 1.0f;
    fill_normal(bias, C, 44, 0.5f);
    for (int rms = 0; rms < 2; rms++) {
        fill_normal(dx, N * C, 45, 0.5f);
        fill_normal(dw, C, 46, 0.5f);
        fill_normal(db, C, 47, 0.5f);
        float *d_x = up(&b, x, N * C), *d_y = up(&b, NULL, N * C), *d_dy = up(&b, dy, N * C);
        float *d_dx = up(&b, dx, N * C), *d_w = up(&b, w, C), *d_b = up(&b, bias, C);
        float *d_dw = up(&b, dw, C), *d_db = up(&b, db, C), *d_mean = up(&b, NULL, N);
        float *d_rstd = up(&b, NULL, N);
        if (rms) {
            rmsnorm_forward(y, rstd, x, w, N, C, 1e-6f);
            rmsnorm_backward(dx, dw, dy, x, w, rstd, N, C);
            CUDA_OK(rmsnorm_forward_cuda(b.ctx, d_y, d_rstd, d_x, d_w, N, C, 1e-6f));
            CUDA_OK(rmsnorm_backward_cuda(b.ctx, d_dx, d_dw, d_dy, d_x, d_w, d_rstd, N, C));
        } else {
            layernorm_forward(y, mean, rstd, x, w, bias, N, C, 1e-5f);
            layernorm_backward(dx, dw, db, dy, x, w, mean, rstd, N, C);
            CUDA_OK(layernorm_forward_cuda(b.ctx, d_y, d_mean, d_rstd, d_x, d_w, d_b, N, C, 1e-5f));
            CUDA_OK(layernorm_backward_cuda(b.ctx, d_dx, d_dw, d_db, d_dy, d_x, d_w, d_mean, d_rstd, N, C));
        }
        CUDA_OK(vcuda_sync(b.ctx));
        const char *nm = rms ? "rmsnorm" : "layernorm";
        char what[64];
        snprintf(what, sizeof what, "%s out", nm);
        parity_f32(b.ctx, what, d_y, y, N * C, TOL, TOL);
        snprintf(what, sizeof what, "%s rstd", nm);
        parity_f32(b.ctx, what, d_rstd, rstd, N, TOL, TOL);
        snprintf(what, sizeof what, "%s dinp", nm);
        parity_f32(b.ctx, what, d_dx, dx, N * C, TOL, TOL);
        snprintf(what, sizeof what, "%s dweight", nm);
        parity_f32(b.ctx, what, d_dw, dw, C, TOL, TOL);
        if (!rms) {
            parity_f32(b.ctx, "layernorm mean", d_mean, mean, N, TOL, TOL);
            parity_f32(b.ctx, "layernorm dbias", d_db, db, C, TOL, TOL);
        }
        release(&b);
    }
    free(x); free(y); free(dy); free(dx); free(w); free(bias); free(dw); free(db); free(mean); free(rstd);
    vcuda_ctx_destroy(&b.ctx);
}

Test(parity_norm, groupnorm) {
    bufs b = {.ctx = cuda_test_ctx()};
    enum { B = 3, C = 64, HW = 81, G = 8, n = B * C * HW };
    float *x = malloc(n * 4), *y = malloc(n * 4), *dy = malloc(n * 4), *dx = malloc(n * 4);
    float *w = malloc(C * 4), *bias = malloc(C * 4), *dw = malloc(C * 4), *db = malloc(C * 4);
    float mean[B * G], rstd[B * G];
    fill_normal(x, n, 51, 2.0f);
    for (int i = 0; i < n; i++) x[i] -= 0.7f;
    fill_normal(dy, n, 52, 1.0f);
    fill_normal(dx, n, 53, 0.5f);
    fill_normal(w, C, 54, 0.5f);
    fill_normal(bias, C, 55, 0.5f);
    fill_normal(dw, C, 56, 0.5f);
    fill_normal(db, C, 57, 0.5f);
    float *d_x = up(&b, x, n), *d_y = up(&b, NULL, n), *d_dy = up(&b, dy, n), *d_dx = up(&b, dx, n);
    float *d_w = up(&b, w, C), *d_b = up(&b, bias, C), *d_dw = up(&b, dw, C), *d_db = up(&b, db, C);
    float *d_mean = up(&b, NULL, B * G), *d_rstd = up(&b, NULL, B * G);
    groupnorm_forward(y, mean, rstd, x, w, bias, B, C, HW, G, 1e-6f);
    groupnorm_backward(dx, dw, db, dy, x, w, mean, rstd, B, C, HW, G);
    CUDA_OK(groupnorm_forward_cuda(b.ctx, d_y, d_mean, d_rstd, d_x, d_w, d_b, B, C, HW, G, 1e-6f));
    CUDA_OK(groupnorm_backward_cuda(b.ctx, d_dx, d_dw, d_db, d_dy, d_x, d_w, d_mean, d_rstd, B, C, HW, G));
    CUDA_OK(vcuda_sync(b.ctx));
    parity_f32(b.ctx, "groupnorm out", d_y, y, n, TOL, TOL);
    parity_f32(b.ctx, "groupnorm mean", d_mean, mean, B * G, TOL, TOL);
    parity_f32(b.ctx, "groupnorm rstd", d_rstd, rstd, B * G, TOL, TOL);
    parity_f32(b.ctx, "groupnorm dinp", d_dx, dx, n, TOL, TOL);
    parity_f32(b.ctx, "groupnorm dweight", d_dw, dw, C, TOL, TOL);
    parity_f32(b.ctx, "groupnorm dbias", d_db, db, C, TOL, TOL);
    cr_assert_eq(groupnorm_forward_cuda(b.ctx, d_y, d_mean, d_rstd, d_x, d_w, d_b, B, C, HW, 7, 1e-6f),
                 VEL_EINVAL, "C %% G != 0 must be refused");
    release(&b);
    free(x); free(y); free(dy); free(dx); free(w); free(bias); free(dw); free(db);
    vcuda_ctx_destroy(&b.ctx);
}
#else
Test(parity_act, skipped) { cr_skip_test("built without nvcc: CUDA parity tests skipped"); }
#endif
