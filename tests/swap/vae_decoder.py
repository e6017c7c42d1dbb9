#!/usr/bin/python3
"""An independent `decode --model vae` for the swap test (tests only, never
part of the product): Python with pyzmq, msgpack and numpy, written from
docs/PROTOCOL.md (the wire) and docs/FORMULAS.md section 3 (the decoder), not
from the C code paths. It takes the C decoder's bus-mode command line, so
DECODE_CMD="tests/swap/vae_decoder.py" swaps it in (docs/SWAP.md):

  vae_decoder.py --model vae --ckpt PREFIX --store DIR --in EP --ctl EP
                 --reply EP [--sources P] [--bind-any] [--batch B]

- weights: PREFIX.safetensors read directly (8-byte little-endian header
  length, JSON header, raw tensors); the architecture is read off the tensor
  names and shapes (decoder.up.I.block.J, .attn.J, .upsample), GroupNorm with
  32 groups, eps 1e-6 (FORMULAS section 3);
- latent normalisation: the store's __meta__ record (LMDB key "__meta__",
  a msgpack map with per-channel "mean" and "std"), z = z_n * std + mean;
- wire: PULL bound on --in, SUB on --ctl (eos/abort/alive from sources
  0..P-1, counted only there), PUSH connected to --reply with ZMQ_IMMEDIATE;
  each "latents" item (z f32 (n, C, H, W), optional labels i32 (n)) is
  answered by an "images" item with the same src and id, every extra field
  of the item copied byte for byte, x f32 (n, C, 32, 32), u8 (n, 32, 32, C) =
  clamp(127.5 x + 128, 0, 255) truncated, and the labels unchanged. Anything
  else is dropped with a log line; the run ends when every source has sent
  eos (exit 0), on abort (exit 1) or after 60 s without any message (exit 1).
Usage errors exit 2.
"""
import json
import sys
import time

import lmdb
import msgpack
import numpy as np
import zmq

GROUPS, EPS = 32, 1e-6
IDLE_S = 60.0
TOTAL_CAP = 1 << 30
DTYPES = {"f32": np.dtype("<f4"), "u8": np.dtype("u1"), "i32": np.dtype("<i4"),
          "f16": np.dtype("<f2"), "bf16": None}


def log(msg):
    print("vae_decoder.py: " + msg, file=sys.stderr, flush=True)


def usage_error(msg):
    log(msg)
    sys.exit(2)


# ---- weights -------------------------------------------------------------

def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    n = int.from_bytes(blob[:8], "little")
    head = json.loads(blob[8:8 + n])
    base = 8 + n
    meta = head.pop("__metadata__", {}) or {}
    st_dtypes = {"F32": "<f4", "F16": "<f2", "BF16": "bf16"}
    out = {}
    for name, e in head.items():
        a, b = e["data_offsets"]
        raw = blob[base + a:base + b]
        if e["dtype"] == "BF16":   # the upper half of a binary32
            arr = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(raw, st_dtypes[e["dtype"]]).astype(np.float32)
        out[name] = arr.reshape(e["shape"])
    return out, meta


