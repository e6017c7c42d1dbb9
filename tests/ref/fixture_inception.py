#!/usr/bin/env python3
"""fixture_inception.py OUTDIR: parity fixture for models/inception.c.

Not run by `make refs` (it needs torch): run it by hand with a venv that has
torch (CPU) and pytorch-fid from PyPI, used for nothing else:
    python3 -m venv /work/venv-ref
    /work/venv-ref/bin/pip install torch pytorch-fid
    /work/venv-ref/bin/python tests/ref/fixture_inception.py tests/fixtures/inception
and commit OUTDIR (about 60 KB).

No package ships the FID Inception weights, and random weights for the full
network are ~95 MB, too big to commit. Both sides therefore generate the same
random weights from a seed (inception_random_weights in models/inception.h
implements the generator below bit for bit): for tensor NAME with n elements,
    x_i = splitmix64(seed ^ fnv1a64(NAME) + i)        (mod 2^64), i = 0..n-1
    u_i = (x_i >> 40) * 2^-24                         (exact, in [0, 1))
    conv / fc weight:  (2 u - 1) * sqrt(6 / fan_in)   (He-uniform, double, then float)
    bn.weight:         1 + 0.2 (2 u - 1)
    bn.bias, running_mean, fc.bias: 0.1 (2 u - 1)
    bn.running_var:    0.5 + u
The same generator makes the uint8 test images (NAME "image", element i of
the (B, 3, H, W) array, value x_i >> 56). The fixture keeps only what the
test cannot regenerate: pytorch-fid's outputs (pool3, logits = pool3 @
fc.weight^T without the bias as ADM's evaluator, and the sFID map: Mixed_6d's
branch1x1 output, channels 0..6, flattened (H, W, C) as ADM's mixed_6/conv).
"""
import os
import sys

import numpy as np
import torch

import pytorch_fid.inception as pfi

SEED = 20151205
M64 = (1 << 64) - 1


def fnv1a64(s):
    h = 14695981039346656037
    for b in s.encode():
        h ^= b
        h = (h * 1099511628211) & M64
    return h


def splitmix64(z):
    # z: uint64 numpy array; numpy wraps uint64 arithmetic modulo 2^64.
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def stream(name, n, seed=SEED):
    base = np.uint64((seed ^ fnv1a64(name)) & M64)
    with np.errstate(over="ignore"):
        return splitmix64(base + np.arange(n, dtype=np.uint64))


def uniform(name, n):
    return (stream(name, n) >> np.uint64(40)).astype(np.float64) * 2.0 ** -24


def random_tensor(name, shape):
    n = int(np.prod(shape))
    u = uniform(name, n)
    if name.endswith("conv.weight") or name == "fc.weight":
        fan_in = int(np.prod(shape[1:]))
        v = (2.0 * u - 1.0) * np.sqrt(6.0 / fan_in)
    elif name.endswith("bn.weight"):
        v = 1.0 + 0.2 * (2.0 * u - 1.0)
    elif name.endswith("bn.running_var"):
        v = 0.5 + u
    else:
        v = 0.1 * (2.0 * u - 1.0)
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def fid_architecture():
    # pytorch-fid's fid_inception_v3 without the download.
    m = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    m.Mixed_5b = pfi.FIDInceptionA(192, pool_features=32)
    m.Mixed_5c = pfi.FIDInceptionA(256, pool_features=64)
    m.Mixed_5d = pfi.FIDInceptionA(288, pool_features=64)
    m.Mixed_6b = pfi.FIDInceptionC(768, channels_7x7=128)
    m.Mixed_6c = pfi.FIDInceptionC(768, channels_7x7=160)
    m.Mixed_6d = pfi.FIDInceptionC(768, channels_7x7=160)
    m.Mixed_6e = pfi.FIDInceptionC(768, channels_7x7=192)
    m.Mixed_7b = pfi.FIDInceptionE_1(1280)
    m.Mixed_7c = pfi.FIDInceptionE_2(2048)
    return m


def random_state_dict():
    sd = {}
    for k, v in fid_architecture().state_dict().items():
        if k.endswith("num_batches_tracked"):
            sd[k] = v
        else:
            sd[k] = random_tensor(k, tuple(v.shape))
    return sd


def images(B, H, W):
    return (stream("image", B * 3 * H * W) >> np.uint64(56)).astype(np.uint8).reshape(B, 3, H, W)


def run(sd, img):
    pfi.load_state_dict_from_url = lambda *a, **k: sd   # the wrapper loads "the" weights
    model = pfi.InceptionV3(output_blocks=[3]).eval()
    grab = {}
    inner = model.blocks[2][6]   # Mixed_6d
    inner.branch1x1.register_forward_hook(lambda m, i, o: grab.__setitem__("s", o))
    with torch.no_grad():
        x = torch.from_numpy(img.astype(np.float32) / 255.0)
        pool3 = model(x)[0][:, :, 0, 0]
        logits = pool3 @ sd["fc.weight"].T
        spatial = grab["s"][:, :7].permute(0, 2, 3, 1).reshape(img.shape[0], -1)
    return pool3.numpy(), logits.numpy(), spatial.numpy()


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    sd = random_state_dict()
    names = [k for k in sd if not k.endswith("num_batches_tracked")]
    with open(os.path.join(out, "tensors.txt"), "w") as f:
        for k in names:
            f.write("%s %s\n" % (k, " ".join(str(s) for s in sd[k].shape)))
    for tag, (B, H, W) in (("small", (2, 40, 56)), ("native", (1, 299, 299))):
        img = images(B, H, W)
        pool3, logits, spatial = run(sd, img)
        np.save(os.path.join(out, f"{tag}_pool3.npy"), pool3)
        np.save(os.path.join(out, f"{tag}_logits.npy"), logits)
        np.save(os.path.join(out, f"{tag}_spatial.npy"), spatial)
        print(tag, "pool3 mean %.4f std %.4f, logits std %.4f, spatial mean %.4f" %
              (pool3.mean(), pool3.std(), logits.std(), spatial.mean()))
    # A weight checksum: the C generator must reproduce these exactly.
    probe = {k: float(sd[k].double().sum()) for k in ("Conv2d_1a_3x3.conv.weight", "Mixed_7c.branch_pool.bn.running_var", "fc.weight")}
    np.save(os.path.join(out, "weight_sums.npy"), np.array(list(probe.values())))
    print(probe)


if __name__ == "__main__":
    main()
