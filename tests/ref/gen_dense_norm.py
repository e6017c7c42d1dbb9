#!/usr/bin/python3
"""gen_dense_norm.py OUTDIR: numpy references for nn/norm.h.

Group norm cases (B, C, HW, G), eps 1e-6 (the VAE's); layer norm cases (N, C),
eps 1e-5; RMS norm cases (N, C), eps 1e-6 (LightningDiT's). Writes float32
inputs (inp, weight, bias, R = upstream gradient, g0_* = initial gradient
contents) and float64 references: out, mean, rstd and the gradients of
sum(out * R) by central finite differences of the float64 forward.
"""
import sys
import numpy as np

GN_CASES = [(2, 6, 5, 3), (1, 4, 7, 1), (3, 8, 9, 8), (2, 64, 16, 32)]
LN_CASES = [(3, 5), (7, 33), (16, 64)]
RMS_CASES = [(3, 5), (7, 33), (4, 96)]


def fd_grad(f, args, k, R, h=1e-6):
    x = args[k]
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        fp = np.sum(f(*args)[0] * R)
        x[i] = old - h
        fm = np.sum(f(*args)[0] * R)
        x[i] = old
        g[i] = (fp - fm) / (2 * h)
    return g


def gn(x, w, b, G, eps=1e-6):
    B, C, HW = x.shape
    xg = x.reshape(B, G, -1)
    m = xg.mean(axis=2)
    rs = 1.0 / np.sqrt(xg.var(axis=2) + eps)
    y = ((xg - m[..., None]) * rs[..., None]).reshape(B, C, HW)
    return y * w[None, :, None] + b[None, :, None], m, rs


def ln(x, w, b, eps=1e-5):
    m = x.mean(axis=1)
    rs = 1.0 / np.sqrt(x.var(axis=1) + eps)
    return (x - m[:, None]) * rs[:, None] * w + b, m, rs


def rms(x, w, eps=1e-6):
    rs = 1.0 / np.sqrt((x * x).mean(axis=1) + eps)
    return x * rs[:, None] * w, rs


def f32(x):
    return x.astype(np.float32)


def save_case(out, prefix, ci, rng, shapes, fwd, names, stats):
    arrs = [f32(rng.standard_normal(s) * (1.5 if k == 0 else 1.0) + (0.3 if k == 0 else 0.0))
            for k, s in enumerate(shapes)]
    args = [a.astype(np.float64) for a in arrs]
    res = fwd(*args)
    R = f32(rng.standard_normal(res[0].shape))
    p = f"{out}/{prefix}c{ci}_"
    for name, v in zip(names, arrs):
        np.save(p + name + ".npy", v)
        np.save(p + "g0_" + name + ".npy", f32(rng.standard_normal(v.shape)))
    np.save(p + "R.npy", R)
    np.save(p + "out.npy", res[0])
    for name, v in zip(stats, res[1:]):
        np.save(p + name + ".npy", v)
    for k, name in enumerate(names):
        np.save(p + "d" + name + ".npy", fd_grad(fwd, args, k, R.astype(np.float64)))


def main(out):
    rng = np.random.default_rng(777)
    np.save(f"{out}/gn_cases.npy", np.array(GN_CASES, dtype=np.int64))
    np.save(f"{out}/ln_cases.npy", np.array(LN_CASES, dtype=np.int64))
    np.save(f"{out}/rms_cases.npy", np.array(RMS_CASES, dtype=np.int64))
    for ci, (B, C, HW, G) in enumerate(GN_CASES):
        save_case(out, "gn", ci, rng, [(B, C, HW), (C,), (C,)],
                  lambda x, w, b, G=G: gn(x, w, b, G), ["inp", "weight", "bias"], ["mean", "rstd"])
    for ci, (N, C) in enumerate(LN_CASES):
        save_case(out, "ln", ci, rng, [(N, C), (C,), (C,)], ln,
                  ["inp", "weight", "bias"], ["mean", "rstd"])
    for ci, (N, C) in enumerate(RMS_CASES):
        save_case(out, "rms", ci, rng, [(N, C), (C,)], rms, ["inp", "weight"], ["rstd"])


if __name__ == "__main__":
    main(sys.argv[1])
