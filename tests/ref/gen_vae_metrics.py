#!/usr/bin/env python3
"""gen_vae_metrics.py OUTDIR: PSNR and SSIM references for
metrics/image.c, from the definitions (Wang et al. 2004: 11x11
Gaussian sigma 1.5, K1 0.01, K2 0.03, L 255, 'valid' window positions) with
scipy.signal.correlate2d. Images are saved as floats in [-1, 1] that map
exactly to the uint8 values used (v/127.5 - 1). numpy/scipy only, seeded.
"""
import os
import sys

import numpy as np
from scipy.signal import correlate2d


def ssim(a, b):
    g = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5 ** 2))
    w = np.outer(g, g)
    w /= w.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    vals = []
    for c in range(a.shape[0]):
        x, y = a[c].astype(np.float64), b[c].astype(np.float64)
        f = lambda z: correlate2d(z, w, mode="valid")
        mx, my = f(x), f(y)
        vx, vy, cxy = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
        m = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        vals.append(m.mean())
    return np.mean(vals)


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / mse)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.RandomState(3)
    res = []
    for i, (c, h, w) in enumerate([(1, 32, 32), (3, 24, 17), (3, 11, 11)]):
        a = rng.randint(0, 256, size=(c, h, w))
        b = np.clip(a + rng.randint(-30, 31, size=a.shape), 0, 255)
        np.save(os.path.join(out, f"m{i}_x.npy"), (a / 127.5 - 1).astype(np.float32))
        np.save(os.path.join(out, f"m{i}_y.npy"), (b / 127.5 - 1).astype(np.float32))
        np.save(os.path.join(out, f"m{i}_shape.npy"), np.array([c, h, w], np.int32))
        np.save(os.path.join(out, f"m{i}_psnr_ssim.npy"), np.array([psnr(a, b), ssim(a, b)]))


if __name__ == "__main__":
    main()
