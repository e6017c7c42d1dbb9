#!/usr/bin/python3
"""gen_dense_conv.py OUTDIR: numpy references for nn/conv.h.

Each case row is (B, C, H, W, OC, KH, KW, stride, pad_top, pad_bottom,
pad_left, pad_right). Writes float32 inputs (inp, weight, bias, R = upstream
gradient, g0_* = initial gradient contents) and float64 references: out =
conv2d(inp) + bias computed tap by tap on the zero-padded input, and the
gradients of sum(out * R) w.r.t. inp, weight, bias by central finite
differences of that float64 forward.
"""
import sys
import numpy as np

CASES = [
    (1, 3, 5, 4, 4, 1, 1, 1, 0, 0, 0, 0),    # 1x1, single image (direct GEMM path)
    (2, 3, 5, 4, 4, 1, 1, 1, 0, 0, 0, 0),    # 1x1, grouped images
    (1, 3, 7, 6, 5, 3, 3, 1, 1, 1, 1, 1),    # 3x3 same, single image
    (2, 4, 8, 8, 3, 3, 3, 2, 0, 1, 0, 1),    # VAE downsample: pad right/bottom 1, s2
    (1, 2, 7, 5, 3, 3, 3, 2, 1, 1, 1, 1),    # 3x3 s2 odd sizes
    (2, 3, 8, 8, 4, 4, 4, 2, 1, 1, 1, 1),    # PatchGAN 4x4 s2
    (1, 3, 6, 7, 2, 4, 4, 1, 1, 2, 2, 1),    # 4x4 s1 asymmetric
    (2, 3, 4, 6, 5, 2, 2, 2, 0, 0, 0, 0),    # patch embed p=2 (kernel = stride)
    (35, 2, 8, 8, 3, 3, 3, 1, 1, 1, 1, 1),   # 35 images: two GEMM groups, short tail
    (2, 9, 7, 10, 15, 3, 3, 1, 1, 1, 1, 1),  # direct 3x3: 8 + 4 + 2 + 1 output-channel tiles
    (1, 4, 5, 6, 3, 3, 3, 1, 2, 0, 0, 2),    # direct 3x3, pads 2 and 0 (asymmetric: output shifted)
    # direct forward beyond 3x3 stride 1 (conv_direct.c; backward by im2col):
    (2, 3, 9, 11, 5, 5, 5, 1, 2, 2, 2, 2),   # 5x5 same (Inception A)
    (1, 4, 7, 9, 15, 1, 7, 1, 0, 0, 3, 3),   # 1x7 (Inception C), 8+4+2+1 channel tiles
    (2, 3, 9, 5, 4, 7, 1, 1, 3, 3, 0, 0),    # 7x1
    (1, 3, 6, 5, 3, 1, 3, 1, 0, 0, 1, 1),    # 1x3 (Inception E)
    (1, 2, 23, 21, 9, 3, 3, 2, 0, 0, 0, 0),  # 3x3 s2 no pad, odd sizes (Inception stem/B/D), 3-vector tiles
    (2, 3, 20, 20, 8, 3, 3, 2, 0, 1, 0, 1),  # VAE downsample at 20x20: 3-vector tiles of stride 2
    (1, 2, 11, 9, 3, 7, 7, 2, 3, 2, 1, 3),   # 7x7 s2 (largest direct kernel), asymmetric pads
    (1, 2, 5, 5, 2, 3, 3, 1, 3, 3, 3, 3),    # pads larger than 2: forward direct, backward im2col
    # Winograd F(2x2, 3x3) (conv_winograd.c: 3x3 s1, >= 16 channels in and out, 48 below 16
    # output columns), forward and data gradient; test_conv runs every case with the path on
    # and forced off
    # (a 1x1 image needs 48 channels: test_conv checks it against float64 sums instead)
    (1, 16, 5, 16, 17, 3, 3, 1, 1, 1, 1, 1),  # odd rows, 8+8+1 blocks, 2 tile rows a vector
    (1, 16, 3, 16, 18, 3, 3, 1, 2, 0, 0, 2),  # asymmetric pads 2/0: shifted tiles, odd row count
    (1, 16, 2, 33, 16, 3, 3, 1, 1, 1, 1, 1),  # 17 tiles per row: a 16-tile and a 1-tile part
]


def conv(x, w, b, s, pt, pb, pl, pr):
    B, C, H, W = x.shape
    OC, _, KH, KW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    OH = (H + pt + pb - KH) // s + 1
    OW = (W + pl + pr - KW) // s + 1
    out = np.zeros((B, OC, OH, OW)) + b[None, :, None, None]
    for kh in range(KH):
        for kw in range(KW):
            patch = xp[:, :, kh:kh + s * (OH - 1) + 1:s, kw:kw + s * (OW - 1) + 1:s]
            out += np.einsum("bchw,oc->bohw", patch, w[:, :, kh, kw])
    return out


def fd_grad(f, args, k, R, h=1e-6):
    x = args[k]
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        fp = np.sum(f(*args) * R)
        x[i] = old - h
        fm = np.sum(f(*args) * R)
        x[i] = old
        g[i] = (fp - fm) / (2 * h)
    return g


def f32(x):
    return x.astype(np.float32)


def main(out):
    rng = np.random.default_rng(4321)
    np.save(f"{out}/cases.npy", np.array(CASES, dtype=np.int64))
    for ci, (B, C, H, W, OC, KH, KW, s, pt, pb, pl, pr) in enumerate(CASES):
        x = f32(rng.standard_normal((B, C, H, W)))
        w = f32(rng.standard_normal((OC, C, KH, KW)) / np.sqrt(C * KH * KW))
        b = f32(rng.standard_normal(OC))
        fwd = lambda xx, ww, bb: conv(xx, ww, bb, s, pt, pb, pl, pr)
        args = [x.astype(np.float64), w.astype(np.float64), b.astype(np.float64)]
        y = fwd(*args)
        R = f32(rng.standard_normal(y.shape))
        p = f"{out}/c{ci}_"
        for name, v in (("inp", x), ("weight", w), ("bias", b), ("R", R)):
            np.save(p + name + ".npy", v)
            np.save(p + "g0_" + name + ".npy", f32(rng.standard_normal(v.shape)))
        np.save(p + "out.npy", y)
        for k, name in enumerate(("inp", "weight", "bias")):
            np.save(p + "d" + name + ".npy", fd_grad(fwd, args, k, R.astype(np.float64)))


if __name__ == "__main__":
    main(sys.argv[1])
