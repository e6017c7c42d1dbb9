#!/usr/bin/env python3
"""gen_vae.py OUTDIR: numpy references for the VAE blocks (models/vae_blocks.c).

Written from the CompVis latent-diffusion module definitions (ResnetBlock,
AttnBlock, Downsample, Upsample; GroupNorm(32, eps 1e-6), swish), in float64.
Each case saves its input, every parameter under its PyTorch name and the
output. numpy only, seeded.
"""
import os
import sys

import numpy as np

rng = np.random.RandomState(42)
OUT = None
params = {}


def save(name, a):
    np.save(os.path.join(OUT, name + ".npy"), np.asarray(a, dtype=np.float32))


def conv2d(x, w, b, stride=1, pad=(0, 0, 0, 0)):
    # x (B,C,H,W), w (OC,C,KH,KW), pad (top, bottom, left, right)
    x = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[1]), (pad[2], pad[3])))
    B, C, H, W = x.shape
    OC, _, KH, KW = w.shape
    OH, OW = (H - KH) // stride + 1, (W - KW) // stride + 1
    out = np.zeros((B, OC, OH, OW))
    for i in range(KH):
        for j in range(KW):
            patch = x[:, :, i:i + stride * OH:stride, j:j + stride * OW:stride]
            out += np.einsum("bchw,oc->bohw", patch, w[:, :, i, j])
    return out + b[None, :, None, None]


def groupnorm(x, w, b, G=32, eps=1e-6):
    B, C, H, W = x.shape
    g = x.reshape(B, G, -1)
    m = g.mean(-1, keepdims=True)
    v = g.var(-1, keepdims=True)
    y = ((g - m) / np.sqrt(v + eps)).reshape(B, C, H, W)
    return y * w[None, :, None, None] + b[None, :, None, None]


def swish(x):
    return x / (1.0 + np.exp(-x))


def p_conv(name, oc, c, k):
    w = rng.randn(oc, c, k, k) / np.sqrt(c * k * k)
    b = 0.1 * rng.randn(oc)
    params[name + ".weight"], params[name + ".bias"] = w, b
    return w, b


def p_norm(name, c):
    w = 1.0 + 0.2 * rng.randn(c)
    b = 0.1 * rng.randn(c)
    params[name + ".weight"], params[name + ".bias"] = w, b
    return w, b


def resnet_block(pre, x, oc):
    c = x.shape[1]
    h = groupnorm(x, *p_norm(pre + ".norm1", c))
    h = conv2d(swish(h), *p_conv(pre + ".conv1", oc, c, 3), pad=(1, 1, 1, 1))
    h = groupnorm(h, *p_norm(pre + ".norm2", oc))
    h = conv2d(swish(h), *p_conv(pre + ".conv2", oc, oc, 3), pad=(1, 1, 1, 1))
    if c != oc:
        x = conv2d(x, *p_conv(pre + ".nin_shortcut", oc, c, 1))
    return x + h


def attn_block(pre, x):
    B, C, H, W = x.shape
    h = groupnorm(x, *p_norm(pre + ".norm", C))
    q = conv2d(h, *p_conv(pre + ".q", C, C, 1)).reshape(B, C, H * W)
    k = conv2d(h, *p_conv(pre + ".k", C, C, 1)).reshape(B, C, H * W)
    v = conv2d(h, *p_conv(pre + ".v", C, C, 1)).reshape(B, C, H * W)
    w_ = np.einsum("bci,bcj->bij", q, k) * C ** -0.5
    w_ = np.exp(w_ - w_.max(-1, keepdims=True))
    w_ /= w_.sum(-1, keepdims=True)
    o = np.einsum("bij,bcj->bci", w_, v).reshape(B, C, H, W)
    return x + conv2d(o, *p_conv(pre + ".proj_out", C, C, 1))


def downsample(pre, x):
    c = x.shape[1]
    return conv2d(x, *p_conv(pre + ".conv", c, c, 3), stride=2, pad=(0, 1, 0, 1))


def upsample(pre, x):
    c = x.shape[1]
    x = x.repeat(2, axis=2).repeat(2, axis=3)
    return conv2d(x, *p_conv(pre + ".conv", c, c, 3), pad=(1, 1, 1, 1))


def case(tag, x, fn):
    params.clear()
    y = fn(x)
    save(tag + "_in", x)
    save(tag + "_out", y)
    for k, v in params.items():
        save(tag + "_" + k, v)


def main():
    global OUT
    OUT = sys.argv[1]
    os.makedirs(OUT, exist_ok=True)
    case("res", rng.randn(2, 32, 5, 4), lambda x: resnet_block("blk", x, 64))
    case("res_same", rng.randn(2, 64, 4, 4), lambda x: resnet_block("blk", x, 64))
    case("attn", rng.randn(2, 64, 4, 3), lambda x: attn_block("attn", x))
    case("down", rng.randn(2, 32, 7, 6), lambda x: downsample("ds", x))
    case("up", rng.randn(2, 32, 3, 4), lambda x: upsample("us", x))


if __name__ == "__main__":
    main()
