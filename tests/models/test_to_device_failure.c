// test_to_device_failure.c: a model's move to the GPU that fails at ANY of
// its steps leaves the host model exactly as it was (the headers' promise),
// shown without a GPU. The binary is linked with the linker's --wrap for
// device_alloc / device_copy / device_zero / device_free (mk/fake_device.mk),
// so every call from outside nn/device.c lands in the fake device below:
// device_alloc(DEVICE_CUDA) gives host memory registered as a device range
// (nn/backend.h: device_of says cuda), copies and fills touching it are
// memmove / memset, and the k-th fallible call (a device allocation, or a
// copy touching the fake device) fails. Each test runs the move with k = 1,
// 2, ... until it succeeds, so every failure point is hit once, in
// particular "the parameters moved, then the activation arena or a copy
// failed". After each failure: the model says cpu, no fake device memory is
// left, the layers' parameter pointers are the table's (none into freed
// buffers), and a training step gives the same bits as a model never moved.
#include <criterion/criterion.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "models/lightningdit.h"
#include "models/toy_flow.h"
#include "models/toy_tok.h"
#include "nn/backend.h"
#include "nn/device.h"
#include "tests/util.h"

// ---- the fake device ----------------------------------------------------------

int __real_device_alloc(device_kind kind, void **p, size_t bytes);
int __real_device_copy(void *dst, const void *src, size_t bytes);
int __real_device_zero(void *dst, size_t bytes);

static int fail_at;    // the fallible call that fails (1-based; 0: none)
static int calls;      // fallible calls so far
static int live;       // fake device buffers not yet freed
// Host memory given to device_free is filled with NaN bytes and kept until
// fake_release, so a pointer left behind into it can neither find its old
// data nor a new buffer that malloc put at the same address.
static void *held[256];
static int nheld;

static void fake_release(void) {
    for (int i = 0; i < nheld; i++) free(held[i]);
    nheld = 0;
}

static void fake_reset(int k) { fail_at = k, calls = 0; }
static int fail_now(void) { return ++calls == fail_at; }

int __wrap_device_alloc(device_kind kind, void **p, size_t bytes) {
    if (kind != DEVICE_CUDA) return __real_device_alloc(kind, p, bytes);
    *p = NULL;
    if (fail_now()) return vel_fail(VEL_ENOMEM, "fake device: allocation %d fails", calls);
    const size_t n = bytes ? (bytes + 63) & ~(size_t)63 : 64;
    void *q = aligned_alloc(64, n);
    cr_assert_not_null(q);
    memset(q, 0, n);
    cr_assert_eq(nn_register_device_range(q, n), 0);
    live++;
    *p = q;
    return 0;
}

void __wrap_device_free(void **p) {
    if (p && *p && nn_on_device(*p)) {   // only fake ranges exist in this binary
        nn_unregister_device_range(*p);
        free(*p);
        *p = NULL;
        live--;
        return;
    }
    if (p && *p) {
        cr_assert_lt(nheld, (int)(sizeof held / sizeof *held));
        memset(*p, 0xff, malloc_usable_size(*p));
        held[nheld++] = *p;
        *p = NULL;
    }
}

int __wrap_device_copy(void *dst, const void *src, size_t bytes) {
    if (!nn_on_device(dst) && !nn_on_device(src)) return __real_device_copy(dst, src, bytes);
    if (fail_now()) return vel_fail(DEVICE_ECOPY, "fake device: copy %d fails", calls);
    memmove(dst, src, bytes);
    return 0;
}

int __wrap_device_zero(void *dst, size_t bytes) {
    if (!nn_on_device(dst)) return __real_device_zero(dst, bytes);
    memset(dst, 0, bytes);
    return 0;
}

// ---- checks -------------------------------------------------------------------

