#!/usr/bin/env python3
"""gen_image_folder.py OUTDIR: references for data/image_folder.c.

Seeded RGB test images and what Pillow gives for BOX and BICUBIC resizes and
for guided-diffusion's center_crop_arr (copied here as its documented steps).
Pillow (Debian python3-pil) is the ground truth the C code imitates; when it
is missing this writes a marker file and the test skips with that message.
Arrays are saved as int32 (tests/util.h reads f4/f8/i4/i8).
"""
import os
import sys

import numpy as np

try:
    from PIL import Image
except ImportError:  # pragma: no cover
    Image = None


def center_crop_arr(pil_image, image_size):
    # guided-diffusion image_datasets.py, the steps as published.
    while min(*pil_image.size) >= 2 * image_size:
        pil_image = pil_image.resize(tuple(x // 2 for x in pil_image.size), resample=Image.BOX)
    scale = image_size / min(*pil_image.size)
    pil_image = pil_image.resize(tuple(round(x * scale) for x in pil_image.size),
                                 resample=Image.BICUBIC)
    arr = np.array(pil_image)
    crop_y = (arr.shape[0] - image_size) // 2
    crop_x = (arr.shape[1] - image_size) // 2
    return arr[crop_y:crop_y + image_size, crop_x:crop_x + image_size]


def test_image(rng, w, h):
    # Smooth gradients plus noise plus a sharp edge: exercises negative lobes
    # (clipping at 0 and 255) as well as flat regions.
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([255 * x / max(w - 1, 1), 255 * y / max(h - 1, 1),
                     127 + 120 * np.sin(x / 3.0 + y / 5.0)], -1)
    base[(x > w // 3) & (x < w // 3 + 3)] = 255
    base[(y > h // 2) & (y < h // 2 + 2)] = 0
    img = base + rng.randint(-40, 41, size=base.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    if Image is None:
        open(os.path.join(out, "NO_PIL"), "w").write("python3-pil not installed\n")
        return
    rng = np.random.RandomState(5)
    # (w, h, size): box twice with odd sizes; box once; upscale only; exact .5 rounding.
    cases = [(150, 97, 32), (131, 203, 24), (40, 57, 32), (64, 75, 32), (33, 20, 16)]
    for i, (w, h, size) in enumerate(cases):
        img = test_image(rng, w, h)
        np.save(os.path.join(out, f"crop{i}_in.npy"), img.astype(np.int32))
        np.save(os.path.join(out, f"crop{i}_args.npy"), np.array([w, h, size], np.int32))
        np.save(os.path.join(out, f"crop{i}_out.npy"),
                center_crop_arr(Image.fromarray(img), size).astype(np.int32))
    # Plain resizes, both filters, shrinking and growing, one axis only.
    img = test_image(rng, 45, 38)
    np.save(os.path.join(out, "rs_in.npy"), img.astype(np.int32))
    sizes = [(22, 19), (17, 30), (90, 41), (45, 20), (31, 38)]
    np.save(os.path.join(out, "rs_sizes.npy"), np.array(sizes, np.int32))
    for j, (dw, dh) in enumerate(sizes):
        for name, f in (("box", Image.BOX), ("bicubic", Image.BICUBIC)):
            r = np.array(Image.fromarray(img).resize((dw, dh), resample=f))
            np.save(os.path.join(out, f"rs{j}_{name}.npy"), r.astype(np.int32))


if __name__ == "__main__":
    main()
