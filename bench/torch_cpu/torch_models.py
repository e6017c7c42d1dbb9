"""torch_models.py: the PyTorch twins of the model steps bench/torch_cpu/ours.c
times, written for timing only (same shapes and parameter counts; init
details that do not change the cost are PyTorch defaults):
  - toy_flow: MLP 3 -> depth x (Linear + ReLU) of width -> 2 (models/toy_mlp.h);
  - VAE: the CompVis Encoder/Decoder of the "f4c4" preset (models/vae.h: ch 32,
    mult 1,2,2, 1 res block per level (2 in the decoder), attention in the mid
    block only, z 4, GroupNorm 32 groups eps 1e-6, Downsample = pad (0,1,0,1)
    + conv3x3 stride 2, Upsample = nearest x2 + conv3x3), L1 + beta KL loss;
  - LightningDiT: bench/torch/bench_dit.py's DiT (imported, so the GPU and
    CPU benchmarks share one definition), with its RoPE tables on the CPU.
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


def toy_flow(depth=4, width=128, d_in=3, d_out=2):
    layers, d = [], d_in
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.ReLU()]
        d = width
    layers.append(nn.Linear(d, d_out))
    return nn.Sequential(*layers)


def _gn(c):
    return nn.GroupNorm(32, c, eps=1e-6)


class ResnetBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.norm1, self.conv1 = _gn(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = _gn(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.nin_shortcut(x) if self.nin_shortcut is not None else x) + h


class AttnBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = _gn(c)
        self.q, self.k, self.v = nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1)
        self.proj_out = nn.Conv2d(c, c, 1)

    def forward(self, x):
        B, C, H, W = x.shape
        h = self.norm(x)
        q = self.q(h).reshape(B, C, H * W).transpose(1, 2)
        k = self.k(h).reshape(B, C, H * W)
        v = self.v(h).reshape(B, C, H * W)
        p = torch.softmax(torch.bmm(q, k) * (C ** -0.5), dim=2)      # (B, HW, HW)
        o = torch.bmm(v, p.transpose(1, 2)).reshape(B, C, H, W)
        return x + self.proj_out(o)


class Down(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Up(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class VAE(nn.Module):
    def __init__(self, in_ch=1, ch=32, mult=(1, 2, 2), nres=1, z=4):
        super().__init__()
        enc, c = [nn.Conv2d(in_ch, ch, 3, padding=1)], ch
        for i, m in enumerate(mult):
            for _ in range(nres):
                enc.append(ResnetBlock(c, ch * m))
                c = ch * m
            if i != len(mult) - 1:
                enc.append(Down(c))
        enc += [ResnetBlock(c, c), AttnBlock(c), ResnetBlock(c, c), _gn(c), nn.SiLU(),
                nn.Conv2d(c, 2 * z, 3, padding=1), nn.Conv2d(2 * z, 2 * z, 1)]
        self.encoder = nn.Sequential(*enc)
        dec = [nn.Conv2d(z, z, 1), nn.Conv2d(z, c, 3, padding=1),
               ResnetBlock(c, c), AttnBlock(c), ResnetBlock(c, c)]
        for i in reversed(range(len(mult))):
            for _ in range(nres + 1):
                dec.append(ResnetBlock(c, ch * mult[i]))
                c = ch * mult[i]
            if i != 0:
                dec.append(Up(c))
        dec += [_gn(c), nn.SiLU(), nn.Conv2d(c, in_ch, 3, padding=1)]
        self.decoder = nn.Sequential(*dec)

    def loss(self, x, eps, beta=1e-6):
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        logvar = logvar.clamp(-30.0, 20.0)
        z = mu + torch.exp(0.5 * logvar) * eps
        rec = (self.decoder(z) - x).abs().mean()
        kl = 0.5 * (mu * mu + logvar.exp() - 1.0 - logvar).sum() / x.shape[0]
        return rec + beta * kl


def dit(C=32, side=8, D=384, depth=12, H=6, classes=1000):
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "torch"))
    import bench_dit   # the GPU benchmark's model, shared definition
    rope = bench_dit.rope_tables
    bench_dit.rope_tables = lambda hd, s, device: rope(hd, s, "cpu")
    try:
        return bench_dit.DiT(C=C, side=side, D=D, depth=depth, H=H, classes=classes)
    finally:
        bench_dit.rope_tables = rope