// Every parameter pointer of an MLP is the table's current one.
static void expect_bound(const char *what, const toy_mlp *m, const param_table *pt) {
    for (int l = 0; l <= m->depth; l++) {
        cr_assert(m->W[l] == param_data(pt, m->pidx[l]) && m->b[l] == param_data(pt, m->pidx[l] + 1) &&
                      m->dW[l] == param_grad(pt, m->pidx[l]) && m->db[l] == param_grad(pt, m->pidx[l] + 1),
                  "%s layer %d: parameter pointers do not point into the table (freed buffers?)", what, l);
    }
}

static void expect_failed_cleanly(const char *what, int k, int e, device_kind dev, const param_table *pt) {
    cr_assert_neq(e, 0);
    cr_assert_eq(dev, DEVICE_CPU, "%s, step %d failing: the model says cuda", what, k);
    cr_assert_eq(live, 0, "%s, step %d failing: %d fake device buffers left", what, k, live);
    cr_assert(!nn_on_device(pt->values) && !nn_on_device(pt->grads), "%s, step %d: parameters not on the host", what, k);
}

enum { B = 64 };

Test(to_device_failure, toy_tokenizer) {
    float x[2 * B], eps[2 * B];
    fill_normal(x, 2 * B, 1, 1.0f);
    fill_normal(eps, 2 * B, 2, 1.0f);
    const toy_tok_cfg cfg = {.reg = TOY_REG_KL, .kl_weight = 1e-2f};
    toy_tok *a = NULL;
    cr_assert_eq(toy_tok_create(&a, 2, 16, B), 0);
    toy_tok_init(a, 3);
    const toy_tok_losses la = toy_tok_loss_backward(a, &cfg, x, eps, B);
    int k = 1;
    for (;; k++) {
        toy_tok *b = NULL;
        cr_assert_eq(toy_tok_create(&b, 2, 16, B), 0);
        toy_tok_init(b, 3);
        fake_reset(k);
        const int e = toy_tok_to_device(b, DEVICE_CUDA);
        fake_reset(0);
        if (!e) {   // every step passed: the model is on the fake device, and all of it goes with destroy
            cr_expect_eq(b->dev, DEVICE_CUDA);
            cr_expect(nn_on_device(b->pt.values) && nn_on_device(b->act.base));
            toy_tok_destroy(&b);
            cr_expect_eq(live, 0, "destroy left %d fake device buffers", live);
            break;
        }
        expect_failed_cleanly("tokenizer", k, e, b->dev, &b->pt);
        expect_bound("tokenizer enc", &b->enc, &b->pt);
        expect_bound("tokenizer dec", &b->dec, &b->pt);
        const toy_tok_losses lb = toy_tok_loss_backward(b, &cfg, x, eps, B);
        cr_expect(la.total == lb.total && b->err == 0, "tokenizer, step %d failing: loss %.17g vs %.17g", k, lb.total,
                  la.total);
        cr_expect(memcmp(a->pt.grads, b->pt.grads, sizeof(float) * (size_t)a->pt.total) == 0,
                  "tokenizer, step %d failing: gradients differ", k);
        toy_tok_destroy(&b);
        fake_release();
    }
    // parameter values, parameter gradients, activation arena: at least 3 steps
    cr_log_info("tokenizer: %d fallible steps, each failed once", k - 1);
    cr_expect_geq(k, 4, "the move succeeded after only %d fallible steps", k - 1);
    toy_tok_destroy(&a);
}

