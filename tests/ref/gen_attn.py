#!/usr/bin/python3
"""gen_attn.py OUTDIR: numpy references for nn/attention.h.

Naive softmax attention in float64 (full T x T matrices) on float32 inputs:
qkv (B,T,3,NH,HD), dout (B,T,NH,HD) -> out (B,T,NH,HD), lse (B,NH,T) and
dqkv = d sum(dout*out) / d qkv by the textbook backward
(dV = P^T dO, dP = dO V^T, dS = P*(dP - rowsum(dP*P)), dQ = dS K/sqrt(hd),
dK = dS^T Q/sqrt(hd)). Cases cover odd T (5, 37, 257: partial tiles) and
head dims 16, 64 and 128 (the narrower key tiles), and at head dim 64 (the
AVX-512 kernels) T below, at and past one 64-key panel.
"""
import os
import sys
import numpy as np

CASES = [  # name, B, T, NH, HD
    ("t5", 2, 5, 3, 16),
    ("t37", 1, 37, 2, 64),
    ("t257", 2, 257, 2, 64),
    ("t130h128", 1, 130, 1, 128),
    # head dim 64 = the AVX-512 kernels (nn/cpu/attn_avx512.c): fewer tokens
    # than one 6-row micro-block, exactly one 64-key panel, and a panel plus
    # a partial 16-key vector with a partial 48-query backward block
    ("t5h64", 2, 5, 2, 64),
    ("t64", 2, 64, 3, 64),
    ("t100", 1, 100, 2, 64),
]


def attn(qkv, dout):
    B, T, _, NH, HD = qkv.shape
    q = qkv[:, :, 0].transpose(0, 2, 1, 3)  # B,NH,T,HD
    k = qkv[:, :, 1].transpose(0, 2, 1, 3)
    v = qkv[:, :, 2].transpose(0, 2, 1, 3)
    s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(HD)
    m = s.max(-1, keepdims=True)
    e = np.exp(s - m)
    l = e.sum(-1, keepdims=True)
    p = e / l
    lse = (m + np.log(l))[..., 0]
    o = p @ v
    do = dout.transpose(0, 2, 1, 3)
    dv = p.transpose(0, 1, 3, 2) @ do
    dp = do @ v.transpose(0, 1, 3, 2)
    ds = p * (dp - (dp * p).sum(-1, keepdims=True))
    dq = ds @ k / np.sqrt(HD)
    dk = ds.transpose(0, 1, 3, 2) @ q / np.sqrt(HD)
    dqkv = np.stack([x.transpose(0, 2, 1, 3) for x in (dq, dk, dv)], axis=2)
    return o.transpose(0, 2, 1, 3), lse, dqkv


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.RandomState(1234)
    for name, B, T, NH, HD in CASES:
        # scale 1.5 gives peaked softmax rows (scores of several units)
        qkv = (rng.randn(B, T, 3, NH, HD) * 1.5).astype(np.float32)
        dout = rng.randn(B, T, NH, HD).astype(np.float32)
        o, lse, dqkv = attn(qkv.astype(np.float64), dout.astype(np.float64))
        for k, v in (("qkv", qkv), ("dout", dout), ("out", o), ("lse", lse), ("dqkv", dqkv)):
            np.save(os.path.join(out, f"{name}_{k}.npy"), v.astype(np.float32))


if __name__ == "__main__":
    main()
