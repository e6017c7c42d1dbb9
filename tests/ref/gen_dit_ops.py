#!/usr/bin/python3
"""gen_dit_ops.py OUTDIR: numpy references for nn/rope.h, nn/swiglu.h,
nn/modulate.h and nn/embed.h, each written the way the PyTorch code it copies
writes it (so the C formula is checked against an independent spelling):
- rope: EVA-02 / LightningDiT VisionRotaryEmbeddingFast (repeat per pair,
  broadcat of row and column frequencies, x*cos + rotate_half(x)*sin);
- pos_embed: MAE/DiT get_2d_sincos_pos_embed (meshgrid with w first);
- timestep: DiT TimestepEmbedder.timestep_embedding (cos half then sin);
- swiglu, modulate, gate: one-line numpy forwards.
Computed in float64 on float32 inputs, saved as float32.
"""
import os
import sys
import numpy as np


def rope_tables(L_h, L_w, hd, theta=10000.0):
    dim = hd // 2  # VisionRotaryEmbeddingFast(dim=half_head_dim)
    freqs = 1.0 / (theta ** (np.arange(0, dim, 2)[: dim // 2].astype(np.float64) / dim))

    def axis(L):
        f = np.einsum("i,f->if", np.arange(L, dtype=np.float64), freqs)
        return np.repeat(f, 2, axis=-1)  # '... n -> ... (n r)', r=2

    fh, fw = axis(L_h), axis(L_w)
    f = np.concatenate([np.broadcast_to(fh[:, None, :], (L_h, L_w, dim)),
                        np.broadcast_to(fw[None, :, :], (L_h, L_w, dim))], axis=-1)
    f = f.reshape(-1, hd)
    return np.cos(f), np.sin(f)


def rotate_half(x):
    x = x.reshape(x.shape[:-1] + (-1, 2))
    x1, x2 = x[..., 0], x[..., 1]
    return np.stack((-x2, x1), axis=-1).reshape(x.shape[:-2] + (-1,))


def get_1d(embed_dim, pos):
    omega = np.arange(embed_dim // 2, dtype=np.float64)
    omega /= embed_dim / 2.0
    omega = 1.0 / 10000 ** omega
    out = np.einsum("m,d->md", pos.reshape(-1), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def pos_embed_2d(D, H, W):
    grid_h = np.arange(H, dtype=np.float32)
    grid_w = np.arange(W, dtype=np.float32)
    grid = np.meshgrid(grid_w, grid_h)  # w goes first
    grid = np.stack(grid, axis=0).reshape([2, 1, H, W])
    return np.concatenate([get_1d(D // 2, grid[0]), get_1d(D // 2, grid[1])], axis=1)


def timestep_embedding(t, dim, max_period=10000):
    half = dim // 2
    freqs = np.exp(-np.log(max_period) * np.arange(half, dtype=np.float64) / half)
    args = t[:, None].astype(np.float64) * freqs[None]
    return np.concatenate([np.cos(args), np.sin(args)], axis=-1)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.RandomState(77)

    def save(name, a):
        np.save(os.path.join(out, name + ".npy"), np.asarray(a, dtype=np.float32))

    # rope on (B, NH, T, HD) like the PyTorch module, tables for a 4 x 6 grid
    B, NH, H, W, HD = 2, 3, 4, 6, 16
    c, s = rope_tables(H, W, HD)
    x = rng.randn(B, H * W, NH, HD).astype(np.float32)
    xt = x.astype(np.float64).transpose(0, 2, 1, 3)
    y = (xt * c + rotate_half(xt) * s).transpose(0, 2, 1, 3)
    save("rope_cos", c); save("rope_sin", s); save("rope_x", x); save("rope_y", y)
    c, s = rope_tables(16, 16, 64)
    save("rope16_cos", c); save("rope16_sin", s)

    save("pos_4x6_d32", pos_embed_2d(32, 4, 6))
    save("pos_16x16_d768", pos_embed_2d(768, 16, 16))

    t = np.array([0.0, 0.001, 0.25, 0.5, 0.999, 1.0], dtype=np.float32)
    save("temb_t", t)
    save("temb", timestep_embedding(t, 256))

    N, Hh = 7, 13
    x12 = rng.randn(N, 2 * Hh).astype(np.float32) * 2
    a, b = x12[:, :Hh].astype(np.float64), x12[:, Hh:].astype(np.float64)
    save("swiglu_x12", x12); save("swiglu_h", a / (1 + np.exp(-a)) * b)

    B, T, C = 3, 5, 8
    mod = rng.randn(B, 6 * C).astype(np.float32)  # adaLN output, chunks of C
    xm = rng.randn(B, T, C).astype(np.float32)
    ym = rng.randn(B, T, C).astype(np.float32)
    m64 = mod.astype(np.float64)
    shift, scale, gate = m64[:, 0:C], m64[:, C:2 * C], m64[:, 2 * C:3 * C]
    save("mod_ada", mod); save("mod_x", xm); save("mod_y", ym)
    save("mod_out", xm * (1 + scale[:, None]) + shift[:, None])
    save("gate_out", xm + gate[:, None] * ym)


if __name__ == "__main__":
    main()
