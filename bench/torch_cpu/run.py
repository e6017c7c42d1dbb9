#!/usr/bin/env python3
"""run.py: times our CPU ops and model steps against PyTorch's on the same
shapes, interleaved in one run, and prints the comparison table.

Two worker processes per thread count, ours (build/bench/torch_cpu/ours,
bench/torch_cpu/ours.c) and PyTorch's (torch_worker.py under the benchmark
venv's python), answer `setup ROW` / `run K` / `rss` on a pipe. For each row
and thread count: one warm-up step each, K steps per sample chosen so a sample
lasts about --sample seconds, then --rounds samples alternating which side
goes first; each side's time is the median of its samples and the ratio is
ours / theirs (below 1: we are faster). Model rows (toy, vae, dit) get fresh
workers so the peak resident set (ru_maxrss) is that step's alone. While one
side runs the other waits on its pipe. Threads: OMP_NUM_THREADS,
OPENBLAS_NUM_THREADS, MKL_NUM_THREADS = N for both, plus
torch.set_num_threads(N). Load averages are recorded before and after.

The venv is for this benchmark only (bench/torch_cpu/setup_venv.sh makes
it; PyTorch is never a dependency of the project). Without it the run is
skipped with a message and exit status 0, so `make bench` works anywhere.

On a shared machine use --isolate: the kernel's autogroups share the CPU
between sessions, not processes, so `nice` does not keep other sessions'
processes off the cores; and with libgomp's default spin-wait (both sides
use OpenMP) a 2-thread run whose threads are queued behind others can be
10-30x slower, which measures the machine, not the code. --isolate runs the
comparison in a new session whose autogroup has nice -20 (needs root or
CAP_SYS_NICE); the header says whether it took effect.

Usage: run.py [--venv DIR] [--threads 1,2] [--rows SUBSTR,...] [--rounds N]
              [--sample S] [--lock FILE] [--ours PATH] [--isolate]
Exit: 0 (also when skipped), 1 runtime failure, 2 usage error.
"""
import argparse
import fcntl
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))

# (group, row, label). Groups are the summary table's lines.
ROWS = [
    ("sgemm", "sgemm", "sgemm 1024^3"),
    ("linear", "linear:4096:512:512", "toy MLP 512->512 N 4096"),
    ("linear", "linear:2048:768:2304", "DiT-B qkv 768->2304 N 2048"),
    ("linear", "linear:2048:768:768", "DiT-B proj 768->768 N 2048"),
    ("linear", "linear:2048:768:2048", "DiT-B SwiGLU 768->2048 N 2048"),
    ("linear", "linear:2048:2048:768", "DiT-B SwiGLU 2048->768 N 2048"),
    ("linear", "linear:8:768:4608", "DiT-B adaLN 768->4608 N 8"),
    ("conv", "conv:8:1:32:32:1", "f4c4 conv_in 1->32 32x32"),
    ("conv", "conv:8:32:32:32:1", "f4c4 32->32 32x32"),
    ("conv", "conv:8:32:32:32:2", "f4c4 down 32 32->16"),
    ("conv", "conv:8:32:16:64:1", "f4c4 32->64 16x16"),
    ("conv", "conv:8:64:16:64:1", "f4c4 64->64 16x16"),
    ("conv", "conv:8:64:16:64:2", "f4c4 down 64 16->8"),
    ("conv", "conv:8:64:8:64:1", "f4c4 64->64 8x8"),
    ("attention", "attn:4:256:12:64", "B 4 T 256 12x64"),
    ("attention", "attn:2:512:12:64", "B 2 T 512 12x64"),
    ("attention", "attn:1:1024:12:64", "B 1 T 1024 12x64"),
    ("toy", "toy", "toy flow step (4x128, batch 1024, Adam)"),
    ("vae", "vae", "VAE f4c4 step (batch 8, Adam)"),
    ("dit", "dit", "LightningDiT-S step (D 384, depth 12, 64 tokens, batch 16, AdamW)"),
]
GROUP_TITLES = {
    "sgemm": "sgemm 1024^3 (nn/cpu GEMM: own AVX-512 or OpenBLAS; vs MKL)",
    "linear": "linear fwd+bwd, bench shapes",
    "conv": "conv3x3 fwd+bwd, f4c4 shapes (batch 8)",
    "attention": "attention fwd+bwd, T 256-1024",
    "toy": "toy flow step (4x128, batch 1024, Adam)",
    "vae": "VAE f4c4 step (batch 8)",
    "dit": "LightningDiT step (D 384, depth 12, 64 tokens, batch 16)",
}
MODEL_GROUPS = ("toy", "vae", "dit")


