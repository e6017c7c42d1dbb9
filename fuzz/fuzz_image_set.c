// fuzz_image_set.c: libFuzzer harness for the checks `eval --model images`
// applies to each item off the bus (stages/common/image_set.h): messages whose
// kind and tensors (names, dtypes, ranks, shapes, bytes) come from the input
// are fed to image_set_add, three per input so the "same shape as the first
// kept item" rule is exercised; each must be kept or rejected with a reason,
// never crash, and image_set_finish must hand back exactly the images kept.
// Input per message: kind byte, tensor count byte (0..3), then per tensor a
// name byte, a dtype byte, a rank byte (0..4) and one byte per dimension
// (0..39); tensor bytes are taken from what follows (zero when it runs out).
// Structure-aware because bus frames are validated before this point
// (fuzz_bus_header covers the wire). Built by Makefile.fuzz.
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "core/base.h"
#include "stages/common/image_set.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t take(const uint8_t *d, size_t n, size_t *off) { return *off < n ? d[(*off)++] : 0; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *kinds[4] = {"images", "latents", "images", "job"};
    static const char *names[4] = {"u8", "labels", "x", "u8"};
    static const dtype_t dts[4] = {DT_U8, DT_I32, DT_F32, DT_U8};
    image_set s;
    image_set_init(&s, 1 + (size > 0 ? data[0] % 12 : 0), 5000);
    size_t off = 1;
    int64_t kept = 0;
    for (int msg = 0; msg < 3; msg++) {
        bus_msg *m = NULL;
        CHECK(bus_msg_new(&m, kinds[take(data, size, &off) % 4], 0, (uint64_t)msg) == 0);
        int nt = take(data, size, &off) % 4;
        int ok = 1;
        for (int t = 0; t < nt && ok; t++) {
            int nm = take(data, size, &off) % 4, dt = take(data, size, &off) % 4, nd = take(data, size, &off) % 5;
            int64_t shape[4], numel = 1;
            for (int k = 0; k < nd; k++) numel *= shape[k] = take(data, size, &off) % 40;
            size_t bytes = (size_t)numel * (dts[dt] == DT_U8 ? 1 : 4);
            uint8_t *buf = calloc(bytes ? bytes : 1, 1);
            CHECK(buf);
            size_t avail = off < size ? size - off : 0, n = bytes < avail ? bytes : avail;
            if (n) memcpy(buf, data + off, n);
            off += n;
            tensor tv = tensor_view(dts[dt], buf, nd, shape);
            ok = bus_msg_add_tensor(m, names[nm], &tv) == 0;   // the bus refuses some (duplicate names)
            free(buf);
        }
        char why[256] = "";
        int64_t before = s.total;
        int r = image_set_add(&s, m, why, sizeof why);
        CHECK(r == 0 || r == 1);
        if (r == 1) CHECK(why[0] != 0 && s.total == before);
        else kept += s.total - before;
        bus_msg_destroy(&m);
    }
    uint8_t *u8 = NULL;
    int32_t *labels = NULL;
    int64_t n = -1;
    CHECK(image_set_finish(&s, &u8, &labels, &n) == 0);
    CHECK(n == kept);
    for (int64_t i = 0; i < n; i++) CHECK(labels[i] >= 0 && labels[i] < s.classes);
    if (n > 0) { volatile uint8_t v = u8[(size_t)n * s.H * s.W * s.C - 1]; (void)v; }
    free(u8);
    free(labels);
    image_set_free(&s);
    return 0;
}
