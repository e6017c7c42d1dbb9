// test_vae.c: the whole VAE: presets and CompVis parameter names, shapes,
// the training step's gradients (KL and VE arms) against central finite
// differences of the step's own loss, determinism, and that a few Adam
// steps reduce the loss on a fixed batch.
#include <cblas.h>
#include <criterion/criterion.h>
#include <omp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/vae.h"
#include "core/base.h"
#include "nn/checkpoint.h"
#include "nn/optim.h"
#include "tests/nn/dense_check.h"
#include "tests/util.h"

// Tiny tensors: with several engineers' jobs on 2 cores, OpenMP/OpenBLAS
// barriers between hundreds of small ops dominated (measured 129 s vs 1.6 s
// for the KL gradient test). The ops are thread-count independent by
// contract, so the tests run single-threaded.
static void one_thread(void) {
    omp_set_num_threads(1);
    openblas_set_num_threads(1);
}

static vae_config tiny_cfg(void) {
    vae_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.name, sizeof c.name, "tiny");
    c.in_ch = c.out_ch = 1;
    c.resolution = 8;
    c.ch = 32;
    c.nlevels = 2;
    c.ch_mult[0] = 1;
    c.ch_mult[1] = 1;
    c.num_res_blocks = 1;
    c.attn_res[0] = 4;   // attention after the level-1 blocks (4x4) too
    c.nattn = 1;
    c.z_channels = 2;
    c.groups = 32;
    return c;
}

Test(vae, presets_and_names, .init = one_thread) {
    vae_config c;
    cr_assert_eq(vae_config_preset("f4c4", 1, &c), 0);
    cr_assert_eq(vae_latent_side(&c), 8);
    cr_assert_eq(vae_config_preset("f8c4", 1, &c), 0);
    cr_assert_eq(vae_latent_side(&c), 4);
    cr_assert_eq(vae_config_preset("f16d32", 3, &c), 0);
    cr_assert_eq(vae_latent_side(&c), 16);
    cr_assert_eq(c.z_channels, 32);
    cr_assert_eq(vae_config_preset("nope", 1, &c), VEL_EINVAL);
    cr_assert_eq(vae_config_preset("f4c4", 2, &c), VEL_EINVAL);
    c.ch = 48;   // 48 channels do not split into 32 groups
    cr_assert_eq(vae_config_validate(&c), VEL_EINVAL);

    vae_config_preset("f4c4", 1, &c);
    vae *m = NULL;
    cr_assert_eq(vae_create(&m, &c, 2, 0), 0);
    const char *must[] = {"encoder.conv_in.weight", "encoder.down.0.block.0.norm1.weight",
                          "encoder.down.0.downsample.conv.weight",
                          "encoder.down.1.block.0.nin_shortcut.weight",
                          "encoder.mid.attn_1.q.weight", "encoder.mid.block_2.conv2.bias",
                          "encoder.norm_out.weight", "encoder.conv_out.weight",
                          "quant_conv.weight", "post_quant_conv.weight", "decoder.conv_in.weight",
                          "decoder.mid.attn_1.proj_out.weight", "decoder.up.2.block.1.conv1.weight",
                          "decoder.up.2.upsample.conv.weight", "decoder.up.1.upsample.conv.weight",
                          "decoder.up.0.block.0.nin_shortcut.weight", "decoder.conv_out.bias"};
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++)
        cr_assert_geq(param_find(&m->pt, must[i]), 0, "missing %s", must[i]);
    cr_assert_eq(param_find(&m->pt, "decoder.up.0.upsample.conv.weight"), -1);
    cr_assert_eq(param_find(&m->pt, "encoder.down.2.downsample.conv.weight"), -1);
    int i = param_find(&m->pt, "encoder.conv_out.weight");
    cr_assert(m->pt.info[i].shape[0] == 8 && m->pt.info[i].shape[1] == 64);
    i = param_find(&m->pt, "decoder.conv_out.weight");
    cr_assert(m->pt.info[i].shape[0] == 1 && m->pt.info[i].shape[1] == 32);
    cr_log_info("f4c4: %d tensors, %lld parameters", m->pt.count, (long long)m->pt.total);
    // Shapes through encode/decode.
    vae_init_params(m, 1);
    float x[2 * 32 * 32];
    fill_uniform(x, 2 * 1024, 3, -1, 1);
    vae_encode(m, x, 2);
    const float *y = vae_decode(m, m->mu, 2);
    for (int k = 0; k < 2 * 1024; k++) cr_assert(isfinite(y[k]));
    vae_destroy(&m);
    cr_assert_null(m);
}

