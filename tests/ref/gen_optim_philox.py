#!/usr/bin/env python3
"""Independent numpy/Python reference for core/philox.h's contract
(Philox4x32-10 with the Random123 constants, then the uniform and
Box-Muller normal derivations), written from the header's description.

Usage: gen_optim_philox.py OUTDIR   (Debian /usr/bin/python3 with numpy).
Writes, for a few (seed, stream, offset) triples, the raw u32 words (as
float64, exact), uniforms and normals (float32 rounded from float64) that
test_philox.c compares bit for bit. This is the check a CUDA port can reuse.
"""
import math
import os
import sys

import numpy as np

M0, M1 = 0xD2511F53, 0xCD9E8D57
W0, W1 = 0x9E3779B9, 0xBB67AE85
MASK = 0xFFFFFFFF


def philox(ctr, key):
    c0, c1, c2, c3 = ctr
    k0, k1 = key
    for r in range(10):
        if r:
            k0 = (k0 + W0) & MASK
            k1 = (k1 + W1) & MASK
        p0 = M0 * c0
        p1 = M1 * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0) & MASK, p1 & MASK, ((p0 >> 32) ^ c3 ^ k1) & MASK, p0 & MASK
    return [c0, c1, c2, c3]


def block(seed, stream, b):
    return philox([b & MASK, b >> 32, stream, 0], [seed & MASK, seed >> 32])


def draws(seed, stream, offset, n):
    words, uni, nrm = [], [], []
    for i in range(offset, offset + n):
        x = block(seed, stream, i // 4)
        lane = i % 4
        words.append(x[lane])
        uni.append(np.float32((x[lane] >> 8) * 2.0 ** -24))
        j = lane & ~1
        u1 = ((x[j] >> 8) + 1) * 2.0 ** -24
        u2 = (x[j + 1] >> 8) * 2.0 ** -24
        r = math.sqrt(-2.0 * math.log(u1))
        th = 2.0 * math.pi * u2
        nrm.append(np.float32(r * math.cos(th) if lane == j else r * math.sin(th)))
    return words, uni, nrm


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    # (seed, stream, offset, n): offsets not multiples of 4, 64-bit seeds and blocks
    cases = [(0, 0, 0, 1024), (0x299F31D0A4093822, 7, 3, 1021), (12345, 0xFFFFFFFF, (1 << 34) + 1, 513)]
    np.save(f"{out}/cases.npy", np.array([[c[0] >> 32, c[0] & MASK, c[1], c[2] >> 32, c[2] & MASK, c[3]]
                                          for c in cases], dtype=np.float64))
    for k, (seed, stream, offset, n) in enumerate(cases):
        w, u, z = draws(seed, stream, offset, n)
        np.save(f"{out}/words_{k}.npy", np.array(w, dtype=np.float64))
        np.save(f"{out}/uniform_{k}.npy", np.array(u, dtype=np.float32))
        np.save(f"{out}/normal_{k}.npy", np.array(z, dtype=np.float32))


if __name__ == "__main__":
    main()
