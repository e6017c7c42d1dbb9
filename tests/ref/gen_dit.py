#!/usr/bin/python3
"""gen_dit.py OUTDIR: numpy float64 reference of a whole tiny LightningDiT
(models/lightningdit.h): forward v = model(x, t, y, drop) and the gradients
of L = sum(dv * v) w.r.t. every parameter (PyTorch names) and x, by a
hand-written backward. The backward is verified here against central
differences of the numpy forward along random directions (asserted), so the
C test compares against checked numbers.

Written independently of the C code: naive softmax attention, RoPE as
x*cos + rotate_half(x)*sin with EVA-02's tables, DiT's unpatchify einsum,
the patch embed as a strided convolution (im2col by reshape).

Cases (each in its own prefix):
  block:  one block alone (D 64, 4 heads, 8 x 8 tokens, q/k norm), B 2:
          y = block(x_in, SiLU(c)) and the grads of sum(dout * y)
  tiny:   depth 2, D 64, 4 heads, patch 1, 4 x 8 x 8, 10 classes, B 2
  tinyqk: the same with q/k RMSNorm, patch 2, B 3, one label dropped
Weights are random (not the adaLN-Zero init) so every gradient is non-zero.
"""
import os
import sys
import numpy as np

EPS = 1e-6


def silu(x):
    return x / (1 + np.exp(-x))


def dsilu(x):
    s = 1 / (1 + np.exp(-x))
    return s * (1 + x * (1 - s))


def rms(x, w):
    r = 1 / np.sqrt((x * x).mean(-1, keepdims=True) + EPS)
    return x * r * w, r


def rms_bwd(dy, x, w, r):
    xh = x * r
    dxh = dy * w
    dw = (dy * xh).reshape(-1, x.shape[-1]).sum(0)
    dx = r * (dxh - xh * (dxh * xh).mean(-1, keepdims=True))
    return dx, dw


def rotate_half(x):
    x = x.reshape(x.shape[:-1] + (-1, 2))
    return np.stack((-x[..., 1], x[..., 0]), axis=-1).reshape(x.shape[:-2] + (-1,))