static double step_loss(vae *m, const float *x, const float *eps, int B, const vae_loss_cfg *lc) {
    vae_loss_parts lp;
    param_zero_grads(&m->pt);
    cr_assert_eq(vae_train_step(m, x, eps, B, lc, &lp, NULL), 0);
    return lp.total;
}

static void grad_check(vae_loss_cfg lc, const char *arm) {
    vae_config c = tiny_cfg();
    vae *m = NULL;
    cr_assert_eq(vae_create(&m, &c, 2, 1), 0);
    vae_init_params(m, 7);
    int B = 2;
    float x[2 * 64], eps[2 * 2 * 16];
    fill_uniform(x, 2 * 64, 11, -1, 1);
    fill_normal(eps, 2 * 2 * 16, 12, 1.0f);
    step_loss(m, x, eps, B, &lc);
    float *g = malloc(sizeof(float) * m->pt.total);
    memcpy(g, m->pt.grads, sizeof(float) * m->pt.total);
    const char *names[] = {"encoder.conv_in.weight", "encoder.down.0.block.0.conv1.weight",
                           "encoder.down.1.attn.0.q.weight", "encoder.mid.attn_1.v.bias",
                           "encoder.conv_out.bias", "quant_conv.weight", "post_quant_conv.weight",
                           "decoder.mid.block_1.norm1.weight", "decoder.up.1.block.1.conv2.weight",
                           "decoder.up.1.upsample.conv.weight", "decoder.conv_out.weight"};
    double worst = 0;
    const float h = 1e-2f;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        int i = param_find(&m->pt, names[k]);
        cr_assert_geq(i, 0, "%s", names[k]);
        float *v = param_data(&m->pt, i);
        for (int r = 0; r < 3; r++) {
            int64_t j = (int64_t)((r * 2654435761u + 17u * k) % (uint64_t)m->pt.info[i].numel);
            float v0 = v[j];
            v[j] = v0 + h;
            double lp = step_loss(m, x, eps, B, &lc);
            v[j] = v0 - h;
            double lm = step_loss(m, x, eps, B, &lc);
            v[j] = v0;
            double fd = (lp - lm) / (2.0 * h);
            double an = g[m->pt.info[i].offset + j];
            double err = fabs(fd - an);
            if (err > worst) worst = err;
            // Whole-model FD through the float forward with an L1 term (kinks);
            // measured worst abs error 1.6e-5 in both arms: 2e-4 + 1e-2 rel.
            cr_assert(err <= 2e-4 + 1e-2 * fabs(fd), "%s %s[%lld]: analytic %.6g FD %.6g", arm,
                      names[k], (long long)j, an, fd);
        }
    }
    cr_log_info("%s: whole-model FD max abs err %.3g", arm, worst);
    free(g);
    vae_destroy(&m);
}

Test(vae, train_step_gradients_kl, .init = one_thread) {
    // Per-pixel mean L1: the tolerances below are absolute, sized for it; the
    // sum reduction is the same gradients times C*H*W (tests/models/test_vae_loss.c).
    vae_loss_cfg lc = {.reg = VAE_REG_KL, .beta = 0.01f, .recon = VAE_RECON_MEAN};
    grad_check(lc, "kl");
}

