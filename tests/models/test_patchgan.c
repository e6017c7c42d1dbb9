// test_patchgan.c: models/patchgan.h. Forward logits and BatchNorm running
// statistics vs tests/ref/gen_patchgan.py (numpy float64 of LDM's
// NLayerDiscriminator, tiny config); parameter names and shapes of the LDM
// default; init statistics and seeding; backward (input and every parameter)
// vs central finite differences of a float64 evaluation; hinge and generator
// losses and the adaptive weight in closed form; and `train --model vae` with
// the GAN on resuming bit-exactly (weights, optimizer and discriminator);
// models/vae_gan.h's combined generator gradient vs a single backward pass.
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/idx.h"
#include "models/patchgan.h"
#include "models/vae.h"
#include "models/vae_gan.h"
#include "nn/loss.h"
#include "tests/util.h"

static void one_thread(void) { omp_set_num_threads(1); }

// Tiny config of gen_patchgan.py with its parameters loaded by name.
static patchgan *tiny_from_ref(void) {
    patchgan *d = NULL;
    patchgan_config c = {.in_ch = 2, .ndf = 4, .n_layers = 2};
    cr_assert_eq(patchgan_create(&d, &c, 3, 16, 16), 0);
    cr_assert_eq(d->pt.count, 14, "%d params", d->pt.count);
    for (int i = 0; i < d->pt.count; i++) {
        char nm[160];
        snprintf(nm, sizeof nm, "d_%s", d->pt.info[i].name);
        int64_t n;
        float *v = ref_f32("patchgan", nm, &n);
        cr_assert_eq(n, d->pt.info[i].numel, "%s: %lld vs %lld", nm, (long long)n,
                     (long long)d->pt.info[i].numel);
        memcpy(param_data(&d->pt, i), v, sizeof(float) * (size_t)n);
        free(v);
    }
    return d;
}

Test(patchgan, forward_matches_numpy, .init = one_thread) {
    patchgan *d = tiny_from_ref();
    int64_t nx, nl;
    float *x = ref_f32("patchgan", "d_x", &nx), *ref = ref_f32("patchgan", "d_logits", &nl);
    cr_assert_eq(nx, 3 * 2 * 16 * 16);
    cr_assert_eq(patchgan_out_per(d) * 3, nl);
    cr_assert(d->out_h == 2 && d->out_w == 2);
    const float *lo = patchgan_forward(d, x, 3, 1);
    // float32 chain of 4 convs + 2 batch norms vs float64, default tolerance.
    expect_close_f32("logits", lo, ref, nl, 1e-5, 1e-5);
    const char *bn[4] = {"main.3.running_mean", "main.3.running_var", "main.6.running_mean",
                         "main.6.running_var"};
    for (int k = 0; k < 4; k++) {
        char nm[64];
        snprintf(nm, sizeof nm, "d_new_%s", bn[k]);
        int64_t n;
        float *r = ref_f32("patchgan", nm, &n);
        int i = param_find(&d->pt, bn[k]);
        cr_assert_geq(i, 0);
        expect_close_f32(bn[k], param_data(&d->pt, i), r, n, 1e-6, 1e-5);
        free(r);
    }
    // update_running = 0 leaves the running statistics alone.
    int i = param_find(&d->pt, "main.3.running_mean");
    float keep = param_data(&d->pt, i)[0];
    patchgan_forward(d, x, 3, 0);
    cr_assert_eq(param_data(&d->pt, i)[0], keep);
    free(x); free(ref);
    patchgan_destroy(&d);
    cr_assert_null(d);
}

