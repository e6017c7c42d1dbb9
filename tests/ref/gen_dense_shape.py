#!/usr/bin/python3
"""gen_dense_shape.py OUTDIR: numpy references for nn/shape_ops.h.

Upsample (nearest x2), zero padding, channel concat / split, and patchify /
unpatchify in both feature orders. The orders are written the way the
reference code states them: PATCH_CPQ is the im2col order of a Conv2d with
kernel = stride = p (x.reshape(B,C,h,p,w,p).transpose(0,2,4,1,3,5)), PATCH_PQC
is DiT's unpatchify einsum('nhwpqc->nchpwq') applied to tokens reshaped
(N, h, w, p, p, C). Forward outputs are exact copies; gradients of
sum(out * R) come from central finite differences of the float64 forward.
"""
import sys
import numpy as np

B, C, H, W = 2, 3, 4, 6
PADS = [(0, 1, 0, 1), (1, 2, 3, 0)]
PATCH = [1, 2]


def fd_grad(f, x, R, h=1e-3):
    # Every op here is linear, so the central difference is exact up to
    # rounding for any step; h = 1e-3 keeps that rounding ~1e-13.
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        fp = np.sum(f(x) * R)
        x[i] = old - h
        fm = np.sum(f(x) * R)
        x[i] = old
        g[i] = (fp - fm) / (2 * h)
    return g


def up2(x):
    return x.repeat(2, axis=2).repeat(2, axis=3)


def patchify_cpq(x, p):
    b, c, hh, ww = x.shape
    t = x.reshape(b, c, hh // p, p, ww // p, p).transpose(0, 2, 4, 1, 3, 5)
    return t.reshape(b, (hh // p) * (ww // p), c * p * p)


def unpatchify_pqc(tok, p, c, hh, ww):
    n = tok.shape[0]
    h, w = hh // p, ww // p
    x = tok.reshape(n, h, w, p, p, c)
    x = np.einsum("nhwpqc->nchpwq", x)
    return x.reshape(n, c, h * p, w * p)


def patchify_pqc(x, p):
    b, c, hh, ww = x.shape
    t = x.reshape(b, c, hh // p, p, ww // p, p).transpose(0, 2, 4, 3, 5, 1)
    return t.reshape(b, (hh // p) * (ww // p), p * p * c)


def f32(x):
    return x.astype(np.float32)


def save(out, name, v):
    np.save(f"{out}/{name}.npy", v)


def main(out):
    rng = np.random.default_rng(555)
    x = f32(rng.standard_normal((B, C, H, W)))
    x64 = x.astype(np.float64)
    save(out, "x", x)
    save(out, "g0_x", f32(rng.standard_normal(x.shape)))

    R = f32(rng.standard_normal((B, C, 2 * H, 2 * W)))
    save(out, "up_R", R)
    save(out, "up_out", up2(x64))
    save(out, "up_dinp", fd_grad(up2, x64.copy(), R.astype(np.float64)))

    for k, (pt, pb, pl, pr) in enumerate(PADS):
        f = lambda a: np.pad(a, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
        R = f32(rng.standard_normal(f(x64).shape))
        save(out, f"pad{k}_R", R)
        save(out, f"pad{k}_out", f(x64))
        save(out, f"pad{k}_dinp", fd_grad(f, x64.copy(), R.astype(np.float64)))

    # concat x (C=3) with y (C=2); split is its inverse
    y = f32(rng.standard_normal((B, 2, H, W)))
    save(out, "y", y)
    save(out, "cat_out", np.concatenate([x64, y.astype(np.float64)], axis=1))

    for p in PATCH:
        R = f32(rng.standard_normal((B, (H // p) * (W // p), p * p * C)))
        save(out, f"p{p}_R", R)
        for order, f in (("cpq", patchify_cpq), ("pqc", patchify_pqc)):
            save(out, f"p{p}_{order}_tok", f(x64, p))
            save(out, f"p{p}_{order}_dinp",
                 fd_grad(lambda a: f(a, p), x64.copy(), R.astype(np.float64)))
        # DiT's own unpatchify must invert our PQC patchify
        assert np.array_equal(unpatchify_pqc(patchify_pqc(x64, p), p, C, H, W), x64)


if __name__ == "__main__":
    main(sys.argv[1])
