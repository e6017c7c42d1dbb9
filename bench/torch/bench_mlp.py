"""bench_mlp.py: PyTorch training step of the 2-D toy's flow MLP (docs/FORMULAS.md
section 2: 8 hidden Linear+ReLU layers of width 512, input (z_t, t) = 3,
output 2, batch 4096, MSE loss, Adam), fp32 with TF32 off (the toy trains in
fp32), eager and torch.compile. Name: toy_mlp_step_fp32[_compile].
"""
import sys

import torch
import torch.nn as nn

from common import emit, fail, header, time_fn


def build():
    layers, d = [], 3
    for _ in range(8):
        layers += [nn.Linear(d, 512), nn.ReLU()]
        d = 512
    layers.append(nn.Linear(d, 2))
    return nn.Sequential(*layers).cuda()


def main():
    header()
    torch.backends.cuda.matmul.allow_tf32 = False
    B = 4096
    x = torch.randn(B, 3, device="cuda")
    tgt = torch.randn(B, 2, device="cuda")
    flops = 6.0 * B * (3 * 512 + 7 * 512 * 512 + 512 * 2)
    for compiled in (False, True):
        name = "toy_mlp_step_fp32" + ("_compile" if compiled else "")
        try:
            model = build()
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            fwd = torch.compile(model) if compiled else model

            def step():
                opt.zero_grad(set_to_none=False)
                loss = ((fwd(x) - tgt) ** 2).mean()
                loss.backward()
                opt.step()

            emit(name, time_fn(step, warmup=10, iters=50), flops=flops, items=B)
        except Exception as e:
            fail(name, e)


if __name__ == "__main__":
    sys.exit(main())
