#!/usr/bin/python3
"""gen_dense_act.py OUTDIR: numpy references for nn/activation.h.

Element-wise ops (relu, silu, gelu tanh-approx, leaky relu slope 0.2) on one
odd-length input (1001 values in [-8, 8], none within 1e-3 of the kink at 0
so central differences with h = 1e-6 never straddle it), plus a row of
extreme values for the forward only. Softmax over the last dim for several
(N, C), including large logits to exercise the max subtraction.
Outputs in float64; gradients of sum(out * R) by central finite differences
of the float64 forward (element-wise ops: one vectorised difference, exact
because each output depends on one input only).
"""
import sys
import numpy as np

SOFTMAX_CASES = [(3, 7, 1.0), (5, 1, 1.0), (4, 100, 20.0), (2, 257, 3.0)]
K = np.sqrt(2.0 / np.pi)

ACTS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "silu": lambda x: x / (1.0 + np.exp(-x)),
    "gelu": lambda x: 0.5 * x * (1.0 + np.tanh(K * (x + 0.044715 * x ** 3))),
    "leaky": lambda x: np.where(x > 0, x, 0.2 * x),
}


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def f32(x):
    return x.astype(np.float32)


def main(out):
    rng = np.random.default_rng(99)
    x = rng.uniform(-8, 8, 1001)
    x = np.where(np.abs(x) < 1e-3, 1e-2, x)
    x = f32(x)
    R = f32(rng.standard_normal(x.shape))
    g0 = f32(rng.standard_normal(x.shape))
    ext = f32(np.array([-100.0, -30.0, -1e-20, 0.0, 1e-20, 30.0, 100.0]))
    np.save(f"{out}/x.npy", x)
    np.save(f"{out}/R.npy", R)
    np.save(f"{out}/g0.npy", g0)
    np.save(f"{out}/ext.npy", ext)
    x64, h = x.astype(np.float64), 1e-6
    for name, f in ACTS.items():
        np.save(f"{out}/{name}_out.npy", f(x64))
        np.save(f"{out}/{name}_ext.npy", f(ext.astype(np.float64)))
        np.save(f"{out}/{name}_dinp.npy", (f(x64 + h) - f(x64 - h)) / (2 * h) * R)
    np.save(f"{out}/sm_cases.npy", np.array([c[:2] for c in SOFTMAX_CASES], dtype=np.int64))
    for ci, (N, C, scale) in enumerate(SOFTMAX_CASES):
        xs = f32(rng.standard_normal((N, C)) * scale)
        Rs = f32(rng.standard_normal((N, C)))
        p = f"{out}/smc{ci}_"
        np.save(p + "inp.npy", xs)
        np.save(p + "R.npy", Rs)
        np.save(p + "g0_inp.npy", f32(rng.standard_normal((N, C))))
        a = xs.astype(np.float64)
        np.save(p + "out.npy", softmax(a))
        g = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            old = a[i]
            a[i] = old + h
            fp = np.sum(softmax(a) * Rs)
            a[i] = old - h
            fm = np.sum(softmax(a) * Rs)
            a[i] = old
            g[i] = (fp - fm) / (2 * h)
        np.save(p + "dinp.npy", g)


if __name__ == "__main__":
    main(sys.argv[1])
