// test_resume.c: exact resume. A small MLP (nn/linear.h + ReLU, MSE loss,
// batches drawn from Philox at a running offset) trained for 10 steps in one
// go must match, bit for bit in every loss, parameter, optimizer moment and
// EMA weight, a run of 5 steps, checkpoint, free everything, rebuild, load,
// 5 more steps. Run for AdamW and for Muon (+AdamW), each with a warm-up +
// cosine schedule, gradient clipping and an EMA.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/activation.h"
#include "nn/checkpoint.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "core/philox.h"
#include "nn/schedule.h"
#include "tests/util.h"

enum { B = 32, IN = 2, H = 16, OUT = 1, STEPS = 10 };
#define SEED 0x5eed5eedull

typedef struct {
    param_table pt;
    optim *o;
    ema *e;
    lr_schedule sched;
    ckpt_state st;
    // activations and their gradients (the test's own, fixed size)
    float x[B * IN], y[B * OUT], h1[B * H], a1[B * H], h2[B * H], a2[B * H], out[B * OUT];
    float dout[B * OUT], da2[B * H], dh2[B * H], da1[B * H], dh1[B * H];
} trainer;

// PyTorch nn.Sequential(Linear, ReLU, Linear, ReLU, Linear) names.
static void build(trainer *t, optim_kind kind) {
    memset(t, 0, sizeof *t);
    param_table_init(&t->pt);
    param_add(&t->pt, "net.0.weight", 2, (int64_t[]){H, IN});
    param_add(&t->pt, "net.0.bias", 1, (int64_t[]){H});
    param_add(&t->pt, "net.2.weight", 2, (int64_t[]){H, H});
    param_add(&t->pt, "net.2.bias", 1, (int64_t[]){H});
    param_add(&t->pt, "net.4.weight", 2, (int64_t[]){OUT, H});
    param_add(&t->pt, "net.4.bias", 1, (int64_t[]){OUT});
    cr_assert_eq(param_table_commit(&t->pt), 0);
    // init: N(0, 1/fan_in) from Philox stream 0, biases zero
    for (int i = 0; i < t->pt.count; i += 2) {
        const param_info *p = &t->pt.info[i];
        float *w = param_data(&t->pt, i);
        philox_normal(w, p->numel, SEED, 0, (uint64_t)p->offset);
        for (int64_t k = 0; k < p->numel; k++) w[k] *= 1.0f / sqrtf((float)p->shape[1]);
    }
    optim_config c = optim_defaults(kind);
    c.beta2 = 0.95;
    c.muon_lr_ratio = 10.0;
    cr_assert_eq(optim_create(&t->o, &t->pt, &c), 0);
    cr_assert_eq(ema_create(&t->e, &t->pt), 0);
    t->sched = (lr_schedule){.lr = 1e-2, .decay = LR_COSINE, .warmup = 3, .total = STEPS, .min_ratio = 0.1};
    t->st = (ckpt_state){.step = 0, .rng_seed = SEED, .rng_offset = 0};
}

static void destroy(trainer *t) {
    optim_destroy(&t->o);
    ema_destroy(&t->e);
    param_table_free(&t->pt);
}

