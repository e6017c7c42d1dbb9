"""bench_dit_train_torch.py: the PyTorch CPU reference for bench_dit_train:
one LightningDiT flow-matching training step as `train --model dit` runs it
(draws, forward, MSE + cosine loss, backward, gradient clipping, AdamW betas
(0.9, 0.95), EMA update) in fp32 eager mode at a given config and thread
count. Written from the formulas in models/lightningdit.h and
models/dit_train.h for timing only (initialisation simplified: it does not
change the cost). PyTorch's own fused eager ops where it has them
(F.rms_norm, F.scaled_dot_product_attention), as bench/torch_cpu's DiT row
uses: the strongest eager baseline. The EMA is the reference LightningDiT's
update_ema (mul_(decay).add_(p, alpha=1-decay)), the work vel's step does.
Prints `torch_img_per_s X` and `torch_img_per_cpu_s X`.

usage: python bench_dit_train_torch.py --depth 4 --hidden 128 --heads 4 --patch 2
       --channels 4 --size 8 --classes 10 --batch 64 --threads 2 --steps 20
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return F.rms_norm(x, (x.shape[-1],), self.weight, 1e-6)


def rope(x, cos, sin):
    # adjacent pairs (x0, x1) rotated by the per-position angle
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1)
    return out.flatten(-2)


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        h = int(2 / 3 * 4 * d)
        self.heads = heads
        self.norm1, self.norm2 = RMSNorm(d), RMSNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.w12, self.w3 = nn.Linear(d, 2 * h), nn.Linear(h, d)
        self.ada = nn.Linear(d, 6 * d)

    def forward(self, x, c, cos, sin):
        B, T, D = x.shape
        s1, sc1, g1, s2, sc2, g2 = self.ada(F.silu(c)).unsqueeze(1).chunk(6, dim=-1)
        h = self.norm1(x) * (1 + sc1) + s1
        q, k, v = self.qkv(h).view(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        a = F.scaled_dot_product_attention(q, k, v)
        x = x + g1 * self.proj(a.transpose(1, 2).reshape(B, T, D))
        h = self.norm2(x) * (1 + sc2) + s2
        u, g = self.w12(h).chunk(2, dim=-1)
        return x + g2 * self.w3(F.silu(u) * g)


class DiT(nn.Module):
    def __init__(self, a):
        super().__init__()
        d, p = a.hidden, a.patch
        self.p, self.C, self.S = p, a.channels, a.size
        self.embed = nn.Conv2d(a.channels, d, p, p)
        self.t1, self.t2 = nn.Linear(256, d), nn.Linear(d, d)
        self.y = nn.Embedding(a.classes + 1, d)
        self.blocks = nn.ModuleList(Block(d, a.heads) for _ in range(a.depth))
        self.fnorm, self.fada = RMSNorm(d), nn.Linear(d, 2 * d)
        self.out = nn.Linear(d, p * p * a.channels)
        side = a.size // p
        hd = d // a.heads
        ang = torch.arange(side).float()[:, None] * (1e4 ** (-torch.arange(hd // 4).float() / (hd // 4)))
        rows = ang[:, None, :].expand(side, side, -1)
        cols = ang[None, :, :].expand(side, side, -1)
        full = torch.cat((rows, cols), -1).reshape(side * side, hd // 2)
        self.register_buffer("cos", full.cos())
        self.register_buffer("sin", full.sin())
        self.register_buffer("pos", torch.randn(side * side, d) * 0.02)

    def forward(self, x, t, y):
        B = x.shape[0]
        h = self.embed(x).flatten(2).transpose(1, 2) + self.pos
        f = torch.exp(-torch.log(torch.tensor(1e4)) * torch.arange(128) / 128)
        tf = torch.cat((torch.cos(t[:, None] * f), torch.sin(t[:, None] * f)), -1)
        c = self.t2(F.silu(self.t1(tf))) + self.y(y)
        for b in self.blocks:
            h = b(h, c, self.cos, self.sin)
        sh, sc = self.fada(F.silu(c)).unsqueeze(1).chunk(2, dim=-1)
        h = self.out(self.fnorm(h) * (1 + sc) + sh)
        side, p = self.S // self.p, self.p
        h = h.view(B, side, side, p, p, self.C).permute(0, 5, 1, 3, 2, 4)
        return h.reshape(B, self.C, self.S, self.S)


def main():
    ap = argparse.ArgumentParser()
    for k, v in dict(depth=4, hidden=128, heads=4, patch=2, channels=4, size=8, classes=10,
                     batch=64, threads=1, steps=20).items():
        ap.add_argument("--" + k, type=int, default=v)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    m = DiT(a)
    opt = torch.optim.AdamW(m.parameters(), lr=2e-4, betas=(0.9, 0.95), weight_decay=0)
    ema = [p.detach().clone() for p in m.parameters()]
    x1 = torch.randn(a.batch, a.channels, a.size, a.size)
    y = torch.randint(0, a.classes, (a.batch,))

    def step():
        x0 = torch.randn_like(x1)
        t = torch.sigmoid(torch.randn(a.batch))
        xt = t[:, None, None, None] * x1 + (1 - t[:, None, None, None]) * x0
        u = x1 - x0
        v = m(xt, t, y)
        loss = F.mse_loss(v, u) + (1 - F.cosine_similarity(v, u, dim=1)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for e, p in zip(ema, m.parameters()):
                e.mul_(0.9999).add_(p, alpha=1 - 0.9999)

    for _ in range(3):
        step()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(a.steps):
        step()
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    print(f"torch_img_per_s {a.batch * a.steps / dt:.2f}")
    # per second of this process's CPU time: robust to time slices lost to
    # other processes on a loaded machine (bench_dit_train.c prints both)
    print(f"torch_img_per_cpu_s {a.batch * a.steps / dc:.2f}")


if __name__ == "__main__":
    main()
