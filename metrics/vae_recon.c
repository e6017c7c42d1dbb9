// vae_recon.c: see vae_recon.h.
#include "metrics/vae_recon.h"

#include <string.h>

#include "metrics/image.h"
#include "models/vae_probe.h"

static void score(const vae *m, const float *rec, const float *orig, int B, vae_recon_sums *sums) {
    const int C = m->cfg.out_ch, R = m->cfg.resolution, npix = C * R * R;
    for (int b = 0; b < B; b++) {
        sums->psnr += image_psnr(rec + (size_t)b * npix, orig + (size_t)b * npix, C, R, R);
        sums->ssim += image_ssim(rec + (size_t)b * npix, orig + (size_t)b * npix, C, R, R);
    }
    sums->n += B;
}

void vae_recon_eval(vae *m, const float *imgs, int64_t n, float *mu, float *logvar, vae_recon_fn *fn,
                    void *ctx, vae_recon_sums *sums) {
    const int npix = m->cfg.in_ch * m->cfg.resolution * m->cfg.resolution;
    const size_t per = (size_t)m->cfg.z_channels * m->zside * m->zside;
    for (int64_t i0 = 0; i0 < n; i0 += m->Bmax) {
        int B = (int)(n - i0 < m->Bmax ? n - i0 : m->Bmax);
        const float *x = imgs + (size_t)i0 * npix;
        vae_encode(m, x, B);
        if (mu) memcpy(mu + (size_t)i0 * per, m->mu, sizeof(float) * (size_t)B * per);
        if (logvar) memcpy(logvar + (size_t)i0 * per, m->logvar, sizeof(float) * (size_t)B * per);
        const float *rec = vae_decode(m, m->mu, B);
        if (fn) fn(ctx, x, rec, i0, B);
        score(m, rec, x, B, sums);
    }
}

void vae_probe_eval(vae *m, const float *imgs, const float *mu, int64_t n, double s, const double *std_c,
                    uint64_t seed, uint32_t stream, float *z, vae_recon_fn *fn, void *ctx,
                    vae_recon_sums *sums) {
    const int npix = m->cfg.out_ch * m->cfg.resolution * m->cfg.resolution;
    const int zc = m->cfg.z_channels, hw = m->zside * m->zside;
    for (int64_t i0 = 0; i0 < n; i0 += m->Bmax) {
        int B = (int)(n - i0 < m->Bmax ? n - i0 : m->Bmax);
        vae_probe_latents(z, mu + (size_t)i0 * zc * hw, B, zc, hw, s, std_c, seed, stream, i0);
        const float *rec = vae_decode(m, z, B);
        const float *x = imgs + (size_t)i0 * npix;
        if (fn) fn(ctx, x, rec, i0, B);
        score(m, rec, x, B, sums);
    }
}