Test(to_device_failure, toy_flow) {
    float z[2 * B], x0[2 * B], t[B];
    fill_normal(z, 2 * B, 1, 1.0f);
    fill_normal(x0, 2 * B, 2, 1.0f);
    for (int i = 0; i < B; i++) t[i] = (float)(i + 1) / (B + 1);
    toy_flow *a = NULL;
    cr_assert_eq(toy_flow_create(&a, 2, 16, B, TOY_TIME_FOURIER, 4), 0);
    toy_flow_init(a, 4);
    const double la = toy_flow_loss_backward(a, z, x0, t, B);
    int k = 1;
    for (;; k++) {
        toy_flow *b = NULL;
        cr_assert_eq(toy_flow_create(&b, 2, 16, B, TOY_TIME_FOURIER, 4), 0);
        toy_flow_init(b, 4);
        fake_reset(k);
        const int e = toy_flow_to_device(b, DEVICE_CUDA);
        fake_reset(0);
        if (!e) {
            cr_expect_eq(b->dev, DEVICE_CUDA);
            cr_expect(nn_on_device(b->pt.values) && nn_on_device(b->act.base));
            toy_flow_destroy(&b);
            cr_expect_eq(live, 0, "destroy left %d fake device buffers", live);
            break;
        }
        expect_failed_cleanly("flow", k, e, b->dev, &b->pt);
        expect_bound("flow net", &b->net, &b->pt);
        const double lb = toy_flow_loss_backward(b, z, x0, t, B);
        cr_expect(la == lb && b->err == 0, "flow, step %d failing: loss %.17g vs %.17g", k, lb, la);
        cr_expect(memcmp(a->pt.grads, b->pt.grads, sizeof(float) * (size_t)a->pt.total) == 0,
                  "flow, step %d failing: gradients differ", k);
        toy_flow_destroy(&b);
        fake_release();
    }
    cr_log_info("flow: %d fallible steps, each failed once", k - 1);
    cr_expect_geq(k, 4, "the move succeeded after only %d fallible steps", k - 1);
    toy_flow_destroy(&a);
}

// LightningDiT: also its fixed tables (copied into the new arena).
Test(to_device_failure, lightningdit) {
    const ldit_config c = {.depth = 2, .hidden = 64, .heads = 4, .patch = 2, .in_channels = 4,
                           .input_size = 8, .num_classes = 10, .qk_norm = 1};
    enum { NB = 2, X = NB * 4 * 8 * 8 };
    float x[X], t[NB] = {0.25f, 0.75f}, dv[X], va[X], vb[X];
    fill_normal(x, X, 5, 1.0f);
    fill_normal(dv, X, 6, 1.0f);
    const int32_t y[NB] = {3, 7};
    ldit *a = NULL;
    cr_assert_eq(ldit_create(&a, &c, NB), 0);
    ldit_init_params(a, 1);
    cr_assert_eq(ldit_forward(a, va, x, t, y, NULL, NB), 0);
    ldit_backward(a, NULL, dv);
    int k = 1;
    for (;; k++) {
        ldit *b = NULL;
        cr_assert_eq(ldit_create(&b, &c, NB), 0);
        ldit_init_params(b, 1);
        fake_reset(k);
        const int e = ldit_to_device(b, DEVICE_CUDA);
        fake_reset(0);
        if (!e) {
            cr_expect_eq(b->dev, DEVICE_CUDA);
            cr_expect(nn_on_device(b->pt.values) && nn_on_device(b->act.base));
            ldit_destroy(&b);
            cr_expect_eq(live, 0, "destroy left %d fake device buffers", live);
            break;
        }
        expect_failed_cleanly("lightningdit", k, e, b->dev, &b->pt);
        cr_assert(!nn_on_device(b->act.base));
        cr_assert_eq(ldit_forward(b, vb, x, t, y, NULL, NB), 0);
        ldit_backward(b, NULL, dv);
        cr_expect_eq(nn_sync(), 0);
        cr_expect(memcmp(va, vb, sizeof va) == 0, "lightningdit, step %d failing: outputs differ", k);
        cr_expect(memcmp(a->pt.grads, b->pt.grads, sizeof(float) * (size_t)a->pt.total) == 0,
                  "lightningdit, step %d failing: gradients differ", k);
        ldit_destroy(&b);
        fake_release();
    }
    // parameter values and gradients, the arena, its three tables: at least 6 steps
    cr_log_info("lightningdit: %d fallible steps, each failed once", k - 1);
    cr_expect_geq(k, 7, "the move succeeded after only %d fallible steps", k - 1);
    ldit_destroy(&a);
}
