#!/usr/bin/env python3
"""numpy references for nn/optim, nn/muon, nn/ema, nn/schedule.

Usage: gen_optim.py OUTDIR   (Debian /usr/bin/python3 with numpy).

A small parameter table (same names, shapes and order as test_optim.c):
  l1.weight (6,4)  Muon, rows > cols (transposed path)
  l1.bias   (6,)   no_decay
  l2.weight (3,6)  Muon, rows < cols
  conv.weight (4,2,3,3)  Muon as (4,18)
  norm.weight (4,) no_decay
Arrays are the parameters concatenated (flattened, unpadded) in that order.
Float32 arithmetic mirrors torch's CPU kernels: hyperparameters are Python
floats rounded to float32 where torch rounds them, lerp is torch's two-sided
formula, addcmul is (value*t1)*t2 and addcdiv (value*t1)/t2.
"""
import os
import sys

import numpy as np

F = np.float32
SHAPES = [("l1.weight", (6, 4), 0), ("l1.bias", (6,), 1), ("l2.weight", (3, 6), 0),
          ("conv.weight", (4, 2, 3, 3), 0), ("norm.weight", (4,), 1)]
K = 4
LRS = [1e-2, 2e-2, 5e-3, 1e-2]


def split(flat):
    out, at = [], 0
    for _, shp, _ in SHAPES:
        n = int(np.prod(shp))
        out.append(flat[at:at + n].reshape(shp))
        at += n
    return out


def join(parts):
    return np.concatenate([p.ravel() for p in parts]).astype(F)


def lerp(a, b, w):
    w = F(w)
    if w < F(0.5):
        return (a + w * (b - a)).astype(F)
    return (b - (b - a) * (F(1) - w)).astype(F)


def adam_run(p0, grads, beta1, beta2, eps, wd, decoupled):
    ps = split(p0.copy())
    m = [np.zeros_like(p) for p in ps]
    v = [np.zeros_like(p) for p in ps]
    out = []
    for t in range(1, K + 1):
        lr = LRS[t - 1]
        gs = split(grads[t - 1])
        for i, (_, _, nodecay) in enumerate(SHAPES):
            p, g = ps[i], gs[i]
            w = 0.0 if nodecay else wd
            if w != 0:
                if decoupled:
                    p = (p * F(1 - lr * w)).astype(F)
                else:
                    g = (g + F(w) * p).astype(F)
            m[i] = lerp(m[i], g, 1 - beta1)
            v[i] = (v[i] * F(beta2) + F(1 - beta2) * g * g).astype(F)
            bc1 = 1 - beta1 ** t
            bc2 = 1 - beta2 ** t
            denom = (np.sqrt(v[i]) / F(np.sqrt(bc2)) + F(eps)).astype(F)
            ps[i] = (p + F(-(lr / bc1)) * m[i] / denom).astype(F)
        out.append(join(ps))
    return np.stack(out)


def ns5(g, steps=5, dtype=F):
    a, b, c = dtype(3.4445), dtype(-4.7750), dtype(2.0315)
    x = g.astype(dtype)
    tr = x.shape[0] > x.shape[1]
    if tr:
        x = x.T
    x = (x * dtype(1.0 / (np.sqrt(np.sum(g.astype(np.float64) ** 2)) + 1e-7))).astype(dtype)
    for _ in range(steps):
        A = x @ x.T
        B = b * A + c * (A @ A)
        x = a * x + B @ x
    return np.ascontiguousarray(x.T if tr else x).astype(dtype)


def muon_run(p0, grads, mu, ratio, muon_wd, beta1, beta2, eps, wd):
    ps = split(p0.copy())
    buf = [np.zeros_like(p) for p in ps]
    v = [np.zeros_like(p) for p in ps]
    out = []
    for t in range(1, K + 1):
        lr = LRS[t - 1]
        gs = split(grads[t - 1])
        for i, (_, shp, nodecay) in enumerate(SHAPES):
            p, g = ps[i], gs[i]
            if len(shp) >= 2 and not nodecay:
                lrm = lr * ratio
                buf[i] = lerp(buf[i], g, 1 - mu)
                u = lerp(g, buf[i], mu)
                rows = shp[0]
                cols = int(np.prod(shp)) // rows
                u = ns5(u.reshape(rows, cols)).reshape(shp)
                u = (u * F(max(1.0, rows / cols) ** 0.5)).astype(F)
                if muon_wd != 0:
                    p = (p * F(1 - lrm * muon_wd)).astype(F)
                ps[i] = (p + F(-lrm) * u).astype(F)
            else:
                w = 0.0 if nodecay else wd
                if w != 0:
                    p = (p * F(1 - lr * w)).astype(F)
                buf[i] = lerp(buf[i], g, 1 - beta1)
                v[i] = (v[i] * F(beta2) + F(1 - beta2) * g * g).astype(F)
                denom = (np.sqrt(v[i]) / F(np.sqrt(1 - beta2 ** t)) + F(eps)).astype(F)
                ps[i] = (p + F(-(lr / (1 - beta1 ** t))) * buf[i] / denom).astype(F)
        out.append(join(ps))
    return np.stack(out)


