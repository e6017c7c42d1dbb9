"""summarize.py OURS.jsonl TORCH.jsonl: the speed table of the device run.
Pairs records by name (tests/device/bench_cuda.c and bench/torch/*.py use the
same names; a torch name with a _compile suffix pairs with the plain name) and
prints a markdown table: ms, TFLOP/s and the speed ratio torch_ms / our_ms
(> 1 means ours is faster). Lines that are not JSON (errors) are listed.
Standard library only: runs under any python3.
"""
import json
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


def main():
    if len(sys.argv) != 3 or sys.argv[1] in ("-h", "--help"):
        print("usage: summarize.py OURS.jsonl TORCH.jsonl  (prints the markdown speed table)")
        return 0 if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help") else 2
    ours, bad_o = load(sys.argv[1])
    torch, bad_t = load(sys.argv[2])
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