Test(vae, train_step_gradients_ve, .init = one_thread) {
    vae_loss_cfg lc = {.reg = VAE_REG_VE, .ve = VE_INV_VAR, .lambda_ve = 0.01f, .delta = 1e-2f,
                       .mag = VAE_MAG_GLOBAL, .lambda_reg = 0.1f, .tau = 0.1f, .recon = VAE_RECON_MEAN};
    grad_check(lc, "ve");
}

Test(vae, deterministic_and_learns, .init = one_thread) {
    vae_config c = tiny_cfg();
    vae *m = NULL, *m2 = NULL;
    cr_assert_eq(vae_create(&m, &c, 4, 1), 0);
    cr_assert_eq(vae_create(&m2, &c, 4, 1), 0);
    vae_init_params(m, 3);
    vae_init_params(m2, 3);
    cr_assert(memcmp(m->pt.values, m2->pt.values, sizeof(float) * m->pt.total) == 0);
    float x[4 * 64], eps[4 * 32];
    for (int i = 0; i < 4 * 64; i++) x[i] = sinf(0.3f * i) * 0.8f;
    optim_config oc = optim_defaults(OPTIM_ADAM);
    oc.beta1 = 0.5; oc.beta2 = 0.9;
    optim *o = NULL;
    cr_assert_eq(optim_create(&o, &m->pt, &oc), 0);
    vae_loss_cfg lc = {.reg = VAE_REG_KL, .beta = 1e-6f};
    double first = 0, last = 0;
    for (int s = 0; s < 40; s++) {
        fill_normal(eps, 4 * 32, 100 + s, 1.0f);
        double L = step_loss(m, x, eps, 4, &lc);
        if (s == 0) {
            step_loss(m2, x, eps, 4, &lc);
            cr_assert(memcmp(m->pt.grads, m2->pt.grads, sizeof(float) * m->pt.total) == 0,
                      "same params, data and noise must give bit-identical gradients");
            first = L;
        }
        last = L;
        optim_step(o, &m->pt, 2e-3);
    }
    cr_log_info("tiny VAE: loss %.4f -> %.4f in 40 Adam steps", first, last);
    cr_assert(last < 0.6 * first, "loss did not fall: %f -> %f", first, last);
    optim_destroy(&o);
    vae_destroy(&m);
    vae_destroy(&m2);
}

// One training step at 1 and at 2 OpenMP threads (really 2: the team size is
// checked) must give the same bits: loss, reconstruction and every
// parameter gradient. Config a: attention at a 16x16 level (T 256, C 32), so
// the attention products are large enough that OpenBLAS's own threading
// would split them (it did, through direct cblas calls, before nn/matmul.h);
// config b: the f4c4 preset as trained.
static void same_bits_case(const vae_config *c, int B) {
    int R = c->resolution, zs = vae_latent_side(c);
    int64_t nx = (int64_t)B * c->in_ch * R * R, nz = (int64_t)B * c->z_channels * zs * zs;
    float *x = malloc(sizeof(float) * nx), *eps = malloc(sizeof(float) * nz);
    fill_uniform(x, nx, 21, -1, 1);
    fill_normal(eps, nz, 22, 1.0f);
    vae_loss_cfg lc = {.reg = VAE_REG_KL, .beta = 1e-6f};
    float *grads[2], *xrec[2];
    double loss[2];
    openblas_set_num_threads(1);
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t + 1);
        cr_assert_eq(omp_team_size(), t + 1, "the OpenMP team must have %d threads", t + 1);
        vae *m = NULL;
        cr_assert_eq(vae_create(&m, c, B, 1), 0);
        vae_init_params(m, 5);
        xrec[t] = malloc(sizeof(float) * nx);
        vae_loss_parts lp;
        param_zero_grads(&m->pt);
        cr_assert_eq(vae_train_step(m, x, eps, B, &lc, &lp, xrec[t]), 0);
        cr_assert_eq(omp_get_max_threads(), t + 1, "the step changed the OpenMP count");
        loss[t] = lp.total;
        grads[t] = malloc(sizeof(float) * m->pt.total);
        memcpy(grads[t], m->pt.grads, sizeof(float) * m->pt.total);
        if (t == 1) {
            for (int i = 0; i < m->pt.count; i++) {
                int64_t off = m->pt.info[i].offset, n = m->pt.info[i].numel;
                cr_expect(memcmp(grads[0] + off, grads[1] + off, sizeof(float) * n) == 0,
                          "%s: gradient differs between 1 and 2 threads", m->pt.info[i].name);
            }
        }
        vae_destroy(&m);
    }
    cr_expect(memcmp(xrec[0], xrec[1], sizeof(float) * nx) == 0,
              "reconstruction differs between 1 and 2 threads");
    cr_expect(loss[0] == loss[1], "loss %.17g at 1 thread, %.17g at 2", loss[0], loss[1]);
    for (int t = 0; t < 2; t++) { free(grads[t]); free(xrec[t]); }
    free(x); free(eps);
}