def rope_tables(L, hd, theta=10000.0):
    dim = hd // 2
    freqs = 1.0 / (theta ** (np.arange(0, dim, 2)[: dim // 2] / dim))
    f = np.repeat(np.einsum("i,f->if", np.arange(L, dtype=np.float64), freqs), 2, axis=-1)
    f = np.concatenate([np.broadcast_to(f[:, None, :], (L, L, dim)),
                        np.broadcast_to(f[None, :, :], (L, L, dim))], axis=-1).reshape(-1, hd)
    return np.cos(f), np.sin(f)


def pos_embed(D, L):
    def one(d, pos):
        om = 1.0 / 10000 ** (np.arange(d // 2) / (d / 2.0))
        o = np.einsum("m,d->md", pos.reshape(-1), om)
        return np.concatenate([np.sin(o), np.cos(o)], axis=1)
    g = np.meshgrid(np.arange(L, dtype=np.float64), np.arange(L, dtype=np.float64))
    return np.concatenate([one(D // 2, g[0]), one(D // 2, g[1])], axis=1)


def temb_feats(t, dim=256):
    half = dim // 2
    fr = np.exp(-np.log(10000.0) * np.arange(half) / half)
    a = t[:, None] * fr[None]
    return np.concatenate([np.cos(a), np.sin(a)], axis=-1)


class Cfg:
    def __init__(s, depth, D, NH, p, C, S, NC, qk):
        s.depth, s.D, s.NH, s.p, s.C, s.S, s.NC, s.qk = depth, D, NH, p, C, S, NC, qk
        s.HD = D // NH
        s.H = int(2 / 3 * 4 * D)
        s.L = S // p
        s.T = s.L * s.L


def param_shapes(c):
    D, H, P = c.D, c.H, c.p * c.p * c.C
    sh = [("x_embedder.proj.weight", (D, c.C, c.p, c.p)), ("x_embedder.proj.bias", (D,)),
          ("t_embedder.mlp.0.weight", (D, 256)), ("t_embedder.mlp.0.bias", (D,)),
          ("t_embedder.mlp.2.weight", (D, D)), ("t_embedder.mlp.2.bias", (D,)),
          ("y_embedder.embedding_table.weight", (c.NC + 1, D))]
    for l in range(c.depth):
        b = f"blocks.{l}."
        sh += [(b + "norm1.weight", (D,)), (b + "attn.qkv.weight", (3 * D, D)),
               (b + "attn.qkv.bias", (3 * D,))]
        if c.qk:
            sh += [(b + "attn.q_norm.weight", (c.HD,)), (b + "attn.k_norm.weight", (c.HD,))]
        sh += [(b + "attn.proj.weight", (D, D)), (b + "attn.proj.bias", (D,)),
               (b + "norm2.weight", (D,)), (b + "mlp.w12.weight", (2 * H, D)),
               (b + "mlp.w12.bias", (2 * H,)), (b + "mlp.w3.weight", (D, H)),
               (b + "mlp.w3.bias", (D,)), (b + "adaLN_modulation.1.weight", (6 * D, D)),
               (b + "adaLN_modulation.1.bias", (6 * D,))]
    sh += [("final_layer.norm_final.weight", (D,)), ("final_layer.linear.weight", (P, D)),
           ("final_layer.linear.bias", (P,)),
           ("final_layer.adaLN_modulation.1.weight", (2 * D, D)),
           ("final_layer.adaLN_modulation.1.bias", (2 * D,))]
    return sh


def random_params(c, rng):
    W = {}
    for name, shape in param_shapes(c):
        if name.endswith("norm1.weight") or name.endswith("norm2.weight") or \
                name.endswith("_norm.weight") or name.endswith("norm_final.weight"):
            W[name] = 1 + 0.2 * rng.randn(*shape)
        elif name.endswith(".bias"):
            W[name] = 0.1 * rng.randn(*shape)
        elif "embedding_table" in name:
            W[name] = 0.5 * rng.randn(*shape)
        else:
            fan_in = int(np.prod(shape[1:]))
            W[name] = rng.randn(*shape) / np.sqrt(fan_in)
    # float32-representable values, as the C side stores them
    return {k: v.astype(np.float32).astype(np.float64) for k, v in W.items()}


def lin(x, W, b):
    return x @ W.T + b


def lin_bwd(dy, x, W):
    d2 = dy.reshape(-1, dy.shape[-1])
    return dy @ W, d2.T @ x.reshape(-1, x.shape[-1]), d2.sum(0)


def block_fwd(c, W, b, h, sc):
    """One block: h (B,T,D), sc = SiLU(c) (B,D) -> (output, cache)."""
    B, D, NH, HD, T = h.shape[0], c.D, c.NH, c.HD, c.T
    cos, sin = rope_tables(c.L, HD)
    k = {"x_in": h}
    ada = lin(sc, W[b + "adaLN_modulation.1.weight"], W[b + "adaLN_modulation.1.bias"])
    sh1, s1, g1, sh2, s2, g2 = [ada[:, i * D:(i + 1) * D][:, None] for i in range(6)]
    k["ada"] = (sh1, s1, g1, sh2, s2, g2)
    xn1, r1 = rms(h, W[b + "norm1.weight"])
    xm1 = xn1 * (1 + s1) + sh1
    qkv = lin(xm1, W[b + "attn.qkv.weight"], W[b + "attn.qkv.bias"])
    qkv = qkv.reshape(B, T, 3, NH, HD).transpose(2, 0, 3, 1, 4)
    q, kk, v = qkv[0], qkv[1], qkv[2]
    k.update(xn1=xn1, r1=r1, xm1=xm1, q=q, k=kk, v=v)
    if c.qk:
        q, k["rq"] = rms(q, W[b + "attn.q_norm.weight"])
        kk, k["rk"] = rms(kk, W[b + "attn.k_norm.weight"])
    q = q * cos + rotate_half(q) * sin
    kk = kk * cos + rotate_half(kk) * sin
    s = q @ kk.transpose(0, 1, 3, 2) / np.sqrt(HD)
    P = np.exp(s - s.max(-1, keepdims=True))
    P /= P.sum(-1, keepdims=True)
    o = (P @ v).transpose(0, 2, 1, 3).reshape(B, T, D)
    k.update(qr=q, kr=kk, P=P, o=o)
    ya = lin(o, W[b + "attn.proj.weight"], W[b + "attn.proj.bias"])
    xmid = h + g1 * ya
    xn2, r2 = rms(xmid, W[b + "norm2.weight"])
    xm2 = xn2 * (1 + s2) + sh2
    x12 = lin(xm2, W[b + "mlp.w12.weight"], W[b + "mlp.w12.bias"])
    a, bb = x12[..., :c.H], x12[..., c.H:]
    hh = silu(a) * bb
    ym = lin(hh, W[b + "mlp.w3.weight"], W[b + "mlp.w3.bias"])
    k.update(ya=ya, xmid=xmid, xn2=xn2, r2=r2, xm2=xm2, x12=x12, hh=hh, ym=ym)
    return xmid + g2 * ym, k


def block_bwd(c, W, G, b, k, dh, sc):
    """Backward of block_fwd: dh = d(output) -> (d x_in, d sc); grads into G."""
    B, D, NH, HD, T = dh.shape[0], c.D, c.NH, c.HD, c.T
    cos, sin = rope_tables(c.L, HD)
    sh1, s1, g1, sh2, s2, g2 = k["ada"]
    dg2 = (dh * k["ym"]).sum(1)
    dym = dh * g2
    dhh, G[b + "mlp.w3.weight"], G[b + "mlp.w3.bias"] = lin_bwd(dym, k["hh"], W[b + "mlp.w3.weight"])
    a, bb = k["x12"][..., :c.H], k["x12"][..., c.H:]
    dx12 = np.concatenate([dhh * bb * dsilu(a), dhh * silu(a)], axis=-1)
    dxm2, G[b + "mlp.w12.weight"], G[b + "mlp.w12.bias"] = lin_bwd(dx12, k["xm2"], W[b + "mlp.w12.weight"])
    dsh2, ds2 = dxm2.sum(1), (dxm2 * k["xn2"]).sum(1)
    dxmid, G[b + "norm2.weight"] = rms_bwd(dxm2 * (1 + s2), k["xmid"], W[b + "norm2.weight"], k["r2"])
    dxmid = dxmid + dh
    dg1 = (dxmid * k["ya"]).sum(1)
    dya = dxmid * g1
    do, G[b + "attn.proj.weight"], G[b + "attn.proj.bias"] = lin_bwd(dya, k["o"], W[b + "attn.proj.weight"])
    do = do.reshape(B, T, NH, HD).transpose(0, 2, 1, 3)
    P, v, qr, kr = k["P"], k["v"], k["qr"], k["kr"]
    dv_ = P.transpose(0, 1, 3, 2) @ do
    dP = do @ v.transpose(0, 1, 3, 2)
    dS = P * (dP - (dP * P).sum(-1, keepdims=True)) / np.sqrt(HD)
    dqr, dkr = dS @ kr, dS.transpose(0, 1, 3, 2) @ qr
    dq = dqr * cos - rotate_half(dqr * sin)
    dk = dkr * cos - rotate_half(dkr * sin)
    if c.qk:
        dq, G[b + "attn.q_norm.weight"] = rms_bwd(dq, k["q"], W[b + "attn.q_norm.weight"], k["rq"])
        dk, G[b + "attn.k_norm.weight"] = rms_bwd(dk, k["k"], W[b + "attn.k_norm.weight"], k["rk"])
    dqkv = np.stack([dq, dk, dv_]).transpose(1, 3, 0, 2, 4).reshape(B, T, 3 * D)
    dxm1, G[b + "attn.qkv.weight"], G[b + "attn.qkv.bias"] = lin_bwd(dqkv, k["xm1"], W[b + "attn.qkv.weight"])
    dsh1, ds1 = dxm1.sum(1), (dxm1 * k["xn1"]).sum(1)
    dxin, G[b + "norm1.weight"] = rms_bwd(dxm1 * (1 + s1), k["x_in"], W[b + "norm1.weight"], k["r1"])
    dh = dxin + dxmid
    dada = np.concatenate([dsh1, ds1, dg1, dsh2, ds2, dg2], axis=1)
    dsc_l, G[b + "adaLN_modulation.1.weight"], G[b + "adaLN_modulation.1.bias"] = \
        lin_bwd(dada, sc, W[b + "adaLN_modulation.1.weight"])
    return dh, dsc_l


def forward(c, W, x, t, y, drop):
    B, D, NH, HD, T, p, L = x.shape[0], c.D, c.NH, c.HD, c.T, c.p, c.L
    cos, sin = rope_tables(L, HD)
    K = {}
    xt = x.reshape(B, c.C, L, p, L, p).transpose(0, 2, 4, 1, 3, 5).reshape(B, T, c.C * p * p)
    K["xt"] = xt
    h = lin(xt, W["x_embedder.proj.weight"].reshape(D, -1), W["x_embedder.proj.bias"])
    h = h + pos_embed(D, L)[None]
    te = temb_feats(t)
    t1 = lin(te, W["t_embedder.mlp.0.weight"], W["t_embedder.mlp.0.bias"])
    temb = lin(silu(t1), W["t_embedder.mlp.2.weight"], W["t_embedder.mlp.2.bias"])
    rows = np.where(drop > 0, c.NC, y)
    cc = temb + W["y_embedder.embedding_table.weight"][rows]
    sc = silu(cc)
    K.update(te=te, t1=t1, rows=rows, cc=cc, sc=sc, blocks=[])
    for l in range(c.depth):
        h, k = block_fwd(c, W, f"blocks.{l}.", h, sc)
        K["blocks"].append(k)
    K["x_out"] = h
    adaf = lin(sc, W["final_layer.adaLN_modulation.1.weight"], W["final_layer.adaLN_modulation.1.bias"])
    shf, scf = adaf[:, None, :D], adaf[:, None, D:]
    xnf, rf = rms(h, W["final_layer.norm_final.weight"])
    xmf = xnf * (1 + scf) + shf
    ot = lin(xmf, W["final_layer.linear.weight"], W["final_layer.linear.bias"])
    K.update(shf=shf, scf=scf, xnf=xnf, rf=rf, xmf=xmf)
    v = ot.reshape(B, L, L, p, p, c.C)
    v = np.einsum("nhwpqc->nchpwq", v).reshape(B, c.C, L * p, L * p)
    return v, K


def backward(c, W, x, dv, K):
    B, D, NH, HD, T, p, L = x.shape[0], c.D, c.NH, c.HD, c.T, c.p, c.L
    cos, sin = rope_tables(L, HD)
    G = {k: np.zeros_like(v) for k, v in W.items()}
    # unpatchify^T
    dot = np.einsum("nchpwq->nhwpqc", dv.reshape(B, c.C, L, p, L, p)).reshape(B, T, -1)
    dxmf, G["final_layer.linear.weight"], G["final_layer.linear.bias"] = \
        lin_bwd(dot, K["xmf"], W["final_layer.linear.weight"])
    dxnf = dxmf * (1 + K["scf"])
    dadaf = np.concatenate([dxmf.sum(1), (dxmf * K["xnf"]).sum(1)], axis=1)
    dh, G["final_layer.norm_final.weight"] = rms_bwd(dxnf, K["x_out"], W["final_layer.norm_final.weight"], K["rf"])
    dsc, G["final_layer.adaLN_modulation.1.weight"], G["final_layer.adaLN_modulation.1.bias"] = \
        lin_bwd(dadaf, K["sc"], W["final_layer.adaLN_modulation.1.weight"])
    for l in reversed(range(c.depth)):
        dh, dsc_l = block_bwd(c, W, G, f"blocks.{l}.", K["blocks"][l], dh, K["sc"])
        dsc = dsc + dsc_l
    dxt, gw, G["x_embedder.proj.bias"] = lin_bwd(dh, K["xt"], W["x_embedder.proj.weight"].reshape(D, -1))
    G["x_embedder.proj.weight"] = gw.reshape(W["x_embedder.proj.weight"].shape)
    dx = dxt.reshape(B, L, L, c.C, p, p).transpose(0, 3, 1, 4, 2, 5).reshape(x.shape)
    dcc = dsc * dsilu(K["cc"])
    tab = np.zeros_like(W["y_embedder.embedding_table.weight"])
    np.add.at(tab, K["rows"], dcc)
    G["y_embedder.embedding_table.weight"] = tab
    dt1s, G["t_embedder.mlp.2.weight"], G["t_embedder.mlp.2.bias"] = \
        lin_bwd(dcc, silu(K["t1"]), W["t_embedder.mlp.2.weight"])
    _, G["t_embedder.mlp.0.weight"], G["t_embedder.mlp.0.bias"] = \
        lin_bwd(dt1s * dsilu(K["t1"]), K["te"], W["t_embedder.mlp.0.weight"])
    return G, dx


def check_directional(c, W, x, t, y, drop, dv, G, dx, rng):
    """<grad, u> vs central difference of L along random u (all params + x)."""
    for trial in range(3):
        U = {k: rng.randn(*v.shape) for k, v in W.items()}
        ux = rng.randn(*x.shape)
        h = 1e-5

        def L(sign):
            W2 = {k: W[k] + sign * h * U[k] for k in W}
            return (forward(c, W2, x + sign * h * ux, t, y, drop)[0] * dv).sum()
        fd = (L(1) - L(-1)) / (2 * h)
        an = sum((G[k] * U[k]).sum() for k in W) + (dx * ux).sum()
        rel = abs(fd - an) / max(abs(an), 1e-12)
        assert rel < 1e-6, f"numpy backward wrong: fd {fd} analytic {an} rel {rel}"
        print(f"gen_dit: directional check {trial}: rel err {rel:.2e}")


def make_case(out, prefix, c, B, seed, drop):
    rng = np.random.RandomState(seed)
    W = random_params(c, rng)
    f32 = lambda a: a.astype(np.float32).astype(np.float64)
    x = f32(rng.randn(B, c.C, c.S, c.S))
    t = f32(rng.rand(B))
    y = rng.randint(0, c.NC, size=B)
    dv = f32(rng.randn(B, c.C, c.S, c.S))
    v, K = forward(c, W, x, t, y, drop)
    G, dx = backward(c, W, x, dv, K)
    check_directional(c, W, x, t, y, drop, dv, G, dx, rng)
    d = os.path.join(out, prefix)
    os.makedirs(d, exist_ok=True)
    for k in W:
        np.save(os.path.join(d, k + ".npy"), W[k].astype(np.float32))
        np.save(os.path.join(d, "grad." + k + ".npy"), G[k].astype(np.float32))
    for k, a in (("in_x", x), ("in_t", t), ("in_dv", dv), ("out_v", v), ("out_dx", dx)):
        np.save(os.path.join(d, k + ".npy"), a.astype(np.float32))
    np.save(os.path.join(d, "in_y.npy"), y.astype(np.int32))
    np.save(os.path.join(d, "in_drop.npy"), drop.astype(np.int32))


def make_block_case(out, prefix, c, B, seed):
    """One block alone: y = block(x_in, sc); grads of sum(dout * y)."""
    rng = np.random.RandomState(seed)
    W = {k: v for k, v in random_params(c, rng).items() if k.startswith("blocks.0.")}
    f32 = lambda a: a.astype(np.float32).astype(np.float64)
    x = f32(rng.randn(B, c.T, c.D))
    sc = f32(silu(rng.randn(B, c.D)))
    dout = f32(rng.randn(B, c.T, c.D))
    y, k = block_fwd(c, W, "blocks.0.", x, sc)
    G = {n: np.zeros_like(v) for n, v in W.items()}
    dx, dsc = block_bwd(c, W, G, "blocks.0.", k, dout, sc)
    for trial in range(2):
        U = {n: rng.randn(*v.shape) for n, v in W.items()}
        ux, us = rng.randn(*x.shape), rng.randn(*sc.shape)
        h = 1e-5

        def L(sg):
            W2 = {n: W[n] + sg * h * U[n] for n in W}
            return (block_fwd(c, W2, "blocks.0.", x + sg * h * ux, sc + sg * h * us)[0] * dout).sum()
        fd = (L(1) - L(-1)) / (2 * h)
        an = sum((G[n] * U[n]).sum() for n in W) + (dx * ux).sum() + (dsc * us).sum()
        rel = abs(fd - an) / abs(an)
        assert rel < 1e-6, f"numpy block backward wrong: rel {rel}"
        print(f"gen_dit: block directional check {trial}: rel err {rel:.2e}")
    d = os.path.join(out, prefix)
    os.makedirs(d, exist_ok=True)
    for n in W:
        np.save(os.path.join(d, n + ".npy"), W[n].astype(np.float32))
        np.save(os.path.join(d, "grad." + n + ".npy"), G[n].astype(np.float32))
    for n, a in (("in_x", x), ("in_sc", sc), ("in_dout", dout), ("out_y", y),
                 ("out_dx", dx), ("out_dsc", dsc)):
        np.save(os.path.join(d, n + ".npy"), a.astype(np.float32))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    make_case(out, "tiny", Cfg(2, 64, 4, 1, 4, 8, 10, False), 2, 101, np.array([0, 0]))
    make_case(out, "tinyqk", Cfg(2, 64, 4, 2, 4, 8, 10, True), 3, 202, np.array([0, 1, 0]))
    # one block, 8 x 8 tokens, q/k norm on
    make_block_case(out, "block", Cfg(1, 64, 4, 1, 4, 8, 10, True), 2, 303)


if __name__ == "__main__":
    main()
