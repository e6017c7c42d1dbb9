// fuzz_idx.c: libFuzzer harness for the IDX reader (data/idx.c: gzip or
// plain bytes through zlib's gz* interface, magic, dims, exact length, CRC).
// Any input must be refused with an error code (and leave the array empty)
// or read into an array whose dims multiply to numel. Built by Makefile.fuzz.
//
// idx_read takes a path: the input goes through fuzz/memfd_input.h, so the
// reader runs exactly as shipped (gzopen, gzread, gzerror). zlib has no
// in-memory gz* reader, so a from-memory idx_read would have been a second,
// different code path.
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "data/idx.h"
#include "fuzz/memfd_input.h"
#include "core/base.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *mem_path = memfd_input(data, size);
    idx_array a;
    int rc = idx_read(mem_path, &a);
    if (rc != 0) {
        CHECK(a.data == NULL && a.ndim == 0 && a.numel == 0 && vel_strerror(rc) != NULL);
        return 0;
    }
    CHECK(a.ndim >= 1 && a.ndim <= 4 && a.data != NULL);
    int64_t n = 1;
    for (int i = 0; i < a.ndim; i++) {
        CHECK(a.dims[i] > 0);
        n *= a.dims[i];
    }
    CHECK(n == a.numel);
    // Touch first and last byte: ASan flags a buffer shorter than numel.
    volatile uint8_t s = a.data[0] ^ a.data[a.numel - 1];
    (void)s;
    idx_free(&a);
    CHECK(a.data == NULL);
    return 0;
}
