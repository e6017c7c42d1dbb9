// fuzz_npz.c: libFuzzer harness for the .npz reader (data/npz.h) behind
// `eval --model images --npz`: any input must be refused with an error code
// (and nothing allocated), or give images whose sizes agree with each other
// and whose every byte can be read. Parses from memory (npz_images_parse).
// Seeds: fuzz/corpus/npz/ (our writer's archive, numpy's np.savez with
// zip64 local headers and int64 arr_1 labels). Built by Makefile.fuzz.
#include <stddef.h>
#include <stdint.h>

#include "core/base.h"
#include "data/npz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    npz_images im;
    vel_error_clear();
    int rc = npz_images_parse(data, size, &im);
    if (rc != 0) {
        CHECK(im.u8 == NULL && im.labels == NULL && vel_strerror(rc) != NULL);
        return 0;
    }
    CHECK(im.n >= 1 && im.H >= 1 && im.W >= 1 && (im.C == 1 || im.C == 3) && im.u8);
    size_t bytes = (size_t)im.n * im.H * im.W * im.C;
    CHECK(bytes <= size);   // stored members: the pixels are in the input
    volatile unsigned s = im.u8[0] + im.u8[bytes - 1];
    if (im.labels) s += (unsigned)im.labels[im.n - 1];
    (void)s;
    npz_images_free(&im);
    return 0;
}
