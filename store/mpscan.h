// mpscan.h: a bounds pre-check for msgpack bytes from outside, run before
// msgpack-c unpacks them. msgpack-c allocates an array/map's element table
// from the count in its header before reading any element, so 5 hostile
// bytes (an array32 of 2^32-1) would ask for ~100 GB. The scan walks the
// first object without allocating and fails when the elements it still
// expects outnumber the bytes left (every element takes at least one byte);
// after it passes, unpacking allocates O(len) at most.
// Not a decoder: it returns only the length of the first object.
#ifndef STORE_MPSCAN_H
#define STORE_MPSCAN_H

#include <stddef.h>
#include <stdint.h>

// 0 and *obj_len = bytes of the first complete msgpack object in buf[0..len),
// or -1 (truncated, reserved byte 0xc1, or counts exceed the bytes left).
int store_mp_scan(const uint8_t *buf, size_t len, size_t *obj_len);

#endif
