"""summarize.py: the tables of tests/device/run.sh's summary.

  summarize.py parity PARITY.LOG      worst errors per op from the parity tests'
                                      log lines ("WHAT: n=N max_abs=A max_rel=R
                                      nmse=E"), pass/fail counts, and whether
                                      attention was checked at T = 16, 64, 256,
                                      1024 (an op name carrying "T=16" etc.)
  summarize.py speed OURS.jsonl TORCH.jsonl   the speed table (below)

Speed: pairs records by name (tests/device/bench_cuda.c and bench/torch/*.py use the
same names; a torch name with a _compile suffix pairs with the plain name) and
prints a markdown table: ms, TFLOP/s and the speed ratio torch_ms / our_ms
(> 1 means ours is faster). Lines that are not JSON (errors) are listed.
Standard library only: runs under any python3.
"""
import json
import re
import sys


def load(path):
    recs, bad = {}, []
    try:
        lines = open(path).read().splitlines()
    except OSError as e:
        return recs, [str(e)]
    for ln in lines:
        ln = ln.strip()
        if not ln:
            continue
        try:
            r = json.loads(ln)
        except ValueError:
            bad.append(ln)
            continue
        if isinstance(r, dict) and "name" in r:
            recs[r["name"]] = r
    return recs, bad


def fmt(r, key):
    return "%.3f" % r[key] if r and key in r else "-"


LINE = re.compile(r"(?:\[----\]\s*)?(?:[^\s:]+\.c:\d+:\s*)?(.+?): n=(\d+) max_abs=(\S+) max_rel=(\S+) nmse=(\S+)")
ATTN_T = (16, 64, 256, 1024)


def parity(path):
    try:
        text = open(path, errors="replace").read()
    except OSError as e:
        print("    cannot read %s: %s" % (path, e))
        return 1
    worst = {}
    for ln in text.splitlines():
        m = LINE.search(ln)
        if not m:
            continue
        op = m.group(1).strip()
        try:
            vals = [float(m.group(k)) for k in (3, 4, 5)]
        except ValueError:
            continue
        w = worst.setdefault(op, [0, 0.0, 0.0, 0.0])
        w[0] += 1
        for k in range(3):
            if not vals[k] <= w[k + 1]:    # NaN counts as worst
                w[k + 1] = vals[k]
    passing = sum(int(x) for x in re.findall(r"Passing: *(\d+)", text))
    failing = sum(int(x) for x in re.findall(r"Failing: *(\d+)", text))
    crashing = sum(int(x) for x in re.findall(r"Crashing: *(\d+)", text))
    skipped = len(re.findall(r"^\[SKIP\]", text, re.M))
    print("tests: %d passed, %d failed, %d crashed, %d skipped" % (passing, failing, crashing, skipped))
    if not worst:
        print("no parity lines found")
    else:
        print("| op | checks | worst max_abs | worst max_rel | worst nmse |")
        print("| --- | --- | --- | --- | --- |")
        for op in sorted(worst):
            w = worst[op]
            print("| %s | %d | %.3g | %.3g | %.3g |" % (op, w[0], w[1], w[2], w[3]))
    attn = [op for op in worst if "attention" in op.lower() or "attn" in op.lower()]
    missing = [t for t in ATTN_T if not any(re.search(r"T=%d\b" % t, op) for op in attn)]
    print("attention checked at T = %s; NOT checked at T = %s" % (
        ", ".join(str(t) for t in ATTN_T if t not in missing) or "none",
        ", ".join(str(t) for t in missing) or "none"))
    return 0


def main():
    args = sys.argv[1:]
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if len(args) == 2 and args[0] == "parity":
        return parity(args[1])
    if len(args) != 3 or args[0] != "speed":
        print("usage: summarize.py parity LOG | summarize.py speed OURS.jsonl TORCH.jsonl (see --help)",
              file=sys.stderr)
        return 2
    ours, bad_o = load(args[1])
    torch, bad_t = load(args[2])
    for src in (ours, torch):
        for k in ("env", "bench_cuda", "torch"):
            if k in src:
                print("    %s" % json.dumps(src[k]))
    names = sorted(n for n in set(ours) | set(torch)
                   if n not in ("env", "bench_cuda", "torch", "dit_b1_params"))
    print("| op | ours ms | torch ms | ours TFLOP/s | torch TFLOP/s | speed ratio (torch/ours) | note |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for n in names:
        base = n[:-len("_compile")] if n.endswith("_compile") else n
        o = ours.get(base) if n != base else ours.get(n)
        if n != base and n in ours:
            continue
        t = torch.get(n)
        ratio = "-"
        if o and t and "ms" in o and "ms" in t and o["ms"] > 0:
            ratio = "%.2fx" % (t["ms"] / o["ms"])
        note = " ".join(str(x.get(k)) for x in (o, t) if x for k in ("note", "error") if k in x)
        label = n if n == base else n + " (torch.compile)"
        print("| %s | %s | %s | %s | %s | %s | %s |" % (label, fmt(o, "ms"), fmt(t, "ms"),
                                                        fmt(o, "tflops"), fmt(t, "tflops"),
                                                        ratio, note))
    if "dit_b1_params" in torch:
        print("\nLightningDiT-B/1 parameters (torch reference): %d" % torch["dit_b1_params"]["count"])
    for b in bad_o + bad_t:
        print("    unparsed: %s" % b[:200])


if __name__ == "__main__":
    sys.exit(main())
