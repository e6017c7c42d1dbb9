#!/usr/bin/env python3
"""gen_toy.py OUTDIR: numpy references for the 2D toy (SPEC.md section 2).

Writes:
  randn.npy         first 1000 draws of RandomState(2).randn()  (f8)
  rsample.npy       first 1000 draws of RandomState(7).random_sample() (f8)
  u32.npy           first 1000 RandomState(5489).randint(0, 2**32) as i8
  pts.npy           (64, 2) probe points (f8), seeded
  ts.npy            the probe times (f8)
  logp_t.npy        (len(ts), 64) log p_t(x) of class A at each probe time
  post_t.npy        (len(ts), 64, 2) E[x1 | x_t = x]
  vel_t.npy         (len(ts), 64, 2) exact velocity (t < 1 only; t = 1 rows are 0)
The mixture is rebuilt here independently from the spec (edm2 toy_example
construction), so the C code is checked against a second implementation, not
against itself.
"""
import sys
import os
import numpy as np


def build(classes="A"):
    rnd = np.random.RandomState(2)
    origin = np.array([0.0030, 0.0325])
    scale = np.array([1.3136, 1.3844])
    comps = []

    def recurse(cls, depth, pos, angle):
        if depth >= 7:
            return
        d = np.array([np.cos(angle), np.sin(angle)])
        dist = 0.292 * (0.8 ** depth) * (rnd.randn() * 0.2 + 1)
        thick = 0.2 * (0.8 ** depth) / dist
        size = scale * dist * 0.06
        for t in np.linspace(0.07, 0.93, num=8):
            phi = dist * (0.5 ** depth)
            mu = (pos + d * dist * t) * scale
            S = (np.outer(d, d) + (np.eye(2) - np.outer(d, d)) * (thick ** 2)) * np.outer(size, size)
            comps.append((cls, phi, mu, S))
        for sign in [1, -1]:
            recurse(cls, depth + 1, pos + d * dist, angle + sign * (0.7 ** depth) * (rnd.randn() * 0.2 + 1))

    recurse("A", 0, origin, np.pi / 4)
    recurse("B", 0, origin, np.pi * 5 / 4)
    comps = [c for c in comps if c[0] in classes]
    phi = np.array([c[1] for c in comps])
    phi = phi / phi.sum()
    mu = np.array([c[2] for c in comps])
    S = np.array([c[3] for c in comps])
    return phi, mu, S


def closed_forms(phi, mu, S, x, t):
    C = t * t * S + (1 - t) ** 2 * np.eye(2)[None]          # (K,2,2)
    Ci = np.linalg.inv(C)
    d = x[:, None, :] - t * mu[None]                          # (N,K,2)
    y = np.einsum("kij,nkj->nki", Ci, d)
    maha = np.einsum("nki,nki->nk", d, y)
    logdet = np.log(np.linalg.det(C))
    L = np.log(phi)[None] - np.log(2 * np.pi) - 0.5 * logdet[None] - 0.5 * maha
    m = L.max(axis=1, keepdims=True)
    w = np.exp(L - m)
    logp = (m[:, 0] + np.log(w.sum(axis=1)))
    w = w / w.sum(axis=1, keepdims=True)
    post_i = mu[None] + t * np.einsum("kij,nkj->nki", S, y)
    post = np.einsum("nk,nki->ni", w, post_i)
    vel = (post - x) / (1 - t) if t < 1 else np.zeros_like(x)
    return logp, post, vel


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    r = np.random.RandomState(2)
    np.save(os.path.join(out, "randn.npy"), np.array([r.randn() for _ in range(1000)]))
    r = np.random.RandomState(7)
    np.save(os.path.join(out, "rsample.npy"), r.random_sample(1000))
    r = np.random.RandomState(5489)
    np.save(os.path.join(out, "u32.npy"), r.randint(0, 2 ** 32, size=1000, dtype=np.uint64).astype(np.int64))

    phi, mu, S = build("A")
    g = np.random.RandomState(123)
    pts = np.concatenate([
        g.normal(size=(24, 2)),                                  # noise-like points
        mu[g.randint(0, len(mu), size=32)] + 0.02 * g.normal(size=(32, 2)),  # near the data
        g.uniform(-3, 3, size=(8, 2)),                           # far tails
    ])
    ts = np.array([0.0, 0.05, 0.3, 0.5, 0.8, 0.95, 0.999, 1.0])
    lp, po, ve = [], [], []
    for t in ts:
        a, b, c = closed_forms(phi, mu, S, pts, t)
        lp.append(a); po.append(b); ve.append(c)
    np.save(os.path.join(out, "pts.npy"), pts)
    np.save(os.path.join(out, "ts.npy"), ts)
    np.save(os.path.join(out, "logp_t.npy"), np.array(lp))
    np.save(os.path.join(out, "post_t.npy"), np.array(po))
    np.save(os.path.join(out, "vel_t.npy"), np.array(ve))


if __name__ == "__main__":
    main()