static double train_step(trainer *t) {
    param_table *pt = &t->pt;
    const float *W0 = param_data(pt, 0), *b0 = param_data(pt, 1), *W1 = param_data(pt, 2),
                *b1 = param_data(pt, 3), *W2 = param_data(pt, 4), *b2 = param_data(pt, 5);
    // batch: x ~ N(0,1) from stream 1 at the running offset; y = sin(2 x0) * x1
    philox_normal(t->x, B * IN, t->st.rng_seed, 1, t->st.rng_offset);
    t->st.rng_offset += B * IN;
    for (int n = 0; n < B; n++) t->y[n] = sinf(2 * t->x[n * IN]) * t->x[n * IN + 1];
    linear_forward(t->h1, t->x, W0, b0, B, IN, H);
    relu_forward(t->a1, t->h1, B * H);
    linear_forward(t->h2, t->a1, W1, b1, B, H, H);
    relu_forward(t->a2, t->h2, B * H);
    linear_forward(t->out, t->a2, W2, b2, B, H, OUT);
    double loss = mse_loss_forward(t->out, t->y, B * OUT);
    param_zero_grads(pt);
    memset(t->dout, 0, sizeof t->dout);
    memset(t->da2, 0, sizeof t->da2);
    memset(t->dh2, 0, sizeof t->dh2);
    memset(t->da1, 0, sizeof t->da1);
    memset(t->dh1, 0, sizeof t->dh1);
    mse_loss_backward(t->dout, NULL, t->out, t->y, B * OUT, 1.0f);
    linear_backward(t->da2, param_grad(pt, 4), param_grad(pt, 5), t->dout, t->a2, W2, B, H, OUT);
    relu_backward(t->dh2, t->da2, t->h2, B * H);
    linear_backward(t->da1, param_grad(pt, 2), param_grad(pt, 3), t->dh2, t->a1, W1, B, H, H);
    relu_backward(t->dh1, t->da1, t->h1, B * H);
    linear_backward(NULL, param_grad(pt, 0), param_grad(pt, 1), t->dh1, t->x, W0, B, IN, H);
    clip_grad_norm(pt, 1.0f);
    optim_step(t->o, pt, lr_at(&t->sched, (int64_t)t->st.step));
    ema_update(t->e, pt, 0.9);
    t->st.step++;
    return loss;
}

static void resume_exact(optim_kind kind) {
    char *dir = test_tmpdir("resume");
    char prefix[512];
    snprintf(prefix, sizeof prefix, "%s/ckpt", dir);
    size_t nbytes;

    // A: 10 steps straight.
    trainer *a = malloc(sizeof *a);
    build(a, kind);
    double la[STEPS];
    for (int s = 0; s < STEPS; s++) la[s] = train_step(a);
    nbytes = (size_t)a->pt.total * sizeof(float);

    // B: 5 steps, save, free everything, rebuild, load, 5 more.
    trainer *b = malloc(sizeof *b);
    build(b, kind);
    double lb[STEPS];
    for (int s = 0; s < STEPS / 2; s++) lb[s] = train_step(b);
    cr_assert_eq(ckpt_save(prefix, &b->pt, b->o, b->e, &b->st, NULL, 0), 0, "%s", vel_error_detail());
    destroy(b);
    memset(b, 0xa5, sizeof *b);    // nothing may survive in memory
    build(b, kind);                // fresh init, different from the checkpoint
    cr_assert_eq(ckpt_load(prefix, &b->pt, b->o, b->e, &b->st), 0, "%s", vel_error_detail());
    cr_expect_eq(b->st.step, STEPS / 2);
    cr_expect_eq(b->st.rng_offset, (uint64_t)(STEPS / 2 * B * IN));
    for (int s = STEPS / 2; s < STEPS; s++) lb[s] = train_step(b);

    for (int s = 0; s < STEPS; s++)
        cr_expect_eq(memcmp(&la[s], &lb[s], sizeof(double)), 0, "step %d loss %.17g vs %.17g", s,
                     la[s], lb[s]);
    // Per-batch losses over 10 steps are too noisy to demand a decrease; the
    // run must at least be finite and have moved the weights.
    for (int s = 0; s < STEPS; s++) cr_expect(isfinite(la[s]), "step %d loss %g", s, la[s]);
    trainer *fresh = malloc(sizeof *fresh);
    build(fresh, kind);
    cr_expect_neq(memcmp(fresh->pt.values, a->pt.values, nbytes), 0, "training changed nothing");
    destroy(fresh);
    free(fresh);
    cr_expect_eq(memcmp(a->pt.values, b->pt.values, nbytes), 0, "parameters differ");
    cr_expect_eq(memcmp(a->o->state, b->o->state, 2 * nbytes), 0, "optimizer state differs");
    cr_expect_eq(memcmp(a->e->shadow, b->e->shadow, nbytes), 0, "EMA differs");
    cr_expect_eq(a->o->step, b->o->step);
    cr_log_info("%s: per-batch loss %.6f at step 0, %.6f at step 9", optim_kind_name(kind), la[0],
                la[STEPS - 1]);
    destroy(a);
    destroy(b);
    free(a);
    free(b);
    rm_rf(dir);
    free(dir);
}

Test(resume, adamw_exact) { resume_exact(OPTIM_ADAMW); }
Test(resume, muon_exact) { resume_exact(OPTIM_MUON); }