Test(patchgan, ldm_default_names_shapes_and_init) {
    patchgan *d = NULL;
    patchgan_config c = {.in_ch = 3, .ndf = 64, .n_layers = 3};
    cr_assert_eq(patchgan_create(&d, &c, 2, 32, 32), 0);
    static const char *names[] = {
        "main.0.weight", "main.0.bias", "main.2.weight", "main.3.weight", "main.3.bias",
        "main.3.running_mean", "main.3.running_var", "main.5.weight", "main.6.weight",
        "main.6.bias", "main.6.running_mean", "main.6.running_var", "main.8.weight",
        "main.9.weight", "main.9.bias", "main.9.running_mean", "main.9.running_var",
        "main.11.weight", "main.11.bias"};
    cr_assert_eq(d->pt.count, 19);
    for (int i = 0; i < 19; i++) cr_assert_str_eq(d->pt.info[i].name, names[i]);
    const param_info *w = &d->pt.info[param_find(&d->pt, "main.8.weight")];
    cr_assert(w->shape[0] == 512 && w->shape[1] == 256 && w->shape[2] == 4 && w->shape[3] == 4);
    cr_assert(d->out_h == 2 && d->out_w == 2 && d->out_c == 1);
    // 256x256 gives LDM's 30x30 patch logits.
    patchgan *big = NULL;
    cr_assert_eq(patchgan_create(&big, &c, 1, 256, 256), 0);
    cr_assert(big->out_h == 30 && big->out_w == 30);
    patchgan_destroy(&big);
    // Too small an input for the stack is refused.
    cr_assert_eq(patchgan_create(&big, &c, 1, 8, 8), VEL_EINVAL);
    cr_assert_null(big);
    patchgan_init_params(d, 5);
    int iw = param_find(&d->pt, "main.8.weight");
    double s = 0, s2 = 0;
    int64_t n = d->pt.info[iw].numel;
    const float *v = param_data(&d->pt, iw);
    for (int64_t k = 0; k < n; k++) { s += v[k]; s2 += (double)v[k] * v[k]; }
    cr_assert(fabs(s / n) < 1e-3 && fabs(sqrt(s2 / n) - 0.02) < 1e-3, "mean %g std %g", s / n, sqrt(s2 / n));
    const float *g = param_data(&d->pt, param_find(&d->pt, "main.3.weight"));
    const float *rv = param_data(&d->pt, param_find(&d->pt, "main.3.running_var"));
    const float *b0 = param_data(&d->pt, param_find(&d->pt, "main.0.bias"));
    double gs = 0;
    for (int k = 0; k < 128; k++) {
        gs += g[k];
        cr_assert(fabsf(g[k] - 1) < 0.1f && rv[k] == 1.0f);
    }
    cr_assert(fabs(gs / 128 - 1) < 0.01);
    for (int k = 0; k < 64; k++) cr_assert_eq(b0[k], 0.0f);
    // Seeded: same seed same weights, another seed others.
    patchgan *e = NULL;
    cr_assert_eq(patchgan_create(&e, &c, 2, 32, 32), 0);
    patchgan_init_params(e, 5);
    cr_assert(!memcmp(d->pt.values, e->pt.values, sizeof(float) * (size_t)d->pt.total));
    patchgan_init_params(e, 6);
    cr_assert(memcmp(d->pt.values, e->pt.values, sizeof(float) * (size_t)d->pt.total));
    patchgan_destroy(&e);
    patchgan_destroy(&d);
}

