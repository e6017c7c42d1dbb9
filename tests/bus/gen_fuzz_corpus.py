#!/usr/bin/python3
# gen_fuzz_corpus.py OUTDIR: writes the seed corpus of fuzz/fuzz_bus_header.c
# (fuzz/corpus/bus_header/). Regenerate with:
#   /usr/bin/python3 tests/bus/gen_fuzz_corpus.py fuzz/corpus/bus_header
# A few valid headers; the input layout is described in the harness.
import struct, sys, os
def mp_str(s):
    b = s.encode(); assert len(b) < 32
    return bytes([0xa0 | len(b)]) + b
def mp_uint(v):
    if v < 128: return bytes([v])
    if v < 256: return b'\xcc' + bytes([v])
    if v < 65536: return b'\xcd' + struct.pack('>H', v)
    return b'\xcf' + struct.pack('>Q', v)
def mp_int(v):
    return mp_uint(v) if v >= 0 else (bytes([v & 0xff]) if v >= -32 else b'\xd3' + struct.pack('>q', v))
def mp_map(n): return bytes([0x80 | n])
def mp_arr(n): return bytes([0x90 | n])
def header(kind, id_, tensors, extras):
    out = mp_map(5 + len(extras))
    out += mp_str('v') + mp_uint(1) + mp_str('kind') + mp_str(kind) + mp_str('id') + mp_uint(id_)
    out += mp_str('src') + mp_uint(0) + mp_str('tensors') + mp_arr(len(tensors))
    for name, dt, shape in tensors:
        out += mp_map(3) + mp_str('name') + mp_str(name) + mp_str('dtype') + mp_str(dt)
        out += mp_str('shape') + mp_arr(len(shape)) + b''.join(mp_uint(d) for d in shape)
    for k, v in extras:
        out += mp_str(k) + v
    return out
SZ = {'f32': 4, 'bf16': 2, 'f16': 2, 'u8': 1, 'i32': 4}
def case(kind, id_, tensors, extras):
    lens = []
    for _, dt, shape in tensors:
        n = SZ[dt]
        for d in shape: n *= d
        lens.append(n)
    pre = bytes([len(tensors)]) + b''.join(struct.pack('<I', l)[:3] for l in lens)
    return pre + header(kind, id_, tensors, extras)
d = sys.argv[1]
cases = {
  'job': case('job', 7, [], [('seed', mp_uint(123456789)), ('label', mp_int(3))]),
  'latents': case('latents', 300, [('z', 'f32', [4, 8, 8])], [('step', mp_int(-2)), ('cfg', b'\xcb' + struct.pack('>d', 1.5))]),
  'images': case('images', 70000, [('x', 'u8', [3, 32, 32]), ('y', 'i32', [1])], [('ckpt', mp_str('sha256:ab')), ('labels', mp_arr(3) + mp_int(1) + mp_int(-1) + mp_int(9))]),
  'eos': case('eos', 0, [], []),
  'halfs': case('points', 5, [('a', 'bf16', [2, 2]), ('b', 'f16', [])], [('flip', b'\xc3'), ('none', b'\xc0')]),
}
for k, v in cases.items():
    open(os.path.join(d, k), 'wb').write(v)