class Worker:
    """One benchmark worker process speaking the setup/run/rss protocol."""

    def __init__(self, name, argv, threads):
        env = dict(os.environ)
        for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[k] = str(threads)
        env["CUDA_VISIBLE_DEVICES"] = ""
        self.name = name
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, env=env, cwd=HERE)

    def ask(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline().strip()
        if not line or line.startswith("error"):
            raise RuntimeError("%s worker: '%s' -> %s" % (self.name, cmd, line or "no answer"))
        return line

    def run(self, k):
        return float(self.ask("run %d" % k).split()[1]) / k

    def rss_mib(self):
        return int(self.ask("rss").split()[1]) / 1024.0

    def close(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.close()
        except OSError:
            pass
        self.p.wait(timeout=60)


def measure(workers, row, rounds, sample):
    """Median seconds per step of each worker on row, interleaved."""
    for w in workers:
        w.ask("setup " + row)
    ks = []
    for w in workers:
        w.run(1)                      # warm-up: page faults, library buffers
        t = w.run(1)
        ks.append(max(1, min(1000, int(round(sample / max(t, 1e-6))))))
    times = [[] for _ in workers]
    for r in range(rounds):
        order = range(len(workers)) if r % 2 == 0 else reversed(range(len(workers)))
        for i in order:
            times[i].append(workers[i].run(ks[i]))
    return [statistics.median(t) for t in times]


class Lock:
    """Optional exclusive flock on a shared file around each measurement."""

    def __init__(self, path):
        self.f = open(path, "a") if path else None

    def __enter__(self):
        if self.f:
            fcntl.flock(self.f, fcntl.LOCK_EX)

    def __exit__(self, *a):
        if self.f:
            fcntl.flock(self.f, fcntl.LOCK_UN)


def isolate():
    """Forks; the child goes on in a new session with autogroup nice -20 and
    returns a description, the parent waits and exits with its status."""
    pid = os.fork()
    if pid:
        _, st = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(st))
    os.setsid()
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write("-20")
        return "own session, autogroup nice -20"
    except OSError as e:
        return "NOT isolated (autogroup nice -20: %s)" % e.strerror


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def isa():
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((l for l in f if l.startswith("flags")), "").split()
    except OSError:
        return "?"
    return "avx512f" if "avx512f" in flags else "avx2" if "avx2" in flags else "sse"


def fmt_range(vals):
    lo, hi = min(vals), max(vals)
    return "%.2f" % lo if abs(hi - lo) < 0.005 else "%.2f-%.2f" % (lo, hi)


def main():
    ap = argparse.ArgumentParser(description="ours vs PyTorch on the CPU, interleaved; "
                                 "see the header of bench/torch_cpu/run.py")
    ap.add_argument("--venv", default=os.environ.get("VEL_BENCH_VENV", "/work/venv-bench"),
                    help="benchmark venv with torch (default $VEL_BENCH_VENV or /work/venv-bench)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (1,2)")
    ap.add_argument("--rows", default="", help="comma-separated substrings of rows or groups")
    ap.add_argument("--rounds", type=int, default=5, help="samples per side (5)")
    ap.add_argument("--sample", type=float, default=0.25, help="seconds per sample (0.25)")
    ap.add_argument("--lock", default="", help="flock this file around each row's timing")
    ap.add_argument("--ours", default=os.path.join(ROOT, "build", "bench", "torch_cpu", "ours"))
    ap.add_argument("--isolate", action="store_true",
                    help="run in a new session whose autogroup has nice -20 (root)")
    a = ap.parse_args()
    try:
        threads = [int(t) for t in a.threads.split(",")]
        if any(t < 1 or t > 256 for t in threads):
            raise ValueError
    except ValueError:
        ap.error("--threads wants positive integers like 1,2")
    if a.rounds < 1 or a.rounds > 100 or not 0.01 <= a.sample <= 10:
        ap.error("--rounds must be 1..100 and --sample 0.01..10")
    pats = [p for p in a.rows.split(",") if p]
    rows = [r for r in ROWS if not pats or any(p in r[0] or p in r[1] for p in pats)]
    if not rows:
        ap.error("--rows matches no row")

    py = os.path.join(a.venv, "bin", "python")
    probe = subprocess.run([py, "-c", "import torch; print(torch.__version__)"],
                           capture_output=True, text=True) if os.path.exists(py) else None
    if probe is None or probe.returncode != 0:
        print("torch_cpu: skipped: no PyTorch in %s (bench/torch_cpu/setup_venv.sh creates "
              "it; the comparison needs it, nothing else does)" % a.venv)
        return 0
    if not os.access(a.ours, os.X_OK):
        print("torch_cpu: %s is missing: run `make %s` first" % (a.ours, os.path.relpath(a.ours, ROOT)),
              file=sys.stderr)
        return 1
    iso = isolate() if a.isolate else "not isolated (no --isolate)"
    tver = probe.stdout.strip()
    print("# ours vs PyTorch %s on the CPU (%s, %s, %d cores)" % (tver, cpu_model(), isa(),
                                                                  os.cpu_count()))
    load0 = os.getloadavg()
    print("# load average at start: %.2f %.2f %.2f; %s" % (load0 + (iso,)))
    print("# medians of %d interleaved samples of ~%.2f s per side; ratio = ours / PyTorch\n"
          % (a.rounds, a.sample))
    print("| row | threads | ours ms | PyTorch ms | ratio | peak RSS ours / PyTorch MiB |")
    print("|---|---|---|---|---|---|")
    res = {}   # (group, threads) -> list of ratios; rss[(group, threads)]
    rss = {}
    lock = Lock(a.lock)
    t_start = time.time()
    try:
        for n in threads:
            shared = None
            for group, row, label in rows:
                fresh = group in MODEL_GROUPS
                if fresh or shared is None:
                    ws = [Worker("ours", [a.ours], n),
                          Worker("torch", [py, os.path.join(HERE, "torch_worker.py"),
                                           "--threads", str(n)], n)]
                    if not fresh:
                        shared = ws
                else:
                    ws = shared
                with lock:
                    t_ours, t_torch = measure(ws, row, a.rounds, a.sample)
                ratio = t_ours / t_torch
                res.setdefault((group, n), []).append(ratio)
                mem = ""
                if fresh:
                    rss[(group, n)] = (ws[0].rss_mib(), ws[1].rss_mib())
                    mem = "%.0f / %.0f" % rss[(group, n)]
                    for w in ws:
                        w.close()
                print("| %s | %d | %.3f | %.3f | %.2f | %s |" % (label, n, t_ours * 1e3,
                                                                t_torch * 1e3, ratio, mem),
                      flush=True)
            if shared:
                for w in shared:
                    w.close()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        print("torch_cpu: %s" % e, file=sys.stderr)
        return 1
    load1 = os.getloadavg()
    print("\n| step | %s | note |" % " | ".join("%d thread%s" % (n, "s" if n > 1 else "")
                                             for n in threads))
    print("|---|%s---|" % ("---|" * len(threads)))
    for g in GROUP_TITLES:
        if not any((g, n) in res for n in threads):
            continue
        cells = [fmt_range(res[(g, n)]) if (g, n) in res else "" for n in threads]
        note = ""
        if g in MODEL_GROUPS:
            last = max(n for n in threads if (g, n) in rss)
            note = "peak RSS %.0f vs %.0f MiB (%d threads)" % (rss[(g, last)] + (last,))
        print("| %s | %s | %s |" % (GROUP_TITLES[g], " | ".join(cells), note))
    print("\n# load average at end: %.2f %.2f %.2f; %.0f s" % (load1 + (time.time() - t_start,)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