// float64 evaluation of the same network (naive convolution, batch norm with
// batch statistics, LeakyReLU 0.2) for the finite differences: L = sum(R * logits)
// with parameters P (d's layout, as doubles) and input x (B = 3).
static double loss64(const patchgan *d, const double *P, const double *x, const float *R) {
    enum { B = 3 };
    int C = d->cfg.in_ch, H = d->H, W = d->W;
    double *cur = malloc(sizeof(double) * B * C * H * W);
    memcpy(cur, x, sizeof(double) * B * C * H * W);
    for (int l = 0; l < d->nl; l++) {
        const patchgan_layer *L = &d->L[l];
        const conv2d_cfg *c = &L->conv;
        int OC = c->OC, OH = conv2d_out_h(c), OW = conv2d_out_w(c), st = c->stride;
        const double *w = P + d->pt.info[L->pw].offset;
        const double *bias = L->pb >= 0 ? P + d->pt.info[L->pb].offset : NULL;
        double *y = calloc((size_t)B * OC * OH * OW, sizeof(double));
        for (int b = 0; b < B; b++)
            for (int o = 0; o < OC; o++)
                for (int i = 0; i < OH; i++)
                    for (int j = 0; j < OW; j++) {
                        double acc = bias ? bias[o] : 0;
                        for (int ci = 0; ci < C; ci++)
                            for (int ki = 0; ki < 4; ki++)
                                for (int kj = 0; kj < 4; kj++) {
                                    int yy = i * st + ki - 1, xx = j * st + kj - 1;
                                    if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
                                    acc += w[((o * C + ci) * 4 + ki) * 4 + kj] *
                                           cur[((b * C + ci) * H + yy) * W + xx];
                                }
                        y[((b * OC + o) * OH + i) * OW + j] = acc;
                    }
        int hw = OH * OW;
        if (L->bw >= 0) {
            const double *g = P + d->pt.info[L->bw].offset, *be = P + d->pt.info[L->bb].offset;
            for (int o = 0; o < OC; o++) {
                double m = 0, v = 0;
                for (int b = 0; b < B; b++)
                    for (int k = 0; k < hw; k++) m += y[(b * OC + o) * hw + k];
                m /= B * hw;
                for (int b = 0; b < B; b++)
                    for (int k = 0; k < hw; k++) { double t = y[(b * OC + o) * hw + k] - m; v += t * t; }
                double r = 1 / sqrt(v / (B * hw) + 1e-5);
                for (int b = 0; b < B; b++)
                    for (int k = 0; k < hw; k++) {
                        double *t = &y[(b * OC + o) * hw + k];
                        *t = (*t - m) * r * g[o] + be[o];
                    }
            }
        }
        if (L->act)
            for (int k = 0; k < B * OC * hw; k++) if (y[k] < 0) y[k] *= 0.2;
        free(cur);
        cur = y;
        C = OC; H = OH; W = OW;
    }
    double Ls = 0;
    for (int k = 0; k < B * C * H * W; k++) Ls += (double)R[k] * cur[k];
    free(cur);
    return Ls;
}

Test(patchgan, backward_matches_finite_differences, .init = one_thread) {
    patchgan *d = tiny_from_ref();
    int64_t nx, nl = 3 * patchgan_out_per(d);
    float *x = ref_f32("patchgan", "d_x", &nx);
    float *R = malloc(sizeof(float) * (size_t)nl);
    fill_normal(R, nl, 31, 1.0f);
    patchgan_forward(d, x, 3, 0);
    float *dx = calloc((size_t)nx, sizeof(float)), *dx2 = calloc((size_t)nx, sizeof(float));
    param_zero_grads(&d->pt);
    patchgan_backward(d, dx, R, 3, 1);
    // Running statistics never get a gradient.
    for (int i = 0; i < d->pt.count; i++)
        if (strstr(d->pt.info[i].name, "running_"))
            for (int64_t k = 0; k < d->pt.info[i].numel; k++) cr_assert_eq(param_grad(&d->pt, i)[k], 0.0f);
    // Without parameter gradients: same dx, parameter gradients untouched.
    float *gcopy = malloc(sizeof(float) * (size_t)d->pt.total);
    memcpy(gcopy, d->pt.grads, sizeof(float) * (size_t)d->pt.total);
    patchgan_forward(d, x, 3, 0);
    patchgan_backward(d, dx2, R, 3, 0);
    cr_assert(!memcmp(dx, dx2, sizeof(float) * (size_t)nx));
    cr_assert(!memcmp(gcopy, d->pt.grads, sizeof(float) * (size_t)d->pt.total));
    // Central differences (h = 1e-6) of the float64 network at every input
    // and every parameter; the float backward must match them at HACKING.md's
    // default tolerance.
    const double h = 1e-6;
    double *P = malloc(sizeof(double) * (size_t)d->pt.total), *xd = malloc(sizeof(double) * (size_t)nx);
    for (int64_t i = 0; i < d->pt.total; i++) P[i] = d->pt.values[i];
    for (int64_t i = 0; i < nx; i++) xd[i] = x[i];
    int64_t nmax = nx > d->pt.total ? nx : d->pt.total;
    float *num = malloc(sizeof(float) * (size_t)nmax);
    for (int64_t i = 0; i < nx; i++) {
        double s = xd[i];
        xd[i] = s + h; double lp = loss64(d, P, xd, R);
        xd[i] = s - h; double lm = loss64(d, P, xd, R);
        xd[i] = s;
        num[i] = (float)((lp - lm) / (2 * h));
    }
    expect_close_f32("dx", dx, num, nx, 1e-5, 1e-5);
    for (int p = 0; p < d->pt.count; p++) {
        if (strstr(d->pt.info[p].name, "running_")) continue;
        int64_t off = d->pt.info[p].offset, n = d->pt.info[p].numel;
        for (int64_t i = 0; i < n; i++) {
            double s = P[off + i];
            P[off + i] = s + h; double lp = loss64(d, P, xd, R);
            P[off + i] = s - h; double lm = loss64(d, P, xd, R);
            P[off + i] = s;
            num[i] = (float)((lp - lm) / (2 * h));
        }
        expect_close_f32(d->pt.info[p].name, param_grad(&d->pt, p), num, n, 1e-5, 1e-5);
    }
    free(P); free(xd); free(num);
    free(x); free(R); free(dx); free(dx2); free(gcopy);
    patchgan_destroy(&d);
}

