"""torch_worker.py: the PyTorch side of bench/torch_cpu/run.py. Same
protocol and row names as ours.c (see its header): reads `setup ROW`,
`run K`, `rss`, `quit` on stdin, answers one line each. fp32 throughout,
eager mode; every step zeroes gradients (set_to_none=False, like ours), runs
forward, loss, backward and the optimizer. Threads: --threads N
(torch.set_num_threads; the runner also sets OMP_NUM_THREADS/MKL_NUM_THREADS).
Run with the benchmark venv's python (bench/torch_cpu/setup_venv.sh).
"""
import argparse
import resource
import sys
import time

import torch
import torch.nn.functional as F

import torch_models


def _rand(*shape, scale=1.0, grad=False):
    t = (torch.rand(*shape) * 2.0 - 1.0) * scale
    return t.requires_grad_(grad)


def _params_step(params, loss_fn, opt):
    def step():
        opt.zero_grad(set_to_none=False)
        loss_fn().backward()
        opt.step()
    return step


def setup(name):
    """Returns step() for ROW, or raises ValueError."""
    parts = name.split(":")
    kind, a = parts[0], [int(v) for v in parts[1:]]
    if kind == "sgemm":
        A, B, C = _rand(1024, 1024), _rand(1024, 1024), torch.empty(1024, 1024)
        return lambda: torch.mm(A, B, out=C)
    if kind == "linear" and len(a) == 3:
        N, Cin, OC = a
        x, w, b = (_rand(N, Cin, scale=0.5, grad=True), _rand(OC, Cin, scale=0.5, grad=True),
                   _rand(OC, scale=0.5, grad=True))
        gy = _rand(N, OC, scale=0.5)
        return lambda: F.linear(x, w, b).backward(gy)
    if kind == "conv" and len(a) == 5:
        B, Cin, H, OC, S = a
        x, w, b = (_rand(B, Cin, H, H, scale=0.5, grad=True),
                   _rand(OC, Cin, 3, 3, scale=0.5, grad=True), _rand(OC, scale=0.5, grad=True))
        OH = H if S == 1 else H // 2
        gy = _rand(B, OC, OH, OH, scale=0.5)
        if S == 1:
            return lambda: F.conv2d(x, w, b, padding=1).backward(gy)
        return lambda: F.conv2d(F.pad(x, (0, 1, 0, 1)), w, b, stride=2).backward(gy)
    if kind == "attn" and len(a) == 4:
        B, T, NH, HD = a
        qkv = _rand(B, T, 3 * NH * HD, grad=True)
        gy = _rand(B, T, NH * HD)

        def step():
            q, k, v = qkv.view(B, T, 3, NH, HD).permute(2, 0, 3, 1, 4)
            o = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, T, NH * HD)
            o.backward(gy)
        return step
    if kind == "toy" and not a:
        Bt = 1024
        model = torch_models.toy_flow(4, 128)
        z1, x0, t = _rand(Bt, 2, scale=2.0), _rand(Bt, 2), torch.rand(Bt, 1)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def loss():
            zt = t * z1 + (1 - t) * x0
            v = model(torch.cat([zt, t], dim=1))
            return F.mse_loss(v, z1 - x0)
        return _params_step(model.parameters(), loss, opt)
    if kind == "vae" and not a:
        model = torch_models.VAE()
        x, eps = _rand(8, 1, 32, 32), _rand(8, 4, 8, 8)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.5, 0.9))
        return _params_step(model.parameters(), lambda: model.loss(x, eps), opt)
    if kind == "dit" and not a:
        Bd = 16
        model = torch_models.dit()
        xt, t, tgt = _rand(Bd, 32, 8, 8), torch.rand(Bd), _rand(Bd, 32, 8, 8)
        y = torch.arange(Bd) * 37 % 1000
        opt = torch.optim.AdamW(model.parameters(), lr=2e-4, betas=(0.9, 0.95), weight_decay=0.0)
        return _params_step(model.parameters(), lambda: F.mse_loss(model(xt, t, y), tgt), opt)
    raise ValueError(name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    step = None
    for line in sys.stdin:
        w = line.split()
        if not w:
            continue
        if w[0] == "setup" and len(w) == 2:
            try:
                step = setup(w[1])
                print("ok")
            except (ValueError, IndexError):
                step = None
                print("error unknown or invalid row '%s'" % w[1])
        elif w[0] == "run" and len(w) == 2 and step is not None:
            k = int(w[1])
            t0 = time.perf_counter()
            for _ in range(k):
                step()
            print("t %.9f" % (time.perf_counter() - t0))
        elif w[0] == "rss":
            print("rss %d" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        elif w[0] == "quit":
            break
        else:
            print("error bad command")
        sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
