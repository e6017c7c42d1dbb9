#!/usr/bin/python3
"""The job source of the swap test's scored runs (tests only): sends N random
"latents" items (z f32 (n, 4, 8, 8) from a seeded normal, labels i32 (n) =
global index mod 10) dealt in turn to the decoders' inputs, waits for the
sink's ack of every item, then publishes eos (PROTOCOL sections 5 and 8)
until told to stop by the file STOPFILE appearing, or for at most 120 s.
Meanwhile its job table ("issued": ids 0..ITEMS-1, which the sink needs
before it accepts an item) and "alive" go out on ctl every 0.5 s.

  feed.py CTL_EP ACKS_EP ITEMS JOB SEED STOPFILE LAT_EP [LAT_EP...]

Exit 0 once every item is acked; 1 when no ack comes for 300 s.
"""
import os
import sys
import time

import msgpack
import numpy as np
import zmq

DEADLINE_S = 20.0

def header(kind, i, descs, extra):
    h = {"v": 1, "kind": kind, "id": i, "src": 0, "tensors": descs}
    h.update(extra)
    return msgpack.packb(h)


def main(a):
    ctl_ep, acks_ep, items, job, seed, stop = a[0], a[1], int(a[2]), int(a[3]), int(a[4]), a[5]
    lats = a[6:]
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.bind(ctl_ep)
    acks = ctx.socket(zmq.PULL)
    acks.bind(acks_ep)
    outs = []
    for ep in lats:
        s = ctx.socket(zmq.PUSH)
        s.setsockopt(zmq.IMMEDIATE, 1)
        s.connect(ep)
        outs.append(s)
    table = [header("issued", 0, [], {"n": items, "ranges": [0, items - 1]})]
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(items):
        z = rng.standard_normal((job, 4, 8, 8), dtype=np.float32)
        y = (np.arange(i * job, (i + 1) * job) % 10).astype(np.int32)
        descs = [{"name": "z", "dtype": "f32", "shape": list(z.shape)},
                 {"name": "labels", "dtype": "i32", "shape": [job]}]
        frames.append([header("latents", i, descs, {"count": job}), z.tobytes(), y.tobytes()])
    # Item i goes to decoder i mod M; one not acked within DEADLINE_S goes
    # again (as a source re-issues: the sink drops an item whose table it
    # has not heard yet, without an ack).
    sent = {}
    got = set()
    last, beat = time.monotonic(), 0.0
    while len(got) < items:
        now = time.monotonic()
        if now - beat > 0.5:
            pub.send_multipart(table)
            pub.send_multipart([header("alive", 0, [], {})])
            beat = now
        for i in range(items):
            if i not in got and now - sent.get(i, -1e9) > DEADLINE_S:
                try:
                    outs[i % len(outs)].send_multipart(frames[i], flags=zmq.NOBLOCK)
                    sent[i] = now
                except zmq.Again:   # that decoder is not connected yet
                    pass
        if acks.poll(200):
            h = msgpack.unpackb(acks.recv_multipart()[0])
            if h.get("kind") == "ack" and 0 <= h.get("id", -1) < items:
                got.add(h["id"])
                last = time.monotonic()
        elif time.monotonic() - last > 300:
            print("feed.py: %d of %d acked, then nothing for 300 s" % (len(got), items), file=sys.stderr)
            return 1
    t0 = time.monotonic()
    while not os.path.exists(stop) and time.monotonic() - t0 < 120:
        pub.send_multipart([header("eos", 0, [], {})])
        time.sleep(0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
