// test_parity_dit.c: one LightningDiT training step on the GPU against the
// same step on the CPU, fp32. Two identical models (same config, same seed);
// one is moved to the device with ldit_to_device, its AdamW state and EMA
// created there. Both run dit_draw_step + dit_loss_backward (host x1, labels
// and draws; the GPU model stages them), clip_grad_norm, optim_step and
// ema_update. The GPU trainer keeps v, dv and the loss on the device
// (nn/flow_loss.h). Compared: the loss values, the velocity and its loss
// gradient dv (downloaded), every parameter
// gradient, the gradient norm, the parameters and EMA after the step. Also
// ldit_backward's dx through the host staging (accumulating onto dx).
// Tolerances: HACKING.md's CUDA fp32 default 1e-4 (TF32 off) on the forward
// and on the updated weights; gradients relative to their largest magnitude
// (atol 1e-4 * max |g|), since adaLN-Zero makes many of them tiny sums of
// cancelling terms. NOT YET RUN ON A GPU when written (no GPU on the
// development machine): a failure by a small margin needs the measured error
// recorded here, not a looser number. Skips without a GPU.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "core/error.h"
#include "models/dit_train.h"
#include "nn/backend.h"
#include "nn/device.h"
#include "nn/ema.h"
#include "nn/optim.h"
#include "tests/cuda/cuda_test.h"
#include "tests/util.h"

#ifdef VEL_HAVE_CUDA

#define TOL 1e-4

static float *download(const float *dev, int64_t n) {
    float *h = malloc(sizeof(float) * (size_t)n);
    cr_assert_eq(device_copy(h, dev, sizeof(float) * (size_t)n), 0, "%s", vel_error_detail());
    return h;
}

