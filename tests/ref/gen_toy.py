#!/usr/bin/env python3
"""gen_toy.py OUTDIR: numpy references for the 2D toy (docs/FORMULAS.md section 2).

Writes:
  randn.npy         first 1000 draws of RandomState(2).randn()  (f8)
  rsample.npy       first 1000 draws of RandomState(7).random_sample() (f8)
  u32.npy           first 1000 RandomState(5489).randint(0, 2**32) as i8
  pts.npy           (64, 2) probe points (f8), seeded
  ts.npy            the probe times (f8)
  logp_t.npy        (len(ts), 64) log p_t(x) of class A at each probe time
  post_t.npy        (len(ts), 64, 2) E[x1 | x_t = x]
  vel_t.npy         (len(ts), 64, 2) exact velocity (t < 1 only; t = 1 rows are 0)
  mlp_*.npy, tok_*.npy, flow_*.npy: small networks (depth 2, width 8) with
                    seeded weights, their outputs and the loss terms of
                    models/toy_mlp.c for several regulariser settings
  pr_real.npy, pr_fake.npy, pr.npy, pct_*.npy: precision/recall (k = 3) and
                    percentiles for metrics/toy.c
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
    networks(out)
    metrics(out)


def mlp_forward(Ws, bs, x):
    h = x
    for l, (W, b) in enumerate(zip(Ws, bs)):
        h = h @ W.T + b
        if l < len(Ws) - 1:
            h = np.maximum(h, 0)
    return h


def mlp_weights(g, din, dout, depth, width):
    Ws, bs = [], []
    for l in range(depth + 1):
        fi = din if l == 0 else width
        fo = dout if l == depth else width
        b = 1 / np.sqrt(fi)
        Ws.append(g.uniform(-b, b, size=(fo, fi)).astype(np.float32))
        bs.append(g.uniform(-b, b, size=(fo,)).astype(np.float32))
    return Ws, bs


def tok_losses(h, x, eps, cfg):
    """Loss terms of models/toy_mlp.c in float64 from the float32 encoder output."""
    mu = h[:, :2].astype(np.float64)
    lv = np.clip(h[:, 2:].astype(np.float64), -30, 20)
    s2 = np.exp(lv)
    B = x.shape[0]
    kl = 0.5 * np.sum(mu ** 2 + s2 - 1 - lv) / B
    if cfg["form"] == 0:
        ve = np.mean(1 / (s2 + cfg["delta"]))
    elif cfg["form"] == 1:
        ve = np.mean(-s2)
    else:
        ve = np.mean(-0.5 * lv)
    if cfg["glob"]:
        m = np.sqrt(np.mean(mu ** 2))
        reg = np.exp(max(m - cfg["tau"], 0)) - 1
    else:
        reg = np.mean(np.exp(np.maximum(np.abs(mu) - cfg["tau"], 0)) - 1)
    return kl, ve, reg


def networks(out):
    g = np.random.RandomState(77)
    B = 16
    x = g.normal(size=(B, 2)).astype(np.float32) * 0.5 + 0.3
    eps = g.normal(size=(B, 2)).astype(np.float32)
    eW, eb = mlp_weights(g, 2, 4, 2, 8)
    dW, db = mlp_weights(g, 2, 2, 2, 8)
    # logvar bias pulled negative so sigma is realistic (and inside the clamp)
    eb[-1][2:] -= 1.0
    for i, (W, b) in enumerate(zip(eW, eb)):
        np.save(os.path.join(out, f"tok_enc.layers.{i}.weight.npy"), W)
        np.save(os.path.join(out, f"tok_enc.layers.{i}.bias.npy"), b)
    for i, (W, b) in enumerate(zip(dW, db)):
        np.save(os.path.join(out, f"tok_dec.layers.{i}.weight.npy"), W)
        np.save(os.path.join(out, f"tok_dec.layers.{i}.bias.npy"), b)
    h = mlp_forward([w.astype(np.float64) for w in eW], [b.astype(np.float64) for b in eb], x.astype(np.float64))
    mu, lv = h[:, :2], np.clip(h[:, 2:], -30, 20)
    z = mu + np.exp(0.5 * lv) * eps
    xr = mlp_forward([w.astype(np.float64) for w in dW], [b.astype(np.float64) for b in db], z)
    rec = np.sum((xr - x) ** 2) / B
    np.save(os.path.join(out, "tok_x.npy"), x)
    np.save(os.path.join(out, "tok_eps.npy"), eps)
    np.save(os.path.join(out, "tok_h.npy"), h)
    np.save(os.path.join(out, "tok_xr.npy"), xr)
    cfgs = [dict(form=0, delta=1e-3, tau=0.3, glob=0), dict(form=0, delta=1e-3, tau=0.3, glob=1),
            dict(form=1, delta=0, tau=0.1, glob=0), dict(form=2, delta=0, tau=0.1, glob=1)]
    terms = []
    for c in cfgs:
        kl, ve, reg = tok_losses(h, x, eps, c)
        terms.append([rec, kl, ve, reg])
    np.save(os.path.join(out, "tok_terms.npy"), np.array(terms))
    # flow net: (z_t, t) -> v
    fW, fb = mlp_weights(g, 3, 2, 2, 8)
    for i, (W, b) in enumerate(zip(fW, fb)):
        np.save(os.path.join(out, f"flow_net.layers.{i}.weight.npy"), W)
        np.save(os.path.join(out, f"flow_net.layers.{i}.bias.npy"), b)
    z1 = g.normal(size=(B, 2)).astype(np.float32)
    x0 = g.normal(size=(B, 2)).astype(np.float32)
    t = g.uniform(size=B).astype(np.float32)
    zt = t[:, None].astype(np.float64) * z1 + (1 - t[:, None].astype(np.float64)) * x0
    v = mlp_forward([w.astype(np.float64) for w in fW], [b.astype(np.float64) for b in fb],
                    np.concatenate([zt, t[:, None]], axis=1))
    np.save(os.path.join(out, "flow_z1.npy"), z1)
    np.save(os.path.join(out, "flow_x0.npy"), x0)
    np.save(os.path.join(out, "flow_t.npy"), t)
    np.save(os.path.join(out, "flow_v.npy"), v)
    np.save(os.path.join(out, "flow_loss.npy"), np.array([np.mean((v - (z1 - x0)) ** 2)]))


def metrics(out):
    g = np.random.RandomState(99)
    real = g.normal(size=(500, 2)).astype(np.float32)
    fake = (g.normal(size=(400, 2)) * 1.3 + 0.4).astype(np.float32)
    def radii(a, k=3):
        d = np.sum((a[:, None, :].astype(np.float64) - a[None].astype(np.float64)) ** 2, axis=2)
        return np.partition(d, k, axis=1)[:, k]      # index k skips the zero self-distance
    rr, rf = radii(real), radii(fake)
    dfr = np.sum((fake[:, None, :].astype(np.float64) - real[None].astype(np.float64)) ** 2, axis=2)
    prec = np.mean(np.any(dfr <= rr[None], axis=1))
    rec = np.mean(np.any(dfr.T <= rf[None], axis=1))
    np.save(os.path.join(out, "pr_real.npy"), real)
    np.save(os.path.join(out, "pr_fake.npy"), fake)
    np.save(os.path.join(out, "pr_radius2_real.npy"), rr)
    np.save(os.path.join(out, "pr.npy"), np.array([prec, rec]))
    v = g.normal(size=101)
    np.save(os.path.join(out, "pct_v.npy"), v)
    np.save(os.path.join(out, "pct_q.npy"), np.array([0, 1, 2.5, 50, 99, 100]))
    np.save(os.path.join(out, "pct_r.npy"), np.percentile(v, [0, 1, 2.5, 50, 99, 100]))


if __name__ == "__main__":
    main()