def lr_at(kind, lr, warmup, t_ref, total, min_ratio, it):
    f = 1.0
    if warmup > 0 and it + 1 < warmup:
        f = (it + 1) / warmup
    if kind == "inv_sqrt":
        f /= np.sqrt(max(it / t_ref, 1.0))
    elif kind == "cosine":
        q = min(max((it - warmup) / (total - warmup), 0.0), 1.0)
        f *= min_ratio + (1 - min_ratio) * 0.5 * (1 + np.cos(np.pi * q))
    return lr * f


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20261127)
    P = sum(int(np.prod(s)) for _, s, _ in SHAPES)
    p0 = rng.standard_normal(P).astype(F) * F(0.5)
    grads = (rng.standard_normal((K, P)) * 0.1).astype(F)
    grads[2] *= F(100)   # one large step: exercises Adam's normalisation and clipping
    np.save(f"{out}/init.npy", p0)
    np.save(f"{out}/grads.npy", grads)
    np.save(f"{out}/lrs.npy", np.array(LRS, dtype=np.float64))

    np.save(f"{out}/adam.npy", adam_run(p0, grads, 0.9, 0.999, 1e-8, 0.1, False))
    adamw = adam_run(p0, grads, 0.9, 0.95, 1e-8, 0.1, True)
    np.save(f"{out}/adamw.npy", adamw)
    np.save(f"{out}/muon.npy", muon_run(p0, grads, 0.95, 2.0, 0.05, 0.9, 0.95, 1e-8, 0.01))

    # EMA of the AdamW trajectory, decay 0.9, shadow starting at p0.
    s = p0.copy()
    ema = []
    for k in range(K):
        s = (s * F(0.9) + adamw[k] * F(1 - 0.9)).astype(F)
        ema.append(s)
    np.save(f"{out}/ema.npy", np.stack(ema))

    # Clipping of the large gradient to max_norm 1.
    g = grads[2].astype(np.float64)
    norm = np.sqrt(np.sum(g * g))
    coef = F(1.0) / (F(norm) + F(1e-6))
    np.save(f"{out}/clip_norm.npy", np.array([norm]))
    np.save(f"{out}/clip_grads.npy", (grads[2] * coef).astype(F))

    # Newton-Schulz on a few matrices, in float64 (the C result is fp32).
    for name, shp in [("ns_wide", (5, 8)), ("ns_tall", (9, 4)), ("ns_square", (6, 6))]:
        m = rng.standard_normal(shp).astype(F)
        np.save(f"{out}/{name}_in.npy", m)
        np.save(f"{out}/{name}_out.npy", ns5(m.astype(np.float64), dtype=np.float64))

    # Schedules: each row (kind id, lr, warmup, t_ref, total, min_ratio) and
    # the lr at steps 0..99.
    cfgs = [(0, 2e-4, 0, 0, 0, 0.0), (0, 1e-3, 10, 0, 0, 0.0), (1, 1e-2, 0, 7, 0, 0.0),
            (1, 1e-2, 5, 20, 0, 0.0), (2, 3e-4, 10, 0, 80, 0.1), (2, 1.0, 0, 0, 50, 0.0)]
    kinds = {0: "const", 1: "inv_sqrt", 2: "cosine"}
    np.save(f"{out}/sched_cfg.npy", np.array(cfgs, dtype=np.float64))
    np.save(f"{out}/sched_lr.npy", np.array(
        [[lr_at(kinds[c[0]], c[1], c[2], c[3], c[4], c[5], it) for it in range(100)]
         for c in cfgs], dtype=np.float64))


if __name__ == "__main__":
    main()
