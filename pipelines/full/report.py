#!/usr/bin/python3
"""report.py OUT [--preset P] [--seeds N]: the report of pipelines/full.sh.

Reads what the stages wrote under OUT (tok-ARM/eval/report.json from eval
--model vae, gen-ARM-sS-MODE/report.json from eval --model images,
dit-ARM-sS/log.jsonl and tok-ARM/log.jsonl from train, classifier/report.json,
config.json and timings.tsv from full.sh) and writes OUT/report.json,
OUT/report.md and OUT/loss_curves.png (tokenizer L1 and DiT loss vs step, KL
vs VE). A metric a stage did not write is null in the JSON and "n/a" in the
table; nothing is invented. Debian python3 + PIL only.
"""
import json
import math
import os
import statistics
import sys

ARMS = ["kl", "ve"]
MODES = ["nocfg", "cfg"]
GEN_KEYS = ["fid", "sfid", "is", "precision_k3", "recall_k3"]


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def log_lines(path):
    rows = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    pass
    except OSError:
        pass
    return rows


def finite(x):
    return isinstance(x, (int, float)) and math.isfinite(x)


def agg(values):
    """mean and sample std over seeds (std None with one seed)."""
    v = [x for x in values if finite(x)]
    if not v:
        return {"mean": None, "std": None, "n": 0, "per_seed": values}
    return {"mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else None,
            "n": len(v), "per_seed": values}


def fmt(a, digits=3):
    if a is None or a.get("mean") is None:
        return "n/a"
    s = f"{a['mean']:.{digits}f}"
    if a.get("std") is not None:
        s += f" ± {a['std']:.{digits}f}"
    return s


def num(x, digits=3):
    return f"{x:.{digits}f}" if finite(x) else "n/a"


def curve(rows, key):
    return [(r["step"], r[key]) for r in rows if "step" in r and finite(r.get(key))]


