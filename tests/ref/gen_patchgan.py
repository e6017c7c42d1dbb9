#!/usr/bin/env python3
"""gen_patchgan.py OUTDIR: numpy references for batch norm (nn/batchnorm.h) and
the PatchGAN discriminator (models/patchgan.h).

Written from torch.nn.BatchNorm2d (training mode: batch statistics, biased
variance for normalising, unbiased for the running variance, momentum 0.1,
eps 1e-5) and taming-transformers' NLayerDiscriminator (conv4x4, LeakyReLU
0.2), in float64. numpy only, seeded.
"""
import os
import sys

import numpy as np

rng = np.random.RandomState(7)
OUT = None


def save(name, a):
    np.save(os.path.join(OUT, name + ".npy"), np.asarray(a, dtype=np.float32))


def conv2d(x, w, b, stride, pad):
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    B, C, H, W = x.shape
    OC, _, KH, KW = w.shape
    OH, OW = (H - KH) // stride + 1, (W - KW) // stride + 1
    out = np.zeros((B, OC, OH, OW))
    for i in range(KH):
        for j in range(KW):
            patch = x[:, :, i:i + stride * OH:stride, j:j + stride * OW:stride]
            out += np.einsum("bchw,oc->bohw", patch, w[:, :, i, j])
    if b is not None:
        out += b[None, :, None, None]
    return out


def batchnorm(x, w, b, rm, rv, eps=1e-5, momentum=0.1):
    n = x.shape[0] * x.shape[2] * x.shape[3]
    m = x.mean(axis=(0, 2, 3))
    v = x.var(axis=(0, 2, 3))
    out = (x - m[None, :, None, None]) / np.sqrt(v[None, :, None, None] + eps)
    out = out * w[None, :, None, None] + b[None, :, None, None]
    rm = (1 - momentum) * rm + momentum * m
    rv = (1 - momentum) * rv + momentum * v * n / (n - 1)
    return out, rm, rv


def lrelu(x):
    return np.where(x > 0, x, 0.2 * x)


def r32(a):
    # Round to float32 (what the C side stores), keep float64 arithmetic.
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def main():
    global OUT
    OUT = sys.argv[1]
    os.makedirs(OUT, exist_ok=True)
    # Batch norm: B 3, C 5, 4x6, inputs with channel-dependent mean and scale.
    x = r32(rng.randn(3, 5, 4, 6) * np.array([0.5, 1, 2, 3, 0.1])[None, :, None, None]
            + np.array([0, 1, -2, 5, 0.3])[None, :, None, None])
    w, b = r32(1 + 0.3 * rng.randn(5)), r32(0.2 * rng.randn(5))
    rm, rv = r32(0.1 * rng.randn(5)), r32(1 + 0.2 * rng.rand(5))
    out, rm2, rv2 = batchnorm(x, w, b, rm, rv)
    for k, v in dict(bn_x=x, bn_w=w, bn_b=b, bn_rm=rm, bn_rv=rv, bn_out=out, bn_rm_new=rm2,
                     bn_rv_new=rv2).items():
        save(k, v)
    # Eval mode with the updated running stats.
    save("bn_out_eval", (x - rm2[None, :, None, None]) / np.sqrt(rv2[None, :, None, None] + 1e-5)
         * w[None, :, None, None] + b[None, :, None, None])

    # Discriminator: in_ch 2, ndf 4, n_layers 2, input (3, 2, 16, 16):
    # main.0 conv 2->4 s2 + lrelu; main.2 conv 4->8 s2 + main.3 BN + lrelu;
    # main.5 conv 8->16 s1 + main.6 BN + lrelu; main.8 conv 16->1 s1.
    x = r32(rng.uniform(-1, 1, (3, 2, 16, 16)))
    p = {}
    p["main.0.weight"] = r32(0.3 * rng.randn(4, 2, 4, 4))
    p["main.0.bias"] = r32(0.1 * rng.randn(4))
    p["main.2.weight"] = r32(0.2 * rng.randn(8, 4, 4, 4))
    p["main.5.weight"] = r32(0.15 * rng.randn(16, 8, 4, 4))
    p["main.8.weight"] = r32(0.1 * rng.randn(1, 16, 4, 4))
    p["main.8.bias"] = r32(0.1 * rng.randn(1))
    for bn, c in (("main.3", 8), ("main.6", 16)):
        p[bn + ".weight"] = r32(1 + 0.2 * rng.randn(c))
        p[bn + ".bias"] = r32(0.1 * rng.randn(c))
        p[bn + ".running_mean"] = r32(0.1 * rng.randn(c))
        p[bn + ".running_var"] = r32(1 + 0.1 * rng.rand(c))
    h = lrelu(conv2d(x, p["main.0.weight"], p["main.0.bias"], 2, 1))
    new = {}
    for conv, bn, s in (("main.2", "main.3", 2), ("main.5", "main.6", 1)):
        h = conv2d(h, p[conv + ".weight"], None, s, 1)
        h, new[bn + ".running_mean"], new[bn + ".running_var"] = batchnorm(
            h, p[bn + ".weight"], p[bn + ".bias"], p[bn + ".running_mean"], p[bn + ".running_var"])
        h = lrelu(h)
    logits = conv2d(h, p["main.8.weight"], p["main.8.bias"], 1, 1)
    save("d_x", x)
    save("d_logits", logits)
    for k, v in p.items():
        save("d_" + k, v)
    for k, v in new.items():
        save("d_new_" + k, v)


if __name__ == "__main__":
    main()
