#!/usr/bin/env python3
"""gen_frechet.py OUTDIR: references for metrics/frechet.c.

Two seeded feature sets with correlated dimensions; their mean, unbiased
covariance (numpy.cov) and the Frechet distance computed the way
pytorch-fid's calculate_frechet_distance does (scipy.linalg.sqrtm of S1 S2,
real part), so the C eigen-based trace is checked against an independent
method. numpy/scipy only.
"""
import os
import sys

import numpy as np
import scipy.linalg


def fid_sqrtm(mu1, s1, mu2, s2):
    diff = mu1 - mu2
    covmean, _ = scipy.linalg.sqrtm(s1.dot(s2), disp=False)
    if not np.isfinite(covmean).all():
        raise SystemExit("sqrtm not finite: pick better-conditioned data")
    covmean = covmean.real
    return diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.RandomState(1234)
    for name, n1, n2, d in (("small", 300, 250, 24), ("wide", 1500, 1200, 96)):
        a = rng.randn(d, d) / np.sqrt(d)
        b = a + 0.3 * rng.randn(d, d) / np.sqrt(d)
        f1 = (rng.randn(n1, d) @ a + 0.5).astype(np.float32)
        f2 = (1.3 * rng.randn(n2, d) @ b + 0.2 + 3.0).astype(np.float32)
        f1d, f2d = f1.astype(np.float64), f2.astype(np.float64)
        mu1, mu2 = f1d.mean(0), f2d.mean(0)
        s1, s2 = np.cov(f1d, rowvar=False), np.cov(f2d, rowvar=False)
        np.save(os.path.join(out, f"{name}_f1.npy"), f1)
        np.save(os.path.join(out, f"{name}_f2.npy"), f2)
        np.save(os.path.join(out, f"{name}_mu1.npy"), mu1)
        np.save(os.path.join(out, f"{name}_cov1.npy"), s1)
        np.save(os.path.join(out, f"{name}_fid.npy"), np.array([fid_sqrtm(mu1, s1, mu2, s2)]))
        np.save(os.path.join(out, f"{name}_fid_self.npy"), np.array([fid_sqrtm(mu1, s1, mu1, s1)]))


if __name__ == "__main__":
    main()