Test(vae, train_step_same_bits_at_1_and_2_threads) {
    int saved = omp_get_max_threads();
    vae_config a = tiny_cfg();
    a.resolution = 16;
    a.attn_res[0] = 16;
    a.z_channels = 4;
    cr_assert_eq(vae_config_validate(&a), 0);
    same_bits_case(&a, 4);
    vae_config b;
    cr_assert_eq(vae_config_preset("f4c4", 1, &b), 0);
    same_bits_case(&b, 4);
    omp_set_num_threads(saved);
}

// vtape_backward zeroes each activation gradient just before the first op
// that writes it: a second step on the same batch (after a step on another
// batch of another size, leaving other values in every gradient buffer) must
// give the first step's gradients bit for bit.
Test(vae, repeated_step_same_gradients, .init = one_thread) {
    vae_config c = tiny_cfg();
    vae *m = NULL;
    cr_assert_eq(vae_create(&m, &c, 4, 1), 0);
    vae_init_params(m, 9);
    float x[4 * 64], x2[4 * 64], eps[4 * 32], eps2[4 * 32];
    fill_uniform(x, 4 * 64, 31, -1, 1);
    fill_uniform(x2, 4 * 64, 32, -1, 1);
    fill_normal(eps, 4 * 32, 33, 1.0f);
    fill_normal(eps2, 4 * 32, 34, 1.0f);
    vae_loss_cfg lc = {.reg = VAE_REG_KL, .beta = 1e-3f};
    double l1 = step_loss(m, x, eps, 3, &lc);
    float *g = malloc(sizeof(float) * m->pt.total);
    memcpy(g, m->pt.grads, sizeof(float) * m->pt.total);
    step_loss(m, x2, eps2, 4, &lc);
    double l2 = step_loss(m, x, eps, 3, &lc);
    cr_assert(l1 == l2, "loss %.17g then %.17g", l1, l2);
    cr_assert(memcmp(g, m->pt.grads, sizeof(float) * m->pt.total) == 0,
              "gradients of a repeated step differ");
    free(g);
    vae_destroy(&m);
}

