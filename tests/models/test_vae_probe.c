// test_vae_probe.c: the VAE's moments -> sigma (models/vae.h vae_sigma), the
// probe's statistics and latents (models/vae_probe.h), and the batch loops
// that score reconstructions (metrics/vae_recon.h):
// - vae_sigma = exp(0.5 * clamp(logvar, -30, 20)) element-wise, closed form;
// - vae_latent_std / vae_latent_mean_sigma against direct double sums;
// - vae_probe_latents: s = 0 gives mu, otherwise mu + (float)(s std_c) eps
//   with eps the Philox normals at offset i0 * per, so one call over 5
//   images equals calls over [0, 2) and [2, 5);
// - vae_recon_eval / vae_probe_eval on a tiny random VAE: the sums equal a
//   plain per-image loop, and do not depend on the model's batch size.
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/philox.h"
#include "metrics/image.h"
#include "metrics/vae_recon.h"
#include "models/vae.h"
#include "models/vae_probe.h"
#include "tests/util.h"

static void one_thread(void) { omp_set_num_threads(1); }

Test(vae_probe, sigma_closed_form) {
    const float lv[] = {-100.0f, -30.0f, -2.0f, 0.0f, 1.5f, 20.0f, 50.0f};
    const double want[] = {exp(-15.0), exp(-15.0), exp(-1.0), 1.0, exp(0.75), exp(10.0), exp(10.0)};
    float sg[7];
    vae_sigma(sg, lv, 7);
    for (int i = 0; i < 7; i++)
        cr_assert(fabs(sg[i] - want[i]) <= 1e-6 * want[i], "sigma(%g) = %g, want %g", lv[i], sg[i], want[i]);
}

Test(vae_probe, channel_statistics) {
    enum { N = 3, ZC = 2, HW = 4 };
    float mu[N * ZC * HW], lv[N * ZC * HW];
    fill_normal(mu, N * ZC * HW, 11, 1.0f);
    fill_uniform(lv, N * ZC * HW, 12, -3.0f, 1.0f);
    double std_c[ZC], sig_c[ZC];
    vae_latent_std(mu, N, ZC, HW, std_c);
    vae_latent_mean_sigma(lv, N, ZC, HW, sig_c);
    for (int c = 0; c < ZC; c++) {
        double s = 0, s2 = 0, sg = 0;
        for (int i = 0; i < N; i++)
            for (int k = 0; k < HW; k++) {
                double v = mu[(i * ZC + c) * HW + k];
                s += v, s2 += v * v, sg += exp(0.5 * lv[(i * ZC + c) * HW + k]);
            }
        double m = s / (N * HW), sd = sqrt(s2 / (N * HW) - m * m);
        cr_assert(fabs(std_c[c] - sd) <= 1e-12 * (1 + sd), "std[%d] %g vs %g", c, std_c[c], sd);
        cr_assert(fabs(sig_c[c] - sg / (N * HW)) <= 1e-6 * sig_c[c], "sigma[%d] %g vs %g", c, sig_c[c], sg / (N * HW));
    }
    float flat[8] = {2, 2, 2, 2, 2, 2, 2, 2};   // constant channel: std 0 (not NaN from rounding)
    double z0;
    vae_latent_std(flat, 2, 1, 4, &z0);
    cr_assert_eq(z0, 0.0);
}

Test(vae_probe, latents_formula_and_batching) {
    enum { N = 5, ZC = 2, HW = 3, PER = ZC * HW };
    float mu[N * PER], z[N * PER], z2[N * PER], eps[N * PER];
    fill_normal(mu, N * PER, 21, 1.0f);
    const double std_c[ZC] = {0.5, 2.0};
    vae_probe_latents(z, mu, N, ZC, HW, 0.0, std_c, 9, 7, 0);
    for (int j = 0; j < N * PER; j++) cr_assert_eq(z[j], mu[j]);
    vae_probe_latents(z, mu, N, ZC, HW, 1.5, std_c, 9, 7, 0);
    philox_normal(eps, N * PER, 9, 7, 0);
    for (int j = 0; j < N * PER; j++) {
        int c = (j / HW) % ZC;
        cr_assert_eq(z[j], mu[j] + (float)(1.5 * std_c[c]) * eps[j], "z[%d]", j);
    }
    vae_probe_latents(z2, mu, 2, ZC, HW, 1.5, std_c, 9, 7, 0);
    vae_probe_latents(z2 + 2 * PER, mu + 2 * PER, 3, ZC, HW, 1.5, std_c, 9, 7, 2);
    cr_assert_eq(memcmp(z, z2, sizeof z), 0, "batched probe latents differ from one call");
    vae_probe_latents(z2, mu, N, ZC, HW, 1.5, std_c, 9, 8, 0);   // another stream: other noise
    cr_assert_neq(memcmp(z, z2, sizeof z), 0);
}

