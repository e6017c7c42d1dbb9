// vae_gan.c: the GAN part of the tokenizer's training step (see vae_gan.h).
#include "models/vae_gan.h"

#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "nn/loss.h"

void vae_gan_destroy(vae_gan **pg) {
    if (!pg || !*pg) return;
    vae_gan *g = *pg;
    free(g->xrec); free(g->dxg); free(g->gsave); free(g->grec); free(g->lreal); free(g->dlog);
    free(g);
    *pg = NULL;
}

int vae_gan_create(vae_gan **out, vae *m, patchgan *d) {
    *out = NULL;
    const vae_config *c = &m->cfg;
    if (!m->train || d->cfg.in_ch != c->out_ch || d->H != c->resolution || d->W != c->resolution ||
        d->Bmax < m->Bmax)
        return VEL_EINVAL;
    vae_gan *g = calloc(1, sizeof *g);
    if (!g) return VEL_ENOMEM;
    g->m = m;
    g->d = d;
    g->iw = param_find(&m->pt, "decoder.conv_out.weight");
    if (g->iw < 0) { free(g); return VEL_EINVAL; }
    g->nw = m->pt.info[g->iw].numel;
    g->nlog = (int64_t)m->Bmax * patchgan_out_per(d);
    g->nx = (int64_t)m->Bmax * c->out_ch * c->resolution * c->resolution;
    g->xrec = malloc(sizeof(float) * (size_t)g->nx);
    g->dxg = malloc(sizeof(float) * (size_t)g->nx);
    g->gsave = malloc(sizeof(float) * (size_t)m->pt.total);
    g->grec = malloc(sizeof(float) * (size_t)g->nw);
    g->lreal = malloc(sizeof(float) * (size_t)g->nlog);
    g->dlog = malloc(sizeof(float) * (size_t)g->nlog);
    if (!g->xrec || !g->dxg || !g->gsave || !g->grec || !g->lreal || !g->dlog) {
        vae_gan_destroy(&g);
        return VEL_ENOMEM;
    }
    *out = g;
    return 0;
}

int vae_gan_generator_step(vae_gan *g, const float *x, const float *eps, int B,
                           const vae_loss_cfg *lc, double disc_weight, vae_loss_parts *lp,
                           vae_gan_parts *gp) {
    vae *m = g->m;
    patchgan *d = g->d;
    if (B < 1 || B > m->Bmax) return VEL_EINVAL;
    const vae_config *c = &m->cfg;
    int64_t nz = (int64_t)B * c->z_channels * m->zside * m->zside;
    int64_t nx = (int64_t)B * c->out_ch * c->resolution * c->resolution;
    int64_t nlog = (int64_t)B * patchgan_out_per(d);
    param_zero_grads(&m->pt);
    int rc = vae_train_step(m, x, eps, B, lc, lp, g->xrec);
    if (rc) return rc;
    // G_rec saved, G_gan computed alone, then combined.
    memcpy(g->grec, param_grad(&m->pt, g->iw), sizeof(float) * (size_t)g->nw);
    memcpy(g->gsave, m->pt.grads, sizeof(float) * (size_t)m->pt.total);
    param_zero_grads(&m->pt);
    const float *lf = patchgan_forward(d, g->xrec, B, 1);
    memset(g->dlog, 0, sizeof(float) * (size_t)nlog);
    gp->g_loss = gan_g_loss(g->dlog, lf, nlog, 1.0f);
    memset(g->dxg, 0, sizeof(float) * (size_t)nx);
    patchgan_backward(d, g->dxg, g->dlog, B, 0);
    memset(m->dz, 0, sizeof(float) * (size_t)nz);
    vae_decoder_backward(m, m->dz, g->dxg, B);
    gp->d_weight = gan_adaptive_weight(g->grec, param_grad(&m->pt, g->iw), g->nw, disc_weight);
    memset(m->dmu, 0, sizeof(float) * (size_t)nz);
    memset(m->dlv, 0, sizeof(float) * (size_t)nz);
    reparam_backward(m->dmu, m->dlv, m->dz, m->logvar, eps, nz);
    vae_encoder_backward(m, m->dmu, m->dlv, B);
    float dwf = (float)gp->d_weight;
    for (int64_t i = 0; i < m->pt.total; i++) m->pt.grads[i] = g->gsave[i] + dwf * m->pt.grads[i];
    return 0;
}

void vae_gan_discriminator_step(vae_gan *g, const float *x, int B, vae_gan_parts *gp) {
    patchgan *d = g->d;
    int64_t nlog = (int64_t)B * patchgan_out_per(d);
    param_zero_grads(&d->pt);
    const float *lo = patchgan_forward(d, x, B, 1);
    memcpy(g->lreal, lo, sizeof(float) * (size_t)nlog);
    memset(g->dlog, 0, sizeof(float) * (size_t)nlog);
    double d_loss = hinge_d_loss_part(g->dlog, g->lreal, nlog, 1);
    patchgan_backward(d, NULL, g->dlog, B, 1);
    lo = patchgan_forward(d, g->xrec, B, 1);
    memset(g->dlog, 0, sizeof(float) * (size_t)nlog);
    d_loss += hinge_d_loss_part(g->dlog, lo, nlog, 0);
    patchgan_backward(d, NULL, g->dlog, B, 1);
    double mr = 0, mf = 0;
    for (int64_t i = 0; i < nlog; i++) { mr += g->lreal[i]; mf += lo[i]; }
    gp->d_loss = d_loss;
    gp->logits_real = mr / (double)nlog;
    gp->logits_fake = mf / (double)nlog;
}

double vae_gan_extra_flops(const vae *m, const patchgan *d, int B) {
    double disc = 0;
    for (int l = 0; l < d->nl; l++) {
        const conv2d_cfg *c = &d->L[l].conv;
        disc += 2.0 * B * (double)c->OC * c->C * c->KH * c->KW * conv2d_out_h(c) * conv2d_out_w(c);
    }
    return 2.0 * vae_forward_flops(m, B) + 8.0 * disc;
}