// Exact resume: 4 steps straight vs 2 steps, checkpoint, a fresh model and
// optimizer loaded from it, 2 more steps: weights must be bit-identical.
Test(vae, checkpoint_resume_is_bit_exact, .init = one_thread) {
    vae_config c = tiny_cfg();
    vae_loss_cfg lc = {.reg = VAE_REG_VE, .ve = VE_INV_VAR, .lambda_ve = 1e-3f, .delta = 1e-6f,
                       .mag = VAE_MAG_GLOBAL, .lambda_reg = 1.0f, .tau = 3.0f};
    optim_config oc = optim_defaults(OPTIM_ADAM);
    oc.beta1 = 0.5; oc.beta2 = 0.9;
    float x[2 * 64], eps[2 * 32];
    vae *a = NULL, *b = NULL;
    optim *oa = NULL, *ob = NULL;
    cr_assert_eq(vae_create(&a, &c, 2, 1), 0);
    cr_assert_eq(vae_create(&b, &c, 2, 1), 0);
    vae_init_params(a, 9);
    vae_init_params(b, 1234);   // different on purpose: the load must overwrite
    cr_assert_eq(optim_create(&oa, &a->pt, &oc), 0);
    cr_assert_eq(optim_create(&ob, &b->pt, &oc), 0);
    char *dir = test_tmpdir("vae_resume");
    char prefix[512];
    snprintf(prefix, sizeof prefix, "%s/vae", dir);
    for (int s = 0; s < 4; s++) {
        fill_uniform(x, 2 * 64, 50 + s, -1, 1);
        fill_normal(eps, 2 * 32, 60 + s, 1.0f);
        step_loss(a, x, eps, 2, &lc);
        optim_step(oa, &a->pt, 1e-3);
        if (s == 1) {
            ckpt_state st = {.step = 2, .rng_seed = 1, .rng_offset = 2};
            cr_assert_eq(ckpt_save(prefix, &a->pt, oa, NULL, &st, NULL, 0), 0, "%s", vel_error_detail());
        }
    }
    ckpt_state st;
    cr_assert_eq(ckpt_load(prefix, &b->pt, ob, NULL, &st), 0, "%s", vel_error_detail());
    cr_assert_eq(st.step, 2);
    for (int s = 2; s < 4; s++) {
        fill_uniform(x, 2 * 64, 50 + s, -1, 1);
        fill_normal(eps, 2 * 32, 60 + s, 1.0f);
        step_loss(b, x, eps, 2, &lc);
        optim_step(ob, &b->pt, 1e-3);
    }
    cr_assert(memcmp(a->pt.values, b->pt.values, sizeof(float) * a->pt.total) == 0,
              "resumed weights differ from the uninterrupted run");
    optim_destroy(&oa); optim_destroy(&ob);
    vae_destroy(&a); vae_destroy(&b);
    rm_rf(dir);
    free(dir);
}

// The f16d32 layout (5 levels, 2 encoder / 3 decoder blocks, attention at
// 16x16 and in the mid blocks, z 32) at a small width and resolution so it
// fits a test: names, the attention placement, latent shape, finite output.
Test(vae, f16d32_layout_small, .init = one_thread) {
    vae_config c;
    cr_assert_eq(vae_config_preset("f16d32", 3, &c), 0);
    c.ch = 32;
    c.resolution = 32;   // 32 -> 16 (attn level 1) -> 8 -> 4 -> 2
    vae *m = NULL;
    cr_assert_eq(vae_create(&m, &c, 1, 0), 0);
    cr_assert_eq(m->zside, 2);
    const char *must[] = {"encoder.down.1.attn.1.q.weight", "encoder.down.4.block.1.conv2.weight",
                          "decoder.up.1.attn.2.proj_out.weight", "decoder.up.4.block.2.conv1.weight",
                          "decoder.up.4.upsample.conv.weight", "quant_conv.weight"};
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++)
        cr_assert_geq(param_find(&m->pt, must[i]), 0, "missing %s", must[i]);
    cr_assert_eq(param_find(&m->pt, "encoder.down.0.attn.0.q.weight"), -1);
    cr_assert_eq(param_find(&m->pt, "encoder.down.4.downsample.conv.weight"), -1);
    int i = param_find(&m->pt, "quant_conv.weight");
    cr_assert(m->pt.info[i].shape[0] == 64 && m->pt.info[i].shape[1] == 64);
    i = param_find(&m->pt, "encoder.down.4.block.0.conv1.weight");
    cr_assert(m->pt.info[i].shape[0] == 128 && m->pt.info[i].shape[1] == 64);
    vae_init_params(m, 2);
    float x[3 * 32 * 32];
    fill_uniform(x, 3 * 1024, 6, -1, 1);
    vae_encode(m, x, 1);
    const float *y = vae_decode(m, m->mu, 1);
    for (int k = 0; k < 3 * 1024; k++) cr_assert(isfinite(y[k]));
    cr_log_info("f16d32 layout at ch 32: %d tensors, %lld parameters", m->pt.count, (long long)m->pt.total);
    vae_destroy(&m);
}