Test(patchgan, hinge_and_generator_losses_closed_form) {
    const float real[3] = {2.0f, 0.5f, -1.0f}, fake[3] = {-2.0f, -0.5f, 1.0f};
    float dr[3] = {0}, df[3] = {0};
    // relu(1 - real) = (0, 0.5, 2), relu(1 + fake) = (0, 0.5, 2): 0.5 * (5/6 + 5/6).
    double L = hinge_d_loss(dr, df, real, fake, 3);
    cr_assert_float_eq(L, 5.0 / 6.0, 1e-12);
    const float er[3] = {0, -1.0f / 6, -1.0f / 6}, ef[3] = {0, 1.0f / 6, 1.0f / 6};
    for (int i = 0; i < 3; i++) {
        cr_assert_float_eq(dr[i], er[i], 1e-7);
        cr_assert_float_eq(df[i], ef[i], 1e-7);
    }
    float pr[3] = {0}, pf[3] = {0};
    double a = hinge_d_loss_part(pr, real, 3, 1), b = hinge_d_loss_part(pf, fake, 3, 0);
    cr_assert_float_eq(a + b, L, 1e-12);
    cr_assert(!memcmp(pr, dr, sizeof pr) && !memcmp(pf, df, sizeof pf));
    // A confident discriminator: zero loss and zero gradient.
    const float r2[2] = {1.5f, 3}, f2[2] = {-1.5f, -3};
    float z[2] = {0};
    cr_assert_eq(hinge_d_loss(z, z, r2, f2, 2), 0.0);
    cr_assert(z[0] == 0 && z[1] == 0);
    float dg[3] = {0};
    double gl = gan_g_loss(dg, fake, 3, 1.0f);
    cr_assert_float_eq(gl, 0.5, 1e-12);   // -(-2 - 0.5 + 1)/3
    for (int i = 0; i < 3; i++) cr_assert_float_eq(dg[i], -1.0f / 3, 1e-7);
}

Test(patchgan, adaptive_weight_closed_form) {
    // ||(3,4)|| = 5, ||(0,2)|| = 2: 5 / (2 + 1e-4) * 0.5.
    const float a[2] = {3, 4}, b[2] = {0, 2}, zero[2] = {0, 0};
    cr_assert_float_eq(gan_adaptive_weight(a, b, 2, 0.5), 0.5 * 5 / (2 + 1e-4), 1e-12);
    // G_gan = k * G_rec: weight ||g|| / (k ||g|| + 1e-4), about 1/k.
    float g[50], gk[50];
    fill_normal(g, 50, 41, 1.0f);
    double nn = 0;
    for (int i = 0; i < 50; i++) { gk[i] = 4 * g[i]; nn += (double)g[i] * g[i]; }
    nn = sqrt(nn);
    cr_assert_float_eq(gan_adaptive_weight(g, gk, 50, 1.0), nn / (4 * nn + 1e-4), 1e-9);
    // Clamped to 1e4 (then times the weight), and 0 when the rec gradient is 0.
    cr_assert_float_eq(gan_adaptive_weight(a, zero, 2, 0.5), 0.5e4, 1e-9);
    cr_assert_eq(gan_adaptive_weight(zero, b, 2, 0.5), 0.0);
}

