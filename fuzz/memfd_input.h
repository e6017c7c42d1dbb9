// memfd_input.h: for harnesses of readers that only take a path. The fuzz
// input is written to one in-memory file (memfd_create, reused across runs)
// and the reader opens /proc/self/fd/N: the shipped code runs unchanged
// (fopen / gzopen on a real path), with no disk I/O and no test-only entry
// point in the library. Header-only: each harness is one translation unit.
#ifndef FUZZ_MEMFD_INPUT_H
#define FUZZ_MEMFD_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/base.h"

// Replaces the in-memory file's contents by data[0..size); returns its path.
static const char *memfd_input(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz_input", 0);
        CHECK(fd >= 0);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    CHECK(ftruncate(fd, 0) == 0);
    size_t done = 0;
    while (done < size) {
        ssize_t k = pwrite(fd, data + done, size - done, (off_t)done);
        CHECK(k > 0);
        done += (size_t)k;
    }
    return path;
}

#endif