class Decoder:
    """post_quant_conv + the CompVis decoder (FORMULAS section 3). Activations
    are kept channels-last (B, H, W, C) so that a 3x3 convolution is nine
    (B*H*W, C) x (C, OC) matrix products over shifted views, summed."""

    def __init__(self, w):
        self.w = w
        ups = {int(k.split(".")[2]) for k in w if k.startswith("decoder.up.")}
        self.levels = max(ups) + 1
        self.blocks = 1 + max(int(k.split(".")[4]) for k in w if k.startswith("decoder.up.0.block."))
        self.z = w["post_quant_conv.weight"].shape[1]
        # (k, k, C, OC) per conv, once
        self.wt = {k[:-len(".weight")]: np.ascontiguousarray(v.transpose(2, 3, 1, 0))
                   for k, v in w.items() if k.endswith(".weight") and v.ndim == 4}

    def conv(self, x, name):
        """Stride 1; a 3x3 kernel is zero-padded by 1 on every side."""
        wt, b = self.wt[name], self.w[name + ".bias"]
        k = wt.shape[0]
        B, H, W, C = x.shape
        if k == 1:
            y = x.reshape(-1, C) @ wt[0, 0]
        else:
            xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
            y = np.zeros((B * H * W, wt.shape[3]), np.float32)
            for dy in range(k):
                for dx in range(k):
                    y += xp[:, dy:dy + H, dx:dx + W, :].reshape(-1, C) @ wt[dy, dx]
        return (y + b).reshape(B, H, W, -1).astype(np.float32)

    def norm(self, x, name):
        B, H, W, C = x.shape
        g = x.reshape(B, H * W, GROUPS, C // GROUPS)
        m = g.mean(axis=(1, 3), keepdims=True, dtype=np.float64)
        v = ((g - m) ** 2).mean(axis=(1, 3), keepdims=True)
        r = 1.0 / np.sqrt(v + EPS)
        y = ((g - m.astype(np.float32)) * r.astype(np.float32)).reshape(B, H, W, C)
        return (y * self.w[name + ".weight"] + self.w[name + ".bias"]).astype(np.float32)

    @staticmethod
    def swish(x):
        return (x / (np.float32(1) + np.exp(-x))).astype(np.float32)

    def resblock(self, x, p):
        h = self.conv(self.swish(self.norm(x, p + ".norm1")), p + ".conv1")
        h = self.conv(self.swish(self.norm(h, p + ".norm2")), p + ".conv2")
        if p + ".nin_shortcut.weight" in self.w:
            x = self.conv(x, p + ".nin_shortcut")
        return x + h

    def attn(self, x, p):
        B, H, W, C = x.shape
        h = self.norm(x, p + ".norm")
        q, k, v = (self.conv(h, p + "." + n).reshape(B, H * W, C) for n in "qkv")
        s = np.matmul(q, k.transpose(0, 2, 1)) * np.float32(1.0 / np.sqrt(C))   # (B, T, T)
        s = np.exp(s - s.max(axis=2, keepdims=True))
        pr = (s / s.sum(axis=2, keepdims=True, dtype=np.float64).astype(np.float32)).astype(np.float32)
        o = np.matmul(pr, v).reshape(B, H, W, C)   # softmax(q k^T / sqrt(C)) v
        return x + self.conv(o, p + ".proj_out")

    def __call__(self, z):
        """z (B, C, H, W) -> images (B, C_out, 32, 32)."""
        x = self.conv(np.ascontiguousarray(z.transpose(0, 2, 3, 1)), "post_quant_conv")
        x = self.conv(x, "decoder.conv_in")
        x = self.resblock(x, "decoder.mid.block_1")
        x = self.attn(x, "decoder.mid.attn_1")
        x = self.resblock(x, "decoder.mid.block_2")
        for i in range(self.levels - 1, -1, -1):
            for j in range(self.blocks):
                x = self.resblock(x, "decoder.up.%d.block.%d" % (i, j))
                if "decoder.up.%d.attn.%d.q.weight" % (i, j) in self.w:
                    x = self.attn(x, "decoder.up.%d.attn.%d" % (i, j))
            if i != 0:
                x = x.repeat(2, axis=1).repeat(2, axis=2)   # nearest x2
                x = self.conv(x, "decoder.up.%d.upsample.conv" % i)
        x = self.swish(self.norm(x, "decoder.norm_out"))
        return np.ascontiguousarray(self.conv(x, "decoder.conv_out").transpose(0, 3, 1, 2))


def to_u8(x):
    v = np.float32(127.5) * x + np.float32(128.0)
    v = np.where(v > 0, v, 0).astype(np.float32)   # NaN -> 0 too
    return np.minimum(v, np.float32(255)).astype(np.uint8)   # truncation


def store_stats(path):
    env = lmdb.open(path, readonly=True, lock=False, subdir=True)
    with env.begin() as t:
        raw = t.get(b"__meta__")
    env.close()
    if raw is None:
        raise ValueError("%s: no __meta__ record (not a latent cache)" % path)
    m = msgpack.unpackb(raw)
    if m.get("mean") is None or m.get("std") is None:
        raise ValueError("%s has no latent statistics" % path)
    return np.array(m["mean"], np.float32), np.array(m["std"], np.float32), m["shape"]


# ---- wire ----------------------------------------------------------------

RESERVED = ("v", "kind", "id", "src", "tensors")


def parse(frames):
    """Header fields, raw extra fields [(key, raw key+value bytes)], tensors;
    raises ValueError on anything docs/PROTOCOL.md section 4 refuses."""
    if not frames or not frames[0] or len(frames[0]) > 65536:
        raise ValueError("header size")
    up = msgpack.Unpacker(raw=False, strict_map_key=False)
    up.feed(frames[0])
    n = up.read_map_header()
    fields, extras = {}, []
    for _ in range(n):
        start = up.tell()
        key = up.unpack()
        if not isinstance(key, str) or key in fields or any(key == k for k, _ in extras):
            raise ValueError("bad or repeated key")
        if key in RESERVED:
            fields[key] = up.unpack()
        else:
            up.skip()
            extras.append((key, frames[0][start:up.tell()]))
    if up.tell() != len(frames[0]):
        raise ValueError("bytes after the header map")
    if fields.get("v") != 1 or not isinstance(fields.get("kind"), str) or not isinstance(fields.get("id"), int):
        raise ValueError("v, kind, id")
    descs = fields.get("tensors") or []
    if len(frames) != 1 + len(descs):
        raise ValueError("frame count")
    tensors = {}
    for d, fr in zip(descs, frames[1:]):
        if set(d) != {"name", "dtype", "shape"} or DTYPES.get(d["dtype"]) is None:
            raise ValueError("tensor description")
        shape = tuple(d["shape"])
        if any((not isinstance(s, int)) or s < 0 for s in shape) or len(shape) > 8:
            raise ValueError("shape")
        dt = DTYPES[d["dtype"]]
        if len(fr) != int(np.prod(shape, dtype=np.int64)) * dt.itemsize:
            raise ValueError("payload size of " + d["name"])
        tensors[d["name"]] = np.frombuffer(fr, dt).reshape(shape)
    return fields, extras, tensors


def encode_reply(kind, fields, extras, tensors):
    head = msgpack.packb(RESERVED[0]) + msgpack.packb(1)
    head += msgpack.packb("kind") + msgpack.packb(kind)
    head += msgpack.packb("id") + msgpack.packb(fields["id"])
    head += msgpack.packb("src") + msgpack.packb(fields.get("src", 0))
    descs = [{"name": n, "dtype": d, "shape": list(a.shape)} for n, d, a in tensors]
    head += msgpack.packb("tensors") + msgpack.packb(descs)
    for _, raw in extras:          # the item's extra fields, byte for byte
        head += raw
    n = 5 + len(extras)
    mh = bytes([0x80 | n]) if n < 16 else b"\xde" + n.to_bytes(2, "big")
    return [mh + head] + [np.ascontiguousarray(a).tobytes() for _, _, a in tensors]


def main(argv):
    opts = {"--sources": "1", "--batch": "16"}
    flags = {"--bind-any": False}
    takes = {"--model", "--ckpt", "--store", "--in", "--ctl", "--reply", "--sources", "--batch", "--config"}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in flags:
            flags[a] = True
        elif a in takes and i + 1 < len(argv):
            opts[a] = argv[i + 1]
            i += 1
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            usage_error("unknown option or missing value: %s" % a)
        i += 1
    for need in ("--ckpt", "--store", "--in", "--ctl", "--reply"):
        if need not in opts:
            usage_error(need + " is required")
    if opts.get("--model", "vae") != "vae":
        usage_error("only --model vae")
    try:
        P = int(opts["--sources"])
        assert 1 <= P <= 1024
    except (ValueError, AssertionError):
        usage_error("--sources must be 1..1024")
    ep = opts["--in"]
    if ep.startswith("tcp://") and not flags["--bind-any"] and not ep.startswith("tcp://127.0.0.1:"):
        usage_error("binding %s needs --bind-any" % ep)
    try:
        w, meta = read_safetensors(opts["--ckpt"] + ".safetensors")
        dec = Decoder(w)
        mean, std, zshape = store_stats(opts["--store"])
    except (OSError, ValueError, KeyError) as e:
        usage_error(str(e))
    zc, zs = dec.z, zshape[1]
    if zshape[0] != zc:
        usage_error("store latents have %d channels, the tokenizer %d" % (zshape[0], zc))

    ctx = zmq.Context()
    data = ctx.socket(zmq.PULL)
    ctl = ctx.socket(zmq.SUB)
    out = ctx.socket(zmq.PUSH)
    for s in (data, ctl, out):
        s.setsockopt(zmq.MAXMSGSIZE, TOTAL_CAP)
        s.setsockopt(zmq.LINGER, 1000)
    ctl.setsockopt(zmq.SUBSCRIBE, b"")
    out.setsockopt(zmq.IMMEDIATE, 1)
    data.bind(ep)
    for e in opts["--ctl"].split(","):
        ctl.connect(e)
    for e in opts["--reply"].split(","):
        out.connect(e)
    ended = set()
    answered = 0
    last = time.monotonic()
    poller = zmq.Poller()
    poller.register(ctl, zmq.POLLIN)
    poller.register(data, zmq.POLLIN)
    rc = 0
    while True:
        ev = dict(poller.poll(1000))
        if not ev:
            if time.monotonic() - last > IDLE_S:
                log("nothing for %d s: the sources are gone" % IDLE_S)
                rc = 1
                break
            continue
        last = time.monotonic()
        if ctl in ev:   # control first (PROTOCOL section 8)
            try:
                f, _, _ = parse(ctl.recv_multipart())
            except ValueError as e:
                log("ctl: rejected a message: %s" % e)
                continue
            src = f.get("src", 0)
            if isinstance(src, int) and 0 <= src < P:
                if f["kind"] == "eos":
                    ended.add(src)
                elif f["kind"] == "abort":
                    log("source %d aborted the run" % src)
                    rc = 1
                    break
            if len(ended) == P:
                break
            continue
        frames = data.recv_multipart()
        try:
            f, extras, t = parse(frames)
        except ValueError as e:
            log("rejected a message: %s" % e)
            continue
        z, labels = t.get("z"), t.get("labels")
        if (f["kind"] != "latents" or z is None or z.dtype != np.float32 or z.ndim != 4
                or z.shape[1:] != (zc, zs, zs) or z.shape[0] < 1):
            log("item %d: expected 'latents' with z f32 (n, %d, %d, %d); dropped" % (f["id"], zc, zs, zs))
            continue
        if labels is not None and (labels.dtype != np.int32 or labels.shape != (z.shape[0],)):
            log("item %d: labels must be i32 (%d); dropped" % (f["id"], z.shape[0]))
            continue
        zz = (z * std[None, :, None, None] + mean[None, :, None, None]).astype(np.float32)
        x = dec(zz)
        u8 = to_u8(x).transpose(0, 2, 3, 1)
        tensors = [("x", "f32", x), ("u8", "u8", u8)]
        if labels is not None:
            tensors.append(("labels", "i32", labels))
        reply = encode_reply("images", f, extras, tensors)
        # Wait for a live peer, but give up once every source has ended.
        while True:
            try:
                out.send_multipart(reply, flags=zmq.NOBLOCK)
                answered += 1
                break
            except zmq.Again:
                if ctl.poll(100):
                    try:
                        g, _, _ = parse(ctl.recv_multipart())
                        if g["kind"] == "eos" and 0 <= g.get("src", 0) < P:
                            ended.add(g.get("src", 0))
                    except ValueError:
                        pass
                if len(ended) == P:
                    break
        if len(ended) == P:
            break
    log("decoded %d items" % answered)
    for s in (data, ctl, out):
        s.close()
    ctx.term()
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
