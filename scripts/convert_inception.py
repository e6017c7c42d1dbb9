#!/usr/bin/env python3
"""convert_inception.py IN.pth OUT.safetensors: pytorch-fid's FID Inception
weights -> the safetensors file models/inception.c loads.

vel ships no Inception weights. The FID network is pytorch-fid's port of the
2015 TensorFlow graph; its checkpoint is
    https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth
(download it yourself; check the sha256 prefix 6726825d in its name). This
script needs torch only to unpickle it (any torch, CPU is enough):
    python3 -m venv /tmp/conv && /tmp/conv/bin/pip install torch
    /tmp/conv/bin/python scripts/convert_inception.py pt_inception-2015-12-05-6726825d.pth inception-fid.safetensors

What it does: keeps every tensor of the state_dict under its own name
(Conv2d_1a_3x3.conv.weight, ...bn.weight/bias/running_mean/running_var, ...,
fc.weight (1008, 2048), fc.bias) as float32, drops the BatchNorm
num_batches_tracked counters (unused in eval mode), and writes the
safetensors container by hand (8-byte little-endian header length, JSON
header, raw little-endian data), so the `safetensors` package is not needed.
The C loader then requires exactly these 472 tensors with these shapes and
folds each BatchNorm (eps 1e-3) into its convolution.
"""
import json
import struct
import sys


def main():
    if len(sys.argv) != 3 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0 if len(sys.argv) == 2 else 2)
    import torch

    src, dst = sys.argv[1], sys.argv[2]
    sd = torch.load(src, map_location="cpu", weights_only=True)
    if "state_dict" in sd:
        sd = sd["state_dict"]
    header, blobs, off = {}, [], 0
    for name, t in sd.items():
        if name.endswith("num_batches_tracked"):
            continue
        if not t.is_floating_point():
            sys.exit(f"{src}: tensor {name} is {t.dtype}, expected floating point")
        data = t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    if "fc.weight" not in header or header["fc.weight"]["shape"] != [1008, 2048]:
        sys.exit(f"{src}: no fc.weight (1008, 2048): not the FID Inception checkpoint")
    header["__metadata__"] = {"format": "pt", "source": "pt_inception-2015-12-05 (pytorch-fid)"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)   # align the data start, as the reference writer does
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    print(f"{dst}: {len(blobs)} tensors, {off / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