// `train --model vae` with the GAN on from step 1: 3 steps straight vs 2 +
// --resume to 3 give byte-identical autoencoder and discriminator files.
Test(patchgan, train_with_gan_resumes_bit_exactly, .timeout = 180) {
    if (access("bin/train", X_OK)) cr_skip_test("bin/train not built (make)");
    if (access(FMNIST_DEFAULT_DIR "/train-images-idx3-ubyte.gz", R_OK))
        cr_skip_test("Fashion-MNIST not installed");
    char *dir = test_tmpdir("gan_resume");
    char cmd[4096], a[600], b[600];
    const char *common = "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 bin/train --model vae --reg kl "
                         "--batch 2 --ckpt-every 1 --seed 3 --disc-weight 0.5 --disc-start 1 "
                         "--disc-ndf 8 --disc-lr 2e-4 --log-every 1";
    snprintf(cmd, sizeof cmd,
             "%s --out %s/a --steps 3 >/dev/null 2>&1 && %s --out %s/b --steps 2 >/dev/null 2>&1 && "
             "%s --out %s/b --steps 3 --resume >/dev/null 2>&1",
             common, dir, common, dir, common, dir);
    cr_assert_eq(system(cmd), 0, "train runs failed: %s", cmd);
    static const char *files[4] = {"vae.safetensors", "vae.optim.safetensors", "disc.safetensors",
                                   "disc.optim.safetensors"};
    for (int k = 0; k < 4; k++) {
        snprintf(a, sizeof a, "%s/a/%s", dir, files[k]);
        snprintf(b, sizeof b, "%s/b/%s", dir, files[k]);
        cr_assert(test_files_equal(a, b), "resumed %s differs", files[k]);
    }
    // The GAN terms are logged from step 2 on (disc-start 1).
    snprintf(a, sizeof a, "%s/a/log.jsonl", dir);
    FILE *f = fopen(a, "r");
    cr_assert_not_null(f);
    char line[2048];
    int with = 0, without = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strstr(line, "\"step\"")) continue;
        if (strstr(line, "\"d_weight\"") && strstr(line, "\"logits_real\"") && strstr(line, "\"d_loss\""))
            with++;
        else
            without++;
    }
    fclose(f);
    cr_assert(with == 2 && without == 1, "log lines with GAN %d, without %d", with, without);
    // Resuming a GAN run without its discriminator checkpoint is refused.
    snprintf(cmd, sizeof cmd, "rm %s/b/disc.safetensors && %s --out %s/b --steps 4 --resume >/dev/null 2>&1",
             dir, common, dir);
    cr_assert_neq(system(cmd), 0);
    rm_rf(dir);
    free(dir);
}

