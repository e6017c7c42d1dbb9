#!/usr/bin/env python3
"""gen_metrics.py OUTDIR: references for metrics/inception_score.c and
metrics/precision_recall.c (numpy only).

- Inception Score: ADM's evaluator formula (guided-diffusion
  evaluations/evaluator.py compute_inception_score) on seeded logits:
  softmax, splits of split_size in order (the last one shorter), per split
  exp(mean KL(p_i || mean p)), then the mean over splits.
- Precision/recall: a plain numpy k-NN reference (Kynkaanniemi et al.,
  k = 3 as ADM): float64 squared distances of the float32 features, radius =
  k-th nearest other point of the own set, precision = share of fake points
  inside some real ball, recall = the converse. The C code computes distances
  with float GEMMs, so the data are chosen (seed loop below) with no distance
  within 2e-6 (relative; float GEMM error is ~3e-7) of a radius it is compared against and no near-tie
  at the k-th neighbour: the exact counts must then agree.
"""
import os
import sys

import numpy as np


def inception_score(logits, split_size):
    x = logits.astype(np.float64)
    x = x - x.max(1, keepdims=True)
    preds = np.exp(x) / np.exp(x).sum(1, keepdims=True)
    scores = []
    for i in range(0, len(preds), split_size):
        part = preds[i:i + split_size]
        kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))
        kl = np.mean(np.sum(kl, 1))
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


def dist2(a, b):
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)


def radii(x, k):
    d = dist2(x, x)
    np.fill_diagonal(d, np.inf)
    s = np.sort(d, axis=1)
    return s[:, k - 1], s


def pr_case(rng, nr, nf, dim, k, shift, margin=2e-6):
    while True:
        real = rng.randn(nr, dim).astype(np.float32)
        fake = (1.1 * rng.randn(nf, dim) + shift).astype(np.float32)
        rr, sr = radii(real, k)
        rf, sf = radii(fake, k)
        # no near-tie between the (k-1)-th, k-th and (k+1)-th neighbours
        ok = True
        for s, r in ((sr, rr), (sf, rf)):
            ok &= np.all(np.abs(s[:, k - 2] - r) > margin * r) and np.all(np.abs(s[:, k] - r) > margin * r)
        d = dist2(real, fake)   # (nr, nf)
        ok &= np.all(np.abs(d - rr[:, None]) > margin * rr[:, None])
        ok &= np.all(np.abs(d - rf[None, :]) > margin * rf[None, :])
        if ok:
            precision = np.mean(np.any(d <= rr[:, None], axis=0))
            recall = np.mean(np.any(d <= rf[None, :], axis=1))
            return real, fake, rr, precision, recall


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.RandomState(20261206)
    # IS: 1237 rows so splits of 500 leave a short last split of 237.
    logits = (rng.randn(1237, 17) * 3.0).astype(np.float32)
    logits[:, 3] += 2.0 * rng.rand(1237).astype(np.float32)   # uneven marginal
    np.save(os.path.join(out, "is_logits.npy"), logits)
    np.save(os.path.join(out, "is_split500.npy"), np.array(inception_score(logits, 500)))
    np.save(os.path.join(out, "is_whole.npy"), np.array(inception_score(logits, 5000)))
    # Peaked logits over 1008 classes (ADM's class count), 4 splits of 30.
    big = (rng.randn(120, 1008) * 8.0).astype(np.float32)
    np.save(os.path.join(out, "is_big_logits.npy"), big)
    np.save(os.path.join(out, "is_big_split30.npy"), np.array(inception_score(big, 30)))
    for name, nr, nf, dim, shift in (("pr_small", 200, 180, 16, 0.4), ("pr_wide", 300, 260, 64, 0.15)):
        real, fake, rr, p, r = pr_case(rng, nr, nf, dim, 3, shift)
        np.save(os.path.join(out, f"{name}_real.npy"), real)
        np.save(os.path.join(out, f"{name}_fake.npy"), fake)
        np.save(os.path.join(out, f"{name}_radii.npy"), rr)
        np.save(os.path.join(out, f"{name}_pr.npy"), np.array([p, r]))


if __name__ == "__main__":
    main()