static vae_config tiny(void) {
    vae_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.name, sizeof c.name, "tiny");
    c.in_ch = c.out_ch = 1;
    c.resolution = 16;
    c.ch = 32;
    c.nlevels = 2;
    c.ch_mult[0] = 1;
    c.ch_mult[1] = 1;
    c.num_res_blocks = 1;
    c.z_channels = 2;
    c.groups = 32;
    return c;
}

typedef struct { int calls; int64_t next; } seen;

static void count_batches(void *ctx, const float *orig, const float *rec, int64_t i0, int B) {
    seen *s = ctx;
    (void)orig, (void)rec;
    cr_assert_eq(i0, s->next, "batches out of order");
    s->next += B;
    s->calls++;
}

Test(vae_recon, sums_match_a_plain_loop_at_any_batch_size, .init = one_thread) {
    enum { N = 7, NPIX = 256 };
    vae_config c = tiny();
    vae *m3 = NULL, *m7 = NULL;
    cr_assert_eq(vae_create(&m3, &c, 3, 0), 0);
    cr_assert_eq(vae_create(&m7, &c, 7, 0), 0);
    vae_init_params(m3, 5);
    vae_init_params(m7, 5);
    float imgs[N * NPIX];
    fill_uniform(imgs, N * NPIX, 31, -1.0f, 1.0f);
    const int per = 2 * 8 * 8;
    float mu[N * per], lv[N * per];
    vae_recon_sums s3 = {0}, s7 = {0};
    seen sn = {0};
    vae_recon_eval(m3, imgs, N, mu, lv, count_batches, &sn, &s3);
    cr_assert_eq(sn.calls, 3);
    cr_assert_eq(s3.n, N);
    vae_recon_eval(m7, imgs, N, NULL, NULL, NULL, NULL, &s7);
    // The plain loop: one image at a time.
    double psnr = 0, ssim = 0;
    for (int i = 0; i < N; i++) {
        vae_encode(m7, imgs + i * NPIX, 1);
        for (int k = 0; k < per; k++) {
            cr_assert(fabsf(m7->mu[k] - mu[i * per + k]) <= 1e-5f * (1 + fabsf(mu[i * per + k])), "mu %d %d", i, k);
            cr_assert(fabsf(m7->logvar[k] - lv[i * per + k]) <= 1e-5f * (1 + fabsf(lv[i * per + k])));
        }
        const float *rec = vae_decode(m7, m7->mu, 1);
        psnr += image_psnr(rec, imgs + i * NPIX, 1, 16, 16);
        ssim += image_ssim(rec, imgs + i * NPIX, 1, 16, 16);
    }
    // Batch sizes change GEMM blocking only: sums agree to rounding.
    cr_assert(fabs(s3.psnr - psnr) <= 1e-3 * fabs(psnr), "psnr %g vs %g", s3.psnr, psnr);
    cr_assert(fabs(s7.psnr - psnr) <= 1e-3 * fabs(psnr), "psnr %g vs %g", s7.psnr, psnr);
    cr_assert(fabs(s3.ssim - ssim) <= 1e-3 * (1 + fabs(ssim)), "ssim %g vs %g", s3.ssim, ssim);
    // The probe at s = 0 decodes mu: the reconstruction's scores again.
    double std_c[2];
    vae_latent_std(mu, N, 2, 64, std_c);
    float z[3 * per];
    vae_recon_sums p0 = {0}, p1 = {0};
    vae_probe_eval(m3, imgs, mu, N, 0.0, std_c, 1, 7, z, NULL, NULL, &p0);
    cr_assert_eq(p0.n, N);
    cr_assert(fabs(p0.psnr - s3.psnr) <= 1e-9 * fabs(s3.psnr), "probe s=0 %g vs recon %g", p0.psnr, s3.psnr);
    vae_probe_eval(m3, imgs, mu, N, 2.0, std_c, 1, 7, z, NULL, NULL, &p1);
    cr_assert(p1.psnr != p0.psnr, "the probe's noise changed nothing");
    vae_destroy(&m3);
    vae_destroy(&m7);
}
