#!/usr/bin/env python3
"""bench_inception_torch.py [BATCH (8)] [SECONDS (10)] [THREADS (1)]: the
PyTorch side of bench/bench_inception.c: pytorch-fid's InceptionV3 (FID
weights' architecture, random weights, resize + normalise as in the package)
forward on 299x299 inputs plus the 2048 x 1008 logits product, images/s at
torch.set_num_threads(THREADS). Needs torch and pytorch-fid (a venv, e.g.
/work/venv-ref); run under `flock /tmp/vel-timing.lock` next to the C bench.
"""
import sys
import time

import torch

import pytorch_fid.inception as pfi


def main():
    B = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    secs = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    th = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    torch.set_num_threads(th)
    arch = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    for name, blk in (("Mixed_5b", pfi.FIDInceptionA(192, 32)), ("Mixed_5c", pfi.FIDInceptionA(256, 64)),
                      ("Mixed_5d", pfi.FIDInceptionA(288, 64)), ("Mixed_6b", pfi.FIDInceptionC(768, 128)),
                      ("Mixed_6c", pfi.FIDInceptionC(768, 160)), ("Mixed_6d", pfi.FIDInceptionC(768, 160)),
                      ("Mixed_6e", pfi.FIDInceptionC(768, 192)), ("Mixed_7b", pfi.FIDInceptionE_1(1280)),
                      ("Mixed_7c", pfi.FIDInceptionE_2(2048))):
        setattr(arch, name, blk)
    sd = arch.state_dict()
    pfi.load_state_dict_from_url = lambda *a, **k: sd
    model = pfi.InceptionV3(output_blocks=[3]).eval()
    fc = sd["fc.weight"]
    x = torch.rand(B, 3, 299, 299)
    with torch.inference_mode():
        (model(x)[0][:, :, 0, 0] @ fc.T).sum()   # warm-up
        t0, c0, reps = time.time(), time.process_time(), 0
        while True:
            (model(x)[0][:, :, 0, 0] @ fc.T).sum()
            reps += 1
            if time.time() - t0 >= secs:
                break
    wall, cpu = time.time() - t0, time.process_time() - c0
    print("torch %s inception forward: batch %d, %d reps, %.2f images/s wall, %.4f CPU s/image, threads %d"
          % (torch.__version__, B, reps, reps * B / wall, cpu / (reps * B), th))


if __name__ == "__main__":
    main()
