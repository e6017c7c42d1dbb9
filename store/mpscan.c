// mpscan.c: see mpscan.h. Iterative (no recursion, so no depth to exhaust).
#include "store/mpscan.h"

static uint64_t be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

int store_mp_scan(const uint8_t *buf, size_t len, size_t *obj_len) {
    size_t pos = 0;
    uint64_t pending = 1;   // objects still to read
    while (pending > 0) {
        if (pos >= len) return -1;
        uint8_t b = buf[pos];
        uint64_t children = 0, skip = 0;   // skip: bytes after the type byte
        int lenbytes = 0;                  // big-endian length field size
        uint64_t extra = 0;                // fixed bytes between length and body
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            skip = 0;
        } else if (b <= 0x8f) {
            children = 2u * (b & 0x0f);
        } else if (b <= 0x9f) {
            children = b & 0x0f;
        } else if (b <= 0xbf) {
            skip = b & 0x1f;
        } else {
            switch (b) {
            case 0xc4: lenbytes = 1; break;            // bin8
            case 0xc5: lenbytes = 2; break;
            case 0xc6: lenbytes = 4; break;
            case 0xc7: lenbytes = 1; extra = 1; break; // ext8: length, type
            case 0xc8: lenbytes = 2; extra = 1; break;
            case 0xc9: lenbytes = 4; extra = 1; break;
            case 0xca: skip = 4; break;                // float32
            case 0xcb: skip = 8; break;
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xce: case 0xd2: skip = 4; break;
            case 0xcf: case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break;                // fixext: type + data
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xd9: lenbytes = 1; break;            // str8
            case 0xda: lenbytes = 2; break;
            case 0xdb: lenbytes = 4; break;
            case 0xdc: case 0xdd:                      // array16/32
            case 0xde: case 0xdf: {                    // map16/32
                int nb = (b == 0xdc || b == 0xde) ? 2 : 4;
                if (len - pos - 1 < (size_t)nb) return -1;
                uint64_t n = be(buf + pos + 1, nb);
                children = (b >= 0xde) ? 2 * n : n;
                skip = (uint64_t)nb;
                break;
            }
            default: return -1;                        // 0xc1: never used
            }
        }
        pos += 1;
        if (lenbytes) {
            if (len - pos < (size_t)lenbytes) return -1;
            skip = (uint64_t)lenbytes + extra + be(buf + pos, lenbytes);
        }
        if (skip > len - pos) return -1;
        pos += (size_t)skip;
        pending = pending - 1 + children;
        // Each pending object needs at least one more byte.
        if (pending > len - pos) return -1;
    }
    *obj_len = pos;
    return 0;
}
