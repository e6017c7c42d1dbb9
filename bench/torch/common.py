"""common.py: timing and output helpers for the PyTorch reference benchmarks
run by tests/device/run.sh on the GPU machine. Each benchmark prints one JSON
object per line: {"name", "ms", "flops", "tflops", "items_per_s", "note"}.
Timing: CUDA events around `iters` calls after `warmup` calls, median of
`repeats` such windows. Not a library of the project: PyTorch is only here,
as the yardstick the issue asks for.
"""
import json
import statistics
import sys

import torch


def time_fn(fn, warmup=5, iters=20, repeats=3):
    """Median milliseconds per call of fn() on the current CUDA stream."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    per_call = []
    for _ in range(repeats):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        torch.cuda.synchronize()
        per_call.append(start.elapsed_time(end) / iters)
    return statistics.median(per_call)


def emit(name, ms, flops=0.0, items=0, note="", out=sys.stdout):
    rec = {"name": name, "ms": round(ms, 4)}
    if flops:
        rec["flops"] = flops
        rec["tflops"] = round(flops / (ms * 1e-3) / 1e12, 2)
    if items:
        rec["items_per_s"] = round(items / (ms * 1e-3), 1)
    if note:
        rec["note"] = note
    print(json.dumps(rec), file=out, flush=True)


def fail(name, err, out=sys.stdout):
    print(json.dumps({"name": name, "error": str(err)[:300]}), file=out, flush=True)


def header():
    p = torch.cuda.get_device_properties(0)
    print(json.dumps({"name": "env", "torch": torch.__version__, "device": p.name,
                      "sms": p.multi_processor_count}), flush=True)
