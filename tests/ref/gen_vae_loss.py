#!/usr/bin/env python3
"""gen_vae_loss.py OUTDIR: LDM's autoencoder loss on a fixed batch, in numpy.

A transcription of latent-diffusion ldm/modules/losses/contperceptual.py
(LPIPSWithDiscriminator.forward, optimizer_idx 0, before the discriminator
starts: disc_factor 0) and ldm/modules/distributions/distributions.py
(DiagonalGaussianDistribution.kl), with perceptual_weight 0, weights None and
the learned logvar at its init 0 (LDM's AutoencoderKL does not put it in an
optimizer):
    rec_loss = |x - xrec|
    nll_loss = rec_loss / exp(logvar) + logvar           (logvar = 0)
    nll_loss = sum(nll_loss) / B
    kl = 0.5 * sum_{c,h,w}(mu^2 + var - 1 - logvar_z),   logvar_z clamped to [-30, 20]
    kl_loss = sum(kl) / B
    loss = nll_loss + kl_weight * kl_loss
Saves the batch, the loss and its gradients with respect to xrec, mu and
logvar_z (analytic; L1's subgradient sign(xrec - x), no ties in this batch).
float64, numpy only, seeded.
"""
import os
import sys

import numpy as np

B, C, H, W = 3, 3, 8, 8        # images
ZC, ZH, ZW = 4, 2, 2            # latents
KL_WEIGHT = 1e-6                # LDM/VA-VAE


def main(out):
    rng = np.random.RandomState(14)
    x = rng.uniform(-1, 1, (B, C, H, W))
    xrec = x + rng.uniform(0.05, 0.5, x.shape) * rng.choice([-1.0, 1.0], x.shape)
    mu = rng.randn(B, ZC, ZH, ZW) * 2.0
    logvar = rng.uniform(-6, 1, (B, ZC, ZH, ZW))
    logvar.flat[0] = -40.0      # outside the clamp: no gradient
    # The C side reads float32: compute on exactly those values.
    x, xrec, mu, logvar = (a.astype(np.float32).astype(np.float64) for a in (x, xrec, mu, logvar))
    lv = np.clip(logvar, -30.0, 20.0)
    var = np.exp(lv)

    rec_loss = np.abs(x - xrec)
    nll_loss = np.sum(rec_loss / np.exp(0.0) + 0.0) / B
    kl = 0.5 * np.sum(mu ** 2 + var - 1.0 - lv, axis=(1, 2, 3))
    kl_loss = np.sum(kl) / B
    loss = nll_loss + KL_WEIGHT * kl_loss

    dxrec = np.sign(xrec - x) / B
    dmu = KL_WEIGHT * mu / B
    inside = (logvar >= -30.0) & (logvar <= 20.0)
    dlv = KL_WEIGHT * 0.5 * (var - 1.0) / B * inside

    def save(name, a):
        np.save(os.path.join(out, name + ".npy"), np.asarray(a, dtype=np.float64))
    for k, v in dict(x=x, xrec=xrec, mu=mu, logvar=logvar, loss=[loss], nll=[nll_loss],
                     kl=[kl_loss], dxrec=dxrec, dmu=dmu, dlogvar=dlv,
                     kl_weight=[KL_WEIGHT]).items():
        save(k, v)


if __name__ == "__main__":
    main(sys.argv[1])