static double max_abs(const float *x, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

// Two equal small models (q/k norm on), mg moved to the GPU. adaLN-Zero
// leaves most gradients zero at init: every weight is perturbed (the same
// way in both) so the step is not trivial.
static void make_pair(ldit **mc, ldit **mg, int B) {
    const ldit_config c = {.depth = 2, .hidden = 64, .heads = 4, .patch = 2, .in_channels = 4,
                           .input_size = 8, .num_classes = 10, .qk_norm = 1};
    cr_assert_eq(ldit_create(mc, &c, B), 0);
    cr_assert_eq(ldit_create(mg, &c, B), 0);
    ldit_init_params(*mc, 3);
    ldit_init_params(*mg, 3);
    const int64_t P = (*mc)->pt.total;
    float *noise = malloc(sizeof(float) * (size_t)P);
    fill_normal(noise, P, 9, 0.02f);
    for (int64_t i = 0; i < P; i++) (*mc)->pt.values[i] += noise[i], (*mg)->pt.values[i] += noise[i];
    free(noise);
    cr_assert_eq(ldit_to_device(*mg, DEVICE_CUDA), 0, "%s", vel_error_detail());
}

// The same batch (x1 from seed 5, labels b % 10, draws of seed 11) through
// one loss + backward on both trainers; fills y (B labels) and returns x1
// (the caller frees it).
static float *step_pair(dit_trainer *tc, dit_trainer *tg, ldit *mc, ldit *mg, int B, int32_t *y,
                        dit_losses *Lc, dit_losses *Lg) {
    const int64_t numel = tc->numel;
    float *x1 = malloc(sizeof(float) * B * numel);
    fill_normal(x1, B * numel, 5, 1.0f);
    for (int b = 0; b < B; b++) y[b] = b % 10;
    dit_draw_step(tc, B, 11, 0);
    dit_draw_step(tg, B, 11, 0);
    param_zero_grads(&mc->pt);
    param_zero_grads(&mg->pt);
    cr_assert_eq(dit_loss_backward(tc, x1, y, B, Lc), 0);
    cr_assert_eq(dit_loss_backward(tg, x1, y, B, Lg), 0);
    cr_assert_eq(nn_sync(), 0, "%s", nn_last_error());
    return x1;
}

Test(parity_dit, train_step_gpu_matches_cpu) {
    cuda_test_activate();
    enum { B = 8 };
    ldit *mc = NULL, *mg = NULL;
    make_pair(&mc, &mg, B);
    cr_assert(nn_on_device(mg->pt.values) && nn_on_device(mg->act.base));

    const dit_fm_cfg fm = dit_fm_defaults();
    dit_trainer *tc = NULL, *tg = NULL;
    cr_assert_eq(dit_trainer_create(&tc, mc, &fm, B), 0);
    cr_assert_eq(dit_trainer_create(&tg, mg, &fm, B), 0);
    optim_config oc = optim_defaults(OPTIM_ADAMW);
    oc.beta2 = 0.95, oc.weight_decay = 0.01;
    optim *oc_ = NULL, *og = NULL;
    ema *ec = NULL, *eg = NULL;
    cr_assert_eq(optim_create(&oc_, &mc->pt, &oc), 0);
    cr_assert_eq(optim_create(&og, &mg->pt, &oc), 0);
    cr_assert_eq(ema_create(&ec, &mc->pt), 0);
    cr_assert_eq(ema_create(&eg, &mg->pt), 0);
    cr_assert(nn_on_device(og->state) && nn_on_device(eg->shadow));

    const int64_t numel = tc->numel, P = mc->pt.total;
    int32_t y[B];
    dit_losses Lc, Lg;
    float *x1 = step_pair(tc, tg, mc, mg, B, y, &Lc, &Lg);
    cr_log_info("loss cpu %.9g gpu %.9g (mse %.9g / %.9g, cos %.9g / %.9g)", Lc.loss, Lg.loss, Lc.mse,
                Lg.mse, Lc.cos, Lg.cos);
    cr_expect(fabs(Lc.loss - Lg.loss) <= TOL + TOL * fabs(Lc.loss), "loss %.9g vs %.9g", Lg.loss, Lc.loss);
    cr_assert(nn_on_device(tg->v) && nn_on_device(tg->dv), "GPU trainer: v, dv on the device");
    float *vdev = download(tg->v, B * numel), *dvdev = download(tg->dv, B * numel);
    expect_close_f32("v (device, downloaded)", vdev, tc->v, B * numel, TOL, TOL);
    // dv from the device loss op (nn/flow_loss.h) against the CPU's
    expect_close_f32("dv (device loss)", dvdev, tc->dv, B * numel, TOL, TOL);
    free(vdev);
    free(dvdev);
    float *gg = download(mg->pt.grads, P);
    const double gmax = max_abs(mc->pt.grads, P);
    cr_assert_gt(gmax, 0.0);
    expect_close_f32("parameter gradients", gg, mc->pt.grads, P, TOL * gmax, TOL);

    const float nc = clip_grad_norm(&mc->pt, 1.0f), ng = clip_grad_norm(&mg->pt, 1.0f);
    cr_log_info("grad norm cpu %.9g gpu %.9g", nc, ng);
    cr_expect(fabsf(nc - ng) <= TOL * nc, "grad norm %.9g vs %.9g", ng, nc);
    optim_step(oc_, &mc->pt, 2e-4);
    optim_step(og, &mg->pt, 2e-4);
    ema_update(ec, &mc->pt, 0.9);
    ema_update(eg, &mg->pt, 0.9);
    cr_assert_eq(nn_sync(), 0, "%s", nn_last_error());
    float *vg = download(mg->pt.values, P), *sg = download(eg->shadow, P);
    expect_close_f32("parameters after AdamW", vg, mc->pt.values, P, TOL, TOL);
    expect_close_f32("EMA after the step", sg, ec->shadow, P, TOL, TOL);

    // ldit_backward with a host dx on the GPU model: staged, accumulated onto dx
    float *dxc = malloc(sizeof(float) * B * numel), *dxg = malloc(sizeof(float) * B * numel);
    fill_normal(dxc, B * numel, 6, 1.0f);
    memcpy(dxg, dxc, sizeof(float) * B * numel);
    cr_assert_eq(ldit_forward(mc, tc->v, tc->xt, tc->t, y, NULL, B), 0);
    cr_assert_eq(ldit_forward(mg, tg->v, tc->xt, tc->t, y, NULL, B), 0);
    ldit_backward(mc, dxc, tc->dv);
    ldit_backward(mg, dxg, tc->dv);
    cr_assert_eq(nn_sync(), 0, "%s", nn_last_error());
    expect_close_f32("dx (host, staged)", dxg, dxc, B * numel, TOL, TOL);

    free(gg); free(vg); free(sg); free(dxc); free(dxg); free(x1);
    ema_destroy(&ec); ema_destroy(&eg); optim_destroy(&oc_); optim_destroy(&og);
    dit_trainer_destroy(&tc); dit_trainer_destroy(&tg);
    ldit_destroy(&mc); ldit_destroy(&mg);
    device_release();
}
// bf16 autocast of the GEMMs (device_autocast_bf16) against the fp32 CPU
// model: the velocity by HACKING.md's bf16 rule (rtol 1e-2, atol 1e-2 for
// values near zero, NMSE <= 1e-4) and the gradients by NMSE <= 1e-3 (a first
// bound, not measured yet: replace it by the measured NMSE with a margin).
Test(parity_dit, autocast_bf16_step_near_fp32) {
    cuda_test_activate();
    enum { B = 8 };
    ldit *mc = NULL, *mg = NULL;
    make_pair(&mc, &mg, B);
    cr_assert_eq(device_autocast_bf16(1), 0);
    const dit_fm_cfg fm = dit_fm_defaults();
    dit_trainer *tc = NULL, *tg = NULL;
    cr_assert_eq(dit_trainer_create(&tc, mc, &fm, B), 0);
    cr_assert_eq(dit_trainer_create(&tg, mg, &fm, B), 0);
    const int64_t numel = tc->numel, P = mc->pt.total;
    int32_t y[B];
    dit_losses Lc, Lg;
    float *x1 = step_pair(tc, tg, mc, mg, B, y, &Lc, &Lg);
    cr_log_info("bf16 loss %.9g vs fp32 cpu %.9g", Lg.loss, Lc.loss);
    float *vg = download(tg->v, B * numel);
    cmp_result rv = compare_f32(vg, tc->v, B * numel, 1e-2, 1e-2);
    cr_log_info("v (bf16 GEMMs): n=%lld max_abs=%.3g max_rel=%.3g nmse=%.3g", (long long)(B * numel), rv.max_abs,
                rv.max_rel, rv.nmse);
    cr_expect_leq(rv.nmse, 1e-4);
    expect_close_f32("v (bf16 GEMMs)", vg, tc->v, B * numel, 1e-2, 1e-2);
    free(vg);
    float *gg = download(mg->pt.grads, P);
    cmp_result rg = compare_f32(gg, mc->pt.grads, P, 0, 0);
    cr_log_info("grads (bf16 GEMMs): n=%lld max_abs=%.3g max_rel=%.3g nmse=%.3g", (long long)P, rg.max_abs,
                rg.max_rel, rg.nmse);
    cr_expect_leq(rg.nmse, 1e-3);
    cr_assert_eq(device_autocast_bf16(0), 0);
    free(gg); free(x1);
    dit_trainer_destroy(&tc); dit_trainer_destroy(&tg);
    ldit_destroy(&mc); ldit_destroy(&mg);
    device_release();
}
#else
Test(parity_dit, skipped) { cr_skip_test("built without nvcc: CUDA tests skipped"); }
#endif
