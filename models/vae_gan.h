// vae_gan.h: the PatchGAN part of the tokenizer's training step (LDM's
// LPIPSWithDiscriminator without LPIPS), on top of vae_train_step:
//   generator:     grads = G_rec + d_weight * G_gan, G_gan the gradient of
//                  g_loss = -mean(D(xrec)) through decoder, reparameterisation
//                  and encoder; d_weight = gan_adaptive_weight(dRec/dW,
//                  dG/dW, disc_weight), W = decoder.conv_out.weight (the
//                  regulariser's gradient does not reach W, so dRec/dW is
//                  the L1 term's).
//   discriminator: hinge loss on D(x) and D(xrec) as two BatchNorm batches.
// Used by stages/train/image_vae.c; split out so the combination can be
// tested against a single backward pass (tests/models/test_patchgan.c).
// Ownership: vae_gan_create allocates every buffer; the vae and patchgan are
// borrowed and must outlive it.
#ifndef MODELS_VAE_GAN_H
#define MODELS_VAE_GAN_H

#include "models/patchgan.h"
#include "models/vae.h"

typedef struct {
    vae *m;                 // borrowed
    patchgan *d;            // borrowed
    int iw;                 // decoder.conv_out.weight index in m->pt
    int64_t nw, nlog, nx;   // its floats, logits per batch, image floats per batch (Bmax)
    float *xrec;            // (Bmax, C, R, R) reconstruction of the last step
    float *dxg, *gsave, *grec, *lreal, *dlog;
} vae_gan;

typedef struct {
    double g_loss, d_weight, d_loss, logits_real, logits_fake;
} vae_gan_parts;

// Returns 0, VEL_EINVAL (d's input size or batch does not fit m) or VEL_ENOMEM.
int vae_gan_create(vae_gan **out, vae *m, patchgan *d);
void vae_gan_destroy(vae_gan **g);

// One generator step: zeroes and fills m->pt.grads with G_rec + d_weight *
// G_gan (also vae_train_step's loss parts in lp) and keeps the reconstruction
// in g->xrec. D runs in training mode and updates its running statistics.
int vae_gan_generator_step(vae_gan *g, const float *x, const float *eps, int B,
                           const vae_loss_cfg *lc, double disc_weight, vae_loss_parts *lp,
                           vae_gan_parts *gp);
// One discriminator step on x and g->xrec (the last generator step's):
// zeroes and fills d->pt.grads; gp's d_loss and logit means set.
void vae_gan_discriminator_step(vae_gan *g, const float *x, int B, vae_gan_parts *gp);

// Multiply-add FLOPs (2 per MAC) one GAN step adds to the autoencoder's
// 3 forwards (vae_forward_flops): the decoder and encoder backward again
// (about 2 forwards) and the discriminator's 3 forwards, one input-only
// backward and two full ones (8 forwards), convolutions only.
double vae_gan_extra_flops(const vae *m, const patchgan *d, int B);

#endif