def plot_curves(path, panels):
    """panels: [(title, {label: [(x, y)]})] -> one PNG, log-scale y, one panel each."""
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        return False
    W, H, pad = 640, 360, 50
    img = Image.new("RGB", (W, H * len(panels)), "white")
    d = ImageDraw.Draw(img)
    colours = {"KL": (200, 40, 40), "VE": (30, 80, 200)}
    for p, (title, series) in enumerate(panels):
        y0 = p * H
        pts = [(x, y) for s in series.values() for (x, y) in s if y > 0]
        d.text((pad, y0 + 10), title, fill="black")
        if not pts:
            d.text((pad, y0 + H // 2), "no data", fill="black")
            continue
        xmax = max(x for x, _ in pts) or 1
        ly = [math.log10(y) for _, y in pts]
        lo, hi = min(ly), max(ly)
        if hi - lo < 1e-9:
            lo, hi = lo - 0.5, hi + 0.5
        box = (pad, y0 + 30, W - 20, y0 + H - 40)
        d.rectangle(box, outline="black")
        d.text((pad, y0 + H - 30), f"step 0 .. {xmax}   y: log10 {lo:.2f} .. {hi:.2f}", fill="black")

        def px(x, y):
            return (box[0] + (box[2] - box[0]) * x / xmax,
                    box[3] - (box[3] - box[1]) * (math.log10(y) - lo) / (hi - lo))
        for i, (label, s) in enumerate(series.items()):
            c = colours.get(label.split()[0], (0, 0, 0))
            xy = [px(x, y) for x, y in s if y > 0]
            if len(xy) > 1:
                d.line(xy, fill=c, width=2)
            d.text((box[2] - 120, box[1] + 8 + 14 * i), label, fill=c)
    img.save(path)
    return True


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        print("usage: report.py OUT [--preset P] [--seeds N]", file=sys.stderr)
        return 2
    out = args[0]
    cfg = load(os.path.join(out, "config.json")) or {}
    seeds = int(cfg.get("seeds", 1))
    if "--seeds" in args:
        seeds = int(args[args.index("--seeds") + 1])
    cls = load(os.path.join(out, "classifier", "report.json")) or {}
    rep = {"preset": cfg.get("preset"), "seeds": list(range(seeds)), "budget": cfg,
           "classifier_test_accuracy": cls.get("test_accuracy"), "arms": {}}
    features = None
    for arm in ARMS:
        tok = load(os.path.join(out, f"tok-{arm}", "eval", "report.json")) or {}
        a = {"tokenizer": {
            "psnr": tok.get("psnr"), "ssim": tok.get("ssim"),
            "rfid": tok.get("frechet_classifier_features"),
            "rfid_features": tok.get("frechet_note"),
            "mean_sigma": tok.get("mean_sigma"), "sigma_over_latent_std": tok.get("sigma_over_latent_std"),
            "robustness": tok.get("robustness"), "n_images": tok.get("n_images")},
            "generation": {}, "dit_final_loss": None}
        for mode in MODES:
            per = {k: [] for k in GEN_KEYS}
            n_images, dups = [], []
            for s in range(seeds):
                g = load(os.path.join(out, f"gen-{arm}-s{s}-{mode}", "report.json")) or {}
                m = g.get("metrics") or {}
                features = features or m.get("features")
                for k in GEN_KEYS:
                    per[k].append(m.get(k))
                n_images.append(g.get("n_images"))
                dups.append(g.get("duplicates_dropped"))
            a["generation"][mode] = {k: agg(v) for k, v in per.items()}
            a["generation"][mode]["n_images"] = n_images
            a["generation"][mode]["duplicates_dropped"] = dups
        losses = []
        for s in range(seeds):
            rows = log_lines(os.path.join(out, f"dit-{arm}-s{s}", "log.jsonl"))
            tail = [r["loss"] for r in rows[-10:] if finite(r.get("loss"))]
            losses.append(statistics.fmean(tail) if tail else None)
        a["dit_final_loss"] = agg(losses)
        rep["arms"][arm] = a
    rep["features"] = features
    wall = 0
    try:
        with open(os.path.join(out, "timings.tsv")) as f:
            rep["timings"] = [line.rstrip("\n").split("\t") for line in f if line.strip()]
        wall = sum(int(t[1]) for t in rep["timings"])
    except (OSError, ValueError, IndexError):
        rep["timings"] = []
    rep["step_seconds_total"] = wall

    panels = [("TOKENIZER L1 VS STEP (LOG)", {f"{arm.upper()}": curve(log_lines(
                   os.path.join(out, f"tok-{arm}", "log.jsonl")), "l1") for arm in ARMS}),
              ("DIT LOSS (MSE+COS) VS STEP, SEED 0 (LOG)", {f"{arm.upper()}": curve(log_lines(
                   os.path.join(out, f"dit-{arm}-s0", "log.jsonl")), "loss") for arm in ARMS})]
    rep["loss_curves"] = "loss_curves.png" if plot_curves(os.path.join(out, "loss_curves.png"), panels) else None
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(rep, f, indent=1)

    b = cfg
    L = [f"# KL vs VE tokenizer, LightningDiT on Fashion-MNIST ({b.get('preset')} preset)", ""]
    L.append(f"Budget: tokenizers {b.get('tok_steps')} steps x {b.get('tok_batch')} images; cache of the first "
             f"{b.get('encode_n')} training images; DiT {b.get('dit_preset')} {b.get('dit_steps')} steps x "
             f"{b.get('dit_batch')} (lr {b.get('dit_lr')}), seeds {', '.join(map(str, range(seeds)))}; "
             f"{b.get('n_samples')} samples per arm and mode, Euler {b.get('sample_steps')} steps, CFG "
             f"{b.get('cfg')} on t in [{b.get('cfg_lo')}, {b.get('cfg_hi')}].")
    L.append("")
    L.append(f"Every FID-like number here uses **{features or 'classifier features'}**: the project's own "
             f"Fashion-MNIST classifier (test accuracy {num(cls.get('test_accuracy'), 4)}), 64-d pooled "
             "features (sFID: its spatial features), not Inception, so no number is comparable to a paper's.")
    L.append("")
    L.append("| arm | PSNR | SSIM | rFID | gFID w/o CFG | gFID CFG | sFID | IS | precision | recall |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for arm in ARMS:
        t, g = rep["arms"][arm]["tokenizer"], rep["arms"][arm]["generation"]
        c = g["cfg"]
        L.append(f"| {arm.upper()} | {num(t['psnr'], 2)} | {num(t['ssim'])} | {num(t['rfid'])} | "
                 f"{fmt(g['nocfg']['fid'])} | {fmt(c['fid'])} | {fmt(c['sfid'])} | {fmt(c['is'])} | "
                 f"{fmt(c['precision_k3'])} | {fmt(c['recall_k3'])} |")
    L.append("")
    L.append("sFID, IS, precision and recall (k = 3) are of the CFG samples; without CFG:")
    L.append("")
    L.append("| arm | gFID | sFID | IS | precision | recall | DiT final loss |")
    L.append("|---|---|---|---|---|---|---|")
    for arm in ARMS:
        g = rep["arms"][arm]["generation"]["nocfg"]
        L.append(f"| {arm.upper()} | {fmt(g['fid'])} | {fmt(g['sfid'])} | {fmt(g['is'])} | "
                 f"{fmt(g['precision_k3'])} | {fmt(g['recall_k3'])} | {fmt(rep['arms'][arm]['dit_final_loss'])} |")
    L.append("")
    L.append("Per seed gFID (w/o CFG / CFG): " + "; ".join(
        f"{arm.upper()} " + ", ".join(f"s{s} {num(rep['arms'][arm]['generation']['nocfg']['fid']['per_seed'][s])}"
                                      f" / {num(rep['arms'][arm]['generation']['cfg']['fid']['per_seed'][s])}"
                                      for s in range(seeds)) for arm in ARMS) + ".")
    L.append("")
    L.append("Robustness (decode(mu + s * eps * std_c); PSNR / rFID):")
    L.append("")
    for arm in ARMS:
        rob = rep["arms"][arm]["tokenizer"]["robustness"] or []
        L.append(f"- {arm.upper()}: " + ", ".join(
            f"s {r.get('scale')}: {num(r.get('psnr'), 2)} dB / {num(r.get('frechet_classifier_features'))}"
            for r in rob))
    L.append("")
    L.append("Figures: robustness.png (robustness curves), loss_curves.png (tokenizer L1 and DiT loss), "
             "gen-ARM-sS-MODE/grid_class_K.png (samples per class), dit-ARM-sS/loss.png and samples-*.png, "
             "tok-ARM/eval/recon.png. Samples: gen-*/samples.npz (ADM layout).")
    L.append("")
    L.append(f"Unit wall times are in timings.tsv (with the load average at the end of each); their sum, {wall} s, counts the two arms of side-by-side steps twice.")
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(L) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
