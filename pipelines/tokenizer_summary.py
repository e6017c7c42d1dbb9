#!/usr/bin/python3
"""tokenizer_summary.py [--max-step N] OUT ARM_DIR_PREFIX LABEL... : the seed-aggregated
tables of pipelines/tokenizer.sh (Python standard library only).

For each LABEL (an arm: kl, ve, rgb-kl, ...) it reads every
OUT/ARM_DIR_PREFIX-LABEL-s*/ run: eval/report.json (reconstruction, sigma,
robustness probe) and log.jsonl (mean sigma over training). It prints, and
writes to OUT/summary.md and OUT/summary.json:
  1. mean +- sample std over seeds of PSNR, SSIM, classifier-feature
     Frechet, mean sigma, sigma / latent std, and the probe PSNR per scale;
  2. the sigma curve: mean sigma (mean over seeds) at a few training steps;
  3. whether sigma has stopped moving: the change of log(mean sigma) over
     the last fifth of training, per 1000 steps. "stopped" when the last
     fifth moved it by less than 5% (|d log sigma| < 0.05).
--max-step N reads the logs only up to step N (when the evaluated weights are
a checkpoint taken at step N of a run that went on).
"""
import glob
import json
import math
import os
import re
import statistics as st
import sys

STOP = 0.05   # |change of log sigma| over the last fifth of training


def mean_std(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return (st.mean(vals), st.stdev(vals) if len(vals) > 1 else 0.0, len(vals))


def fmt(ms, digits=4):
    if ms is None:
        return "-"
    m, s, n = ms
    return f"{m:.{digits}g}" + (f" ± {s:.2g}" if n > 1 else "")


def read_log(path, max_step):
    """Training log lines with a mean_sigma up to max_step, as (step, sigma, l1)."""
    rows = []
    if not os.path.exists(path):
        return rows
    for line in open(path):
        line = line.strip()
        if not line:
            continue
        d = json.loads(line)
        if "mean_sigma" in d and (max_step is None or d["step"] <= max_step):
            rows.append((d["step"], d["mean_sigma"], d.get("l1")))
    return rows


def sigma_drift(rows):
    """(last step, d log sigma over the last fifth, per 1000 steps) or None."""
    if len(rows) < 5:
        return None
    last = rows[-1]
    cut = last[0] * 0.8
    first = min(rows, key=lambda r: abs(r[0] - cut))
    if first[0] >= last[0] or first[1] <= 0 or last[1] <= 0:
        return None
    d = math.log(last[1] / first[1])
    return last[0], d, d * 1000.0 / (last[0] - first[0])


def main():
    args, max_step = sys.argv[1:], None
    if len(args) >= 2 and args[0] == "--max-step":
        if not args[1].isdigit():
            print("tokenizer_summary.py: --max-step needs a step number", file=sys.stderr)
            return 2
        max_step, args = int(args[1]), args[2:]
    if len(args) < 3:
        print("usage: tokenizer_summary.py [--max-step N] OUT ARM_DIR_PREFIX LABEL...", file=sys.stderr)
        return 2
    out, prefix, labels = args[0], args[1], args[2:]
    summary, table, curves, drift = {}, [], {}, []
    scales = None
    for lab in labels:
        runs = sorted(glob.glob(os.path.join(out, f"{prefix}-{lab}-s*")),
                      key=lambda p: int(re.sub(r".*-s", "", p)))
        reps = []
        for r in runs:
            p = os.path.join(r, "eval", "report.json")
            if os.path.exists(p):
                reps.append(json.load(open(p)))
        logs = [read_log(os.path.join(r, "log.jsonl"), max_step) for r in runs]
        if not reps:
            continue
        if scales is None:
            scales = [x["scale"] for x in reps[0].get("robustness", [])]
        ent = {k: mean_std([r.get(k) for r in reps]) for k in
               ("psnr", "ssim", "frechet_classifier_features", "mean_sigma", "sigma_over_latent_std")}
        for i, s in enumerate(scales):
            ent[f"probe_psnr_{s:g}"] = mean_std([r["robustness"][i]["psnr"] for r in reps
                                                if len(r.get("robustness", [])) > i])
            ent[f"probe_frechet_{s:g}"] = mean_std([r["robustness"][i].get("frechet_classifier_features")
                                                   for r in reps if len(r.get("robustness", [])) > i])
        summary[lab] = {k: (None if v is None else {"mean": v[0], "std": v[1], "n": v[2]})
                        for k, v in ent.items()}
        summary[lab]["seeds"] = len(reps)
        table.append((lab, len(reps), ent))
        # sigma curve: mean over the seeds that logged each step
        by_step = {}
        for rows in logs:
            for step, sig, _ in rows:
                by_step.setdefault(step, []).append(sig)
        curves[lab] = {s: st.mean(v) for s, v in sorted(by_step.items())}
        summary[lab]["sigma_curve"] = curves[lab]
        for r, rows in zip(runs, logs):
            d = sigma_drift(rows)
            if d:
                drift.append((lab, os.path.basename(r), d))
                summary[lab].setdefault("sigma_drift", []).append(
                    {"run": os.path.basename(r), "last_step": d[0], "dlog_last_fifth": d[1],
                     "dlog_per_1000": d[2], "stopped": abs(d[1]) < STOP})
    if not table:
        print("tokenizer_summary.py: no eval reports found", file=sys.stderr)
        return 1
    scales = scales or []
    hdr = ["arm", "seeds", "PSNR", "SSIM", "Frechet (classifier feats)", "mean sigma", "sigma / latent std"] + \
          [f"probe PSNR s={s:g}" for s in scales]
    lines = ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    for lab, n, ent in table:
        cells = [lab, str(n), fmt(ent["psnr"]), fmt(ent["ssim"], 3), fmt(ent["frechet_classifier_features"], 3),
                 fmt(ent["mean_sigma"], 3), fmt(ent["sigma_over_latent_std"], 3)] + \
                [fmt(ent[f"probe_psnr_{s:g}"]) for s in scales]
        lines.append("| " + " | ".join(cells) + " |")
    if any(ent.get(f"probe_frechet_{s:g}") for _, _, ent in table for s in scales):
        lines += ["", "| arm | " + " | ".join(f"probe Frechet s={s:g}" for s in scales) + " |",
                  "|---|" + "---|" * len(scales)]
        for lab, n, ent in table:
            lines.append(f"| {lab} | " + " | ".join(fmt(ent[f"probe_frechet_{s:g}"], 3) for s in scales) + " |")
    # the sigma curve at up to 8 evenly spread logged steps common to all arms
    common = sorted(set.intersection(*(set(c) for c in curves.values()))) if curves else []
    if common:
        pick = sorted({common[min(len(common) - 1, round(i * (len(common) - 1) / 7))] for i in range(8)})
        lines += ["", "Mean sigma during training (mean over seeds):", "",
                  "| step | " + " | ".join(curves) + " |", "|---|" + "---|" * len(curves)]
        for s in pick:
            lines.append(f"| {s} | " + " | ".join(f"{curves[lab][s]:.4g}" for lab in curves) + " |")
    if drift:
        lines += ["", f"Has sigma stopped moving? Change of log(mean sigma) over the last fifth of "
                  f"training; stopped when |change| < {STOP}:", "",
                  "| run | last step | d log sigma (last fifth) | per 1000 steps | stopped |", "|---|---|---|---|---|"]
        for lab, run, (last, d, per) in drift:
            lines.append(f"| {run} | {last} | {d:+.3f} | {per:+.3f} | {'yes' if abs(d) < STOP else 'no'} |")
    txt = "\n".join(lines)
    print(txt)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(txt + "\n")
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
