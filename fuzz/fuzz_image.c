// fuzz_image.c: libFuzzer harness for PNG and JPEG decoding through
// data/image_io.c (image_read: magic sniffing, libpng's simplified API with
// our 16-bit and channel handling, libjpeg with our longjmp and warning
// handlers). Any input must be refused with an error code (and *pix NULL) or
// decode to w x h x channels bytes within the IMAGE_MAX_* limits. The last
// input byte picks the requested channels (0 = file's own, 1, 3), so every
// conversion is reached. Built by Makefile.fuzz.
//
// The readers take a path: the input goes through fuzz/memfd_input.h, so the
// shipped code runs unchanged (fopen + png_image_begin_read_from_file,
// jpeg_stdio_src).
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "data/image_io.h"
#include "fuzz/memfd_input.h"
#include "core/base.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const int wants[3] = {0, 1, 3};
    int want = size ? wants[data[size - 1] % 3] : 0;
    const char *mem_path = memfd_input(data, size);
    uint8_t *pix = (uint8_t *)1;
    int w = -1, h = -1, c = -1;
    int rc = image_read(mem_path, want, &pix, &w, &h, &c);
    if (rc != 0) {
        CHECK(pix == NULL && vel_strerror(rc) != NULL);
        return 0;
    }
    CHECK(pix != NULL && w > 0 && h > 0 && w <= IMAGE_MAX_SIDE && h <= IMAGE_MAX_SIDE);
    CHECK((int64_t)w * h <= IMAGE_MAX_PIXELS);
    CHECK(want ? c == want : (c == 1 || c == 3 || c == 4));
    // First and last byte: ASan flags a buffer shorter than w*h*c.
    volatile uint8_t s = pix[0] ^ pix[(size_t)w * h * c - 1];
    (void)s;
    free(pix);
    return 0;
}
