// fuzz_bus_header.c: libFuzzer harness over the bus header decoder and
// validator (bus/header.c, bus/mp.c). Input layout:
//   byte 0            number of payload frames n (0..40, beyond the cap on purpose)
//   3 bytes per frame  frame length, little-endian 24-bit
//   the rest          frame 0 (the msgpack header)
// On success the harness reads every extra field with every reader and
// checks the decoder's promises (header.h invariants); a broken promise
// traps, so libFuzzer reports it as a crash.
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bus/errors.h"
#include "bus/header.h"
#include "core/base.h"

#define PROMISE(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int n = data[0] % 41;
    size_t off = 1;
    size_t flen[41];
    for (int i = 0; i < n; i++) {
        if (off + 3 > size) return 0;
        flen[i] = (size_t)data[off] | (size_t)data[off + 1] << 8 | (size_t)data[off + 2] << 16;
        off += 3;
    }
    // Small caps so the size checks are reachable with short inputs.
    bus_limits lim = {.max_header = 4096, .max_total = 1 << 20};
    bus_header h;
    int rc = bus_header_decode(data + off, size - off, flen, n, &lim, &h);
    if (rc) {
        PROMISE(rc <= -100 && rc >= BUS_ECODE_MIN && rc != BUS_ETIMEOUT);
        PROMISE(vel_strerror(rc) != NULL);
        return 0;
    }
    const uint8_t *base = data + off;
    PROMISE(h.version == BUS_VERSION);
    PROMISE(h.ntensors == n);
    size_t kl = strlen(h.kind);
    PROMISE(kl > 0 && kl <= BUS_KIND_MAX);
    size_t total = size - off;
    for (int t = 0; t < h.ntensors; t++) {
        const bus_tensor_desc *d = &h.tensors[t];
        PROMISE(d->ndim >= 0 && d->ndim <= TENSOR_MAX_DIMS);
        PROMISE((unsigned)d->dtype < DT_COUNT);
        int64_t numel = shape_numel_checked(d->ndim, d->shape);
        PROMISE(numel >= 0);
        PROMISE((size_t)numel * dtype_size(d->dtype) == d->nbytes && d->nbytes == flen[t]);
        size_t nl = strlen(d->name);
        PROMISE(nl > 0 && nl <= BUS_NAME_MAX);
        total += flen[t];
    }
    PROMISE(total <= lim.max_total);
    for (int f = 0; f < h.nfields; f++) {
        const bus_field_ref *r = &h.fields[f];
        PROMISE(r->key_len > 0 && r->key_len <= BUS_NAME_MAX);
        PROMISE(r->key_off + r->key_len <= r->val_off && r->val_off < r->val_end);
        PROMISE(r->val_end <= size - off);
        char key[BUS_NAME_MAX + 1];
        memcpy(key, base + r->key_off, r->key_len);
        key[r->key_len] = 0;
        if (memchr(key, 0, r->key_len)) continue; // a NUL inside a key cannot be asked for
        PROMISE(bus_field_find(base, &h, key) == f);
        int64_t i64; uint64_t u64; double d; int b; char s[32]; int64_t arr[8]; size_t an;
        (void)bus_field_int(base, &h, key, &i64);
        (void)bus_field_uint(base, &h, key, &u64);
        (void)bus_field_float(base, &h, key, &d);
        (void)bus_field_bool(base, &h, key, &b);
        if (bus_field_str(base, &h, key, s, sizeof s) == 0) PROMISE(strlen(s) < sizeof s);
        if (bus_field_ints(base, &h, key, arr, 8, &an) == 0) PROMISE(an <= 8);
    }
    return 0;
}
