"""bench_ops.py: PyTorch forward+backward timings of single ops, with the
shapes tests/device/bench_cuda.c uses for our CUDA ops (names must match for
the ratio table): linear (fp32 with TF32 off, and bf16), conv 3x3 (fp32
with TF32 off, and bf16; NCHW like ours), attention (SDPA, fp32 and bf16,
LightningDiT-B shapes: 12 heads of 64, 256 tokens). Usage: python3 bench_ops.py [--quick]
[--only-attention] (the attention rows alone, as bench_cuda --only-attention).
"""
import sys

import torch
import torch.nn.functional as F

from common import emit, fail, header, time_fn


def linear(name, N, C, OC, dtype, tf32=False):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    x = torch.randn(N, C, device="cuda", dtype=dtype, requires_grad=True)
    w = torch.randn(OC, C, device="cuda", dtype=dtype, requires_grad=True)
    b = torch.randn(OC, device="cuda", dtype=dtype, requires_grad=True)
    gy = torch.randn(N, OC, device="cuda", dtype=dtype)

    def fwd():
        return F.linear(x, w, b)

    def fwdbwd():
        y = F.linear(x, w, b)
        y.backward(gy)

    with torch.no_grad():
        emit(name + ".fwd", time_fn(fwd), flops=2.0 * N * C * OC)
    emit(name + ".fwdbwd", time_fn(fwdbwd), flops=6.0 * N * C * OC)


def conv(name, B, C, H, W, OC, dtype):
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False   # fp32 case: true fp32, as ours
    x = torch.randn(B, C, H, W, device="cuda", dtype=dtype, requires_grad=True)
    w = torch.randn(OC, C, 3, 3, device="cuda", dtype=dtype, requires_grad=True)
    gy = torch.randn(B, OC, H, W, device="cuda", dtype=dtype)
    flops = 2.0 * B * OC * H * W * C * 9

    def fwdbwd():
        y = F.conv2d(x, w, padding=1)
        y.backward(gy)

    with torch.no_grad():
        emit(name + ".fwd", time_fn(lambda: F.conv2d(x, w, padding=1)), flops=flops)
    emit(name + ".fwdbwd", time_fn(fwdbwd), flops=3 * flops)


def attention(name, B, H, T, D, dtype):
    q, k, v = (torch.randn(B, H, T, D, device="cuda", dtype=dtype, requires_grad=True)
               for _ in range(3))
    gy = torch.randn(B, H, T, D, device="cuda", dtype=dtype)
    flops = 4.0 * B * H * T * T * D

    def fwdbwd():
        y = F.scaled_dot_product_attention(q, k, v)
        y.backward(gy)

    with torch.no_grad():
        emit(name + ".fwd", time_fn(lambda: F.scaled_dot_product_attention(q, k, v)), flops=flops)
    emit(name + ".fwdbwd", time_fn(fwdbwd), flops=3.5 * flops)


def main():
    header()
    cases = [
        ("linear_f32_16384x768x768", lambda: linear("linear_f32_16384x768x768", 16384, 768, 768, torch.float32)),
        ("linear_bf16_16384x768x3072", lambda: linear("linear_bf16_16384x768x3072", 16384, 768, 3072, torch.bfloat16)),
        ("linear_bf16_16384x768x768", lambda: linear("linear_bf16_16384x768x768", 16384, 768, 768, torch.bfloat16)),
        ("conv3x3_f32_b16_c128_64x64", lambda: conv("conv3x3_f32_b16_c128_64x64", 16, 128, 64, 64, 128, torch.float32)),
        ("conv3x3_bf16_b16_c128_64x64", lambda: conv("conv3x3_bf16_b16_c128_64x64", 16, 128, 64, 64, 128, torch.bfloat16)),
        ("attn_f32_b64_h12_t256_d64", lambda: attention("attn_f32_b64_h12_t256_d64", 64, 12, 256, 64, torch.float32)),
        ("attn_bf16_b64_h12_t256_d64", lambda: attention("attn_bf16_b64_h12_t256_d64", 64, 12, 256, 64, torch.bfloat16)),
    ]
    if "--only-attention" in sys.argv[1:]:
        cases = [c for c in cases if c[0].startswith("attn_")]
    for name, fn in cases:
        try:
            fn()
        except Exception as e:  # one failing case must not lose the others
            fail(name, e)


if __name__ == "__main__":
    sys.exit(main())
