// vae_loss.c: the tokenizer's training loss, L1 reconstruction + KL or the VE
// terms, with the reduction made explicit (vae.h vae_recon; docs/FORMULAS.md
// section 1). Kept apart from the tape so it can be checked on a fixed batch
// against a numpy transcription of LDM's contperceptual loss
// (tests/ref/gen_vae_loss.py, tests/models/test_vae_loss.c).
#include "models/vae.h"

#include <string.h>

#include "nn/loss.h"

void vae_loss(const vae_loss_cfg *lc, const float *x, const float *xrec, const float *mu,
              const float *logvar, int B, int64_t px, int zc, int zhw, float *dxrec,
              float *dmu, float *dlv, vae_loss_parts *parts) {
    int64_t nx = (int64_t)B * px, nz = (int64_t)B * zc * zhw;
    // LDM: sum(|x - xrec|) / B = px * mean(|x - xrec|).
    const double rs = lc->recon == VAE_RECON_MEAN ? 1.0 : (double)px;
    vae_loss_parts lp;
    memset(&lp, 0, sizeof lp);
    lp.rec_l1 = l1_loss_forward(xrec, x, nx);
    l1_loss_backward(dxrec, NULL, xrec, x, nx, (float)rs);
    lp.total = rs * lp.rec_l1;
    if (lc->reg == VAE_REG_KL) {
        // KL summed per image, batch mean, weight beta: the same under both.
        lp.kl = kl_loss_forward(mu, logvar, B, nz / B);
        kl_loss_backward(dmu, dlv, mu, logvar, B, nz / B, lc->beta);
        lp.total += lc->beta * lp.kl;
    } else {
        // Per-element means scaled with the reconstruction (see vae.h).
        const double wve = rs * lc->lambda_ve, wreg = rs * lc->lambda_reg;
        lp.ve = ve_loss_forward(logvar, nz, lc->ve, lc->delta);
        ve_loss_backward(dlv, logvar, nz, lc->ve, lc->delta, (float)wve);
        lp.total += wve * lp.ve;
        if (lc->mag == VAE_MAG_ELEM) {
            lp.mag = mag_reg_elem_forward(mu, nz, lc->tau);
            mag_reg_elem_backward(dmu, mu, nz, lc->tau, (float)wreg);
        } else if (lc->mag == VAE_MAG_GLOBAL) {
            lp.mag = mag_reg_global_forward(mu, B, zc, zhw, lc->tau);
            mag_reg_global_backward(dmu, mu, B, zc, zhw, lc->tau, (float)wreg);
        }
        lp.total += wreg * lp.mag;
    }
    *parts = lp;
}
