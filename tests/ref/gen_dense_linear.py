#!/usr/bin/python3
"""gen_dense_linear.py OUTDIR: numpy references for nn/linear.h.

For each case (N, C, OC) writes float32 inputs (inp, weight, bias, R = the
random upstream gradient, g0 = initial gradient contents to test that backward
accumulates) and float64 references: out = inp @ W^T + b, and d/d(inp, W, b)
of sum(out * R) by central finite differences of the float64 forward (not the
analytic formula, so the C backward is checked independently).
"""
import sys
import numpy as np

CASES = [(1, 1, 1), (3, 5, 7), (17, 33, 9), (64, 48, 80)]


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
    rng = np.random.default_rng(1234)
    np.save(f"{out}/cases.npy", np.array(CASES, dtype=np.int64))
    for ci, (N, C, OC) in enumerate(CASES):
        inp = f32(rng.standard_normal((N, C)))
        w = f32(rng.standard_normal((OC, C)) / np.sqrt(C))
        b = f32(rng.standard_normal(OC))
        R = f32(rng.standard_normal((N, OC)))
        p = f"{out}/c{ci}_"
        for name, v in (("inp", inp), ("weight", w), ("bias", b), ("R", R)):
            np.save(p + name + ".npy", v)
        np.save(p + "g0_inp.npy", f32(rng.standard_normal((N, C))))
        np.save(p + "g0_weight.npy", f32(rng.standard_normal((OC, C))))
        np.save(p + "g0_bias.npy", f32(rng.standard_normal(OC)))
        args = [inp.astype(np.float64), w.astype(np.float64), b.astype(np.float64)]
        fwd = lambda x, W, bb: x @ W.T + bb
        np.save(p + "out.npy", fwd(*args))
        R64 = R.astype(np.float64)
        for k, name in enumerate(("inp", "weight", "bias")):
            np.save(p + "d" + name + ".npy", fd_grad(fwd, args, k, R64))


if __name__ == "__main__":
    main(sys.argv[1])