// The generator step's combined gradient G_rec + d_weight * G_gan against an
// independent computation on the same forward state: d_weight from the
// conv_out gradients of the L1 term alone and of the GAN term alone (each
// its own backward pass), and the whole gradient from ONE backward pass of
// dxrec = dL1/dxrec + d_weight * dG/dxrec plus the KL terms.
Test(patchgan, vae_gan_generator_step_matches_single_backward, .init = one_thread) {
    enum { B = 2 };
    vae_config vc;
    cr_assert_eq(vae_config_preset("f4c4", 1, &vc), 0);
    vae *m = NULL;
    cr_assert_eq(vae_create(&m, &vc, B, 1), 0);
    vae_init_params(m, 1);
    patchgan *d = NULL;
    patchgan_config dc = {.in_ch = 1, .ndf = 8, .n_layers = 3};
    cr_assert_eq(patchgan_create(&d, &dc, B, 32, 32), 0);
    patchgan_init_params(d, 2);
    vae_gan *g = NULL;
    cr_assert_eq(vae_gan_create(&g, m, d), 0);
    int zs = vae_latent_side(&vc);
    int64_t nx = B * 1024, nz = (int64_t)B * vc.z_channels * zs * zs, tot = m->pt.total;
    int64_t nlog = B * patchgan_out_per(d);
    float *x = malloc(sizeof(float) * nx), *eps = malloc(sizeof(float) * nz);
    fill_uniform(x, nx, 51, -1, 1);
    fill_normal(eps, nz, 52, 1);
    vae_loss_cfg lc = {.reg = VAE_REG_KL, .beta = 1e-3f, .recon = VAE_RECON_MEAN};   // dL1 below is the mean
    vae_loss_parts lp;
    vae_gan_parts gp;
    cr_assert_eq(vae_gan_generator_step(g, x, eps, B, &lc, 0.5, &lp, &gp), 0);
    float *combined = malloc(sizeof(float) * tot);
    memcpy(combined, m->pt.grads, sizeof(float) * tot);
    // Independent: dL1/dxrec and dG/dxrec.
    float *dxl = calloc(nx, sizeof(float)), *dxg = calloc(nx, sizeof(float)), *dl = calloc(nlog, sizeof(float));
    l1_loss_backward(dxl, NULL, g->xrec, x, nx, 1.0f);
    const float *lf = patchgan_forward(d, g->xrec, B, 0);
    double gl = 0;
    for (int64_t i = 0; i < nlog; i++) { gl -= lf[i]; dl[i] = -1.0f / (float)nlog; }
    cr_assert_float_eq(gp.g_loss, gl / nlog, 1e-9);
    patchgan_backward(d, dxg, dl, B, 0);
    int iw = param_find(&m->pt, "decoder.conv_out.weight");
    int64_t nw = m->pt.info[iw].numel;
    double na = 0, nb = 0;
    float *dz = calloc(nz, sizeof(float));
    param_zero_grads(&m->pt);
    vae_decoder_backward(m, dz, dxl, B);
    for (int64_t i = 0; i < nw; i++) na += (double)param_grad(&m->pt, iw)[i] * param_grad(&m->pt, iw)[i];
    param_zero_grads(&m->pt);
    vae_decoder_backward(m, dz, dxg, B);
    for (int64_t i = 0; i < nw; i++) nb += (double)param_grad(&m->pt, iw)[i] * param_grad(&m->pt, iw)[i];
    double w = sqrt(na) / (sqrt(nb) + 1e-4);
    w = 0.5 * (w > 1e4 ? 1e4 : w);
    cr_assert(w > 0);
    cr_assert_float_eq(gp.d_weight, w, 1e-9 + 1e-6 * w, "d_weight %g vs independent %g", gp.d_weight, w);
    // One backward of the combined image gradient.
    float *dxt = malloc(sizeof(float) * nx);
    for (int64_t i = 0; i < nx; i++) dxt[i] = dxl[i] + (float)w * dxg[i];
    float *dmu = calloc(nz, sizeof(float)), *dlv = calloc(nz, sizeof(float));
    memset(dz, 0, sizeof(float) * nz);
    param_zero_grads(&m->pt);
    vae_decoder_backward(m, dz, dxt, B);
    kl_loss_backward(dmu, dlv, m->mu, m->logvar, B, nz / B, lc.beta);
    reparam_backward(dmu, dlv, dz, m->logvar, eps, nz);
    vae_encoder_backward(m, dmu, dlv, B);
    // Same gradient up to fp32 rounding (the two passes round differently):
    // measured max abs error 4.5e-8 on gradients up to ~0.06; atol 1e-7.
    expect_close_f32("combined gradient", combined, m->pt.grads, tot, 1e-7, 1e-5);
    // The discriminator step: hinge loss of D(x) and D(xrec) as computed here.
    vae_gan_discriminator_step(g, x, B, &gp);
    float *lr = malloc(sizeof(float) * nlog), *lfk = malloc(sizeof(float) * nlog);
    memcpy(lr, patchgan_forward(d, x, B, 0), sizeof(float) * nlog);
    memcpy(lfk, patchgan_forward(d, g->xrec, B, 0), sizeof(float) * nlog);
    cr_assert_float_eq(gp.d_loss, hinge_d_loss(NULL, NULL, lr, lfk, nlog), 1e-9);
    free(lr); free(lfk); free(dmu); free(dlv); free(dxt); free(dz); free(dxl); free(dxg); free(dl);
    free(combined); free(x); free(eps);
    vae_gan_destroy(&g);
    patchgan_destroy(&d);
    vae_destroy(&m);
}
