"""bench_dit.py: PyTorch reference for the LightningDiT-B/1 training step the
issue compares against: batch 64, latent 32 x 16 x 16 (256 tokens, patch 1),
depth 12, D 768, 12 heads, SwiGLU (hidden int(2/3*4D)), RMSNorm eps 1e-6,
q/k RMSNorm, 2-D RoPE, adaLN-Zero, flow-matching MSE loss, AdamW
(betas 0.9/0.95, wd 0), bf16 autocast with SDPA; eager and torch.compile.
Written from docs/FORMULAS.md section 4 for timing only (init details that do not
change the cost are simplified). Also reports model FLOPs utilisation (MFU)
against --peak TFLOP/s (default 989, H100/H200 dense bf16).
Names: dit_b1_step_bf16[_compile]; with --dtype fp32 (no autocast, TF32 off:
the yardstick for vel's fp32 GPU step, build/bench/bench_dit_train --device
cuda) dit_b1_step_fp32[_compile].
"""
import argparse
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import emit, fail, header, time_fn


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


def rope_tables(hd, side, device):
    # First half of the head dims rotated by row index, second by column;
    # pairs are adjacent elements (docs/FORMULAS.md section 4).
    quarter = hd // 4
    freqs = 1.0 / (10000 ** (torch.arange(quarter, device=device).float() / quarter))
    pos = torch.arange(side, device=device).float()
    ang = torch.outer(pos, freqs)                       # (side, quarter)
    rows = ang[:, None, :].expand(side, side, quarter)
    cols = ang[None, :, :].expand(side, side, quarter)
    a = torch.cat([rows, cols], dim=-1).reshape(side * side, hd // 2)
    return a.cos(), a.sin()


def apply_rope(x, cos, sin):
    x2 = x.float().reshape(*x.shape[:-1], -1, 2)
    a, b = x2[..., 0], x2[..., 1]
    out = torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1)
    return out.flatten(-2).type_as(x)


class Block(nn.Module):
    def __init__(self, D, H):
        super().__init__()
        self.H = H
        self.norm1, self.norm2 = RMSNorm(D), RMSNorm(D)
        self.qkv, self.proj = nn.Linear(D, 3 * D), nn.Linear(D, D)
        self.qn, self.kn = RMSNorm(D // H), RMSNorm(D // H)
        hid = int(2 / 3 * 4 * D)
        self.w1, self.w2 = nn.Linear(D, hid), nn.Linear(D, hid)
        self.w3 = nn.Linear(hid, D)
        self.ada = nn.Linear(D, 6 * D)

    def forward(self, x, c, cos, sin):
        B, T, D = x.shape
        s1, sc1, g1, s2, sc2, g2 = self.ada(F.silu(c)).unsqueeze(1).chunk(6, dim=-1)
        h = self.norm1(x) * (1 + sc1) + s1
        q, k, v = self.qkv(h).reshape(B, T, 3, self.H, D // self.H).permute(2, 0, 3, 1, 4)
        q, k = apply_rope(self.qn(q), cos, sin), apply_rope(self.kn(k), cos, sin)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, T, D)
        x = x + g1 * self.proj(a)
        h = self.norm2(x) * (1 + sc2) + s2
        x = x + g2 * self.w3(F.silu(self.w1(h)) * self.w2(h))
        return x


class DiT(nn.Module):
    def __init__(self, C=32, side=16, D=768, depth=12, H=12, classes=1000):
        super().__init__()
        self.side = side
        self.embed = nn.Linear(C, D)
        self.t_mlp = nn.Sequential(nn.Linear(256, D), nn.SiLU(), nn.Linear(D, D))
        self.y_emb = nn.Embedding(classes + 1, D)
        self.blocks = nn.ModuleList(Block(D, H) for _ in range(depth))
        self.final_ada = nn.Linear(D, 2 * D)
        self.final_norm = RMSNorm(D)
        self.out = nn.Linear(D, C)
        cos, sin = rope_tables(D // H, side, "cuda")
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.register_buffer("pos", torch.randn(side * side, D) * 0.02, persistent=False)

    def forward(self, x, t, y):
        B, C, Hh, Ww = x.shape
        x = self.embed(x.flatten(2).transpose(1, 2)) + self.pos
        k = torch.arange(128, device=x.device).float()
        f = torch.exp(-math.log(10000) * k / 128)
        tf = torch.cat([torch.cos(t[:, None] * f), torch.sin(t[:, None] * f)], dim=-1)
        c = self.t_mlp(tf) + self.y_emb(y)
        for blk in self.blocks:
            x = blk(x, c, self.cos, self.sin)
        s, sc = self.final_ada(F.silu(c)).unsqueeze(1).chunk(2, dim=-1)
        x = self.out(self.final_norm(x) * (1 + sc) + s)
        return x.transpose(1, 2).reshape(B, C, Hh, Ww)


def flops_per_step(B, T, D, depth, C):
    # 6 * params-in-matmuls * tokens, plus attention (q k^T and a v, fwd + bwd).
    hid = int(2 / 3 * 4 * D)
    per_tok = depth * (3 * D * D + D * D + 3 * D * hid) + C * D + D * C
    attn = depth * 4 * T * T * D            # forward, per sample
    return 6.0 * B * T * per_tok + 3.0 * B * attn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--peak", type=float, default=989.0)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--dtype", choices=("bf16", "fp32"), default="bf16")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False   # fp32 means fp32 (vel's GEMMs run without TF32)
    torch.backends.cudnn.allow_tf32 = False
    header()
    B, C, side = a.batch, 32, 16
    x1 = torch.randn(B, C, side, side, device="cuda")
    y = torch.randint(0, 1000, (B,), device="cuda")
    flops = flops_per_step(B, side * side, 768, 12, C)
    for compiled in ((False,) if a.no_compile else (False, True)):
        name = "dit_b1_step_" + a.dtype + ("_compile" if compiled else "")
        try:
            torch.manual_seed(0)
            model = DiT().cuda()
            opt = torch.optim.AdamW(model.parameters(), lr=2e-4, betas=(0.9, 0.95),
                                    weight_decay=0.0, fused=True)
            fwd = torch.compile(model) if compiled else model

            def step():
                x0 = torch.randn_like(x1)
                t = torch.sigmoid(torch.randn(B, device="cuda"))
                xt = t[:, None, None, None] * x1 + (1 - t[:, None, None, None]) * x0
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=a.dtype == "bf16"):
                    v = fwd(xt, t, y)
                loss = F.mse_loss(v.float(), x1 - x0)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

            ms = time_fn(step, warmup=5 if not compiled else 8, iters=10)
            mfu = flops / (ms * 1e-3) / (a.peak * 1e12)
            emit(name, ms, flops=flops, items=B, note="mfu=%.3f" % mfu)
        except Exception as e:
            fail(name, e)
    params = sum(p.numel() for p in DiT().parameters())
    print('{"name": "dit_b1_params", "count": %d}' % params, flush=True)


if __name__ == "__main__":
    sys.exit(main())
