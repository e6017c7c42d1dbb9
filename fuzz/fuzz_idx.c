// fuzz_idx.c: libFuzzer harness for the IDX reader (data/idx.c: gzip or
// plain bytes through zlib's gz* interface, magic, dims, exact length, CRC).
// Any input must be refused with an error code (and leave the array empty)
// or read into an array whose dims multiply to numel. Built by Makefile.fuzz.
//
// idx_read takes a path, so the input is written to an in-memory file
// (memfd_create) and read back through /proc/self/fd/N: the harness runs the
// reader exactly as shipped (gzopen, gzread, gzerror), with no disk I/O and
// no test-only entry point in data/idx.c. zlib has no in-memory gz* reader,
// so a from-memory idx_read would have been a second, different code path.
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "data/idx.h"
#include "nn/base.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int mem_fd = -1;
static char mem_path[64];

// Replaces the in-memory file's contents by data[0..size).
static void mem_put(const uint8_t *data, size_t size) {
    if (mem_fd < 0) {
        mem_fd = memfd_create("fuzz_idx", 0);
        CHECK(mem_fd >= 0);
        snprintf(mem_path, sizeof mem_path, "/proc/self/fd/%d", mem_fd);
    }
    CHECK(ftruncate(mem_fd, 0) == 0);
    size_t done = 0;
    while (done < size) {
        ssize_t k = pwrite(mem_fd, data + done, size - done, (off_t)done);
        CHECK(k > 0);
        done += (size_t)k;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mem_put(data, size);
    idx_array a;
    int rc = idx_read(mem_path, &a);
    if (rc != 0) {
        CHECK(a.data == NULL && a.ndim == 0 && a.numel == 0 && data_strerror(rc) != NULL);
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
