// fuzz_moments_item.c: libFuzzer harness for the checks the `encode --model
// vae-folder` writer applies to each "moments" message off the bus
// (stages/common/moments_item.h). A message whose kind, "bad" count and
// tensors (names, dtypes, ranks, shapes, values) come from the input goes to
// moments_item_check against a store shape (2, 2, 2) and a folder of 16
// images (label i / 4). It must be rejected with a reason and nothing
// handed out, or accepted with exactly what the writer may store: n + bad
// <= MOMENTS_MAX_N, distinct indices inside the folder with the folder's
// labels, finite moments, sigmas >= 0.
// Input: kind byte, "bad" byte (0xff: no "bad"; else value - 8, so negative
// counts occur), tensor count byte (0..6), then per tensor a name byte, a
// dtype byte, a rank byte (0..4) and one byte per dimension (0..5); an i32
// tensor's elements are one byte each (value % 20 - 2, so indices and
// labels land near the folder's range), an f32 or u8 one's are raw bytes
// (zero when the input runs out). Structure-aware because bus frames are
// validated before this point (fuzz_bus_header covers the wire).
// Built by Makefile.fuzz.
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "core/base.h"
#include "stages/common/moments_item.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { NIMG = 16 };

static uint8_t take(const uint8_t *d, size_t n, size_t *off) { return *off < n ? d[(*off)++] : 0; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *kinds[4] = {"moments", "images", "moments", "job"};
    static const char *names[6] = {"mu", "sigma", "mu_flip", "sigma_flip", "labels", "index"};
    static const dtype_t dts[3] = {DT_F32, DT_I32, DT_U8};
    static int32_t flab[NIMG];
    for (int i = 0; i < NIMG; i++) flab[i] = i / 4;
    static store_meta meta;
    if (!meta.shape[0]) CHECK(store_meta_init(&meta, "0123456789abcdef", 2, 2, 2, true, "folder:f", NIMG, "vae-v1") == 0);
    const moments_folder f = {.nimages = NIMG, .labels = flab};
    size_t off = 0;
    bus_msg *m = NULL;
    CHECK(bus_msg_new(&m, kinds[take(data, size, &off) % 4], 0, 1) == 0);
    uint8_t b = take(data, size, &off);
    if (b != 0xff) CHECK(bus_msg_set_int(m, "bad", (int64_t)b - 8) == 0);
    int nt = take(data, size, &off) % 7;
    for (int t = 0; t < nt; t++) {
        int nm = take(data, size, &off) % 6, dt = take(data, size, &off) % 3, nd = take(data, size, &off) % 5;
        int64_t shape[4], numel = 1;
        for (int k = 0; k < nd; k++) numel *= shape[k] = take(data, size, &off) % 6;
        size_t esz = dts[dt] == DT_U8 ? 1 : 4, bytes = (size_t)numel * esz;
        uint8_t *buf = calloc(bytes ? bytes : 1, 1);
        CHECK(buf);
        if (dts[dt] == DT_I32) {
            for (int64_t i = 0; i < numel; i++) {
                int32_t v = take(data, size, &off) % 20 - 2;
                memcpy(buf + 4 * i, &v, 4);
            }
        } else {
            size_t avail = off < size ? size - off : 0, n = bytes < avail ? bytes : avail;
            if (n) memcpy(buf, data + off, n);
            off += n;
        }
        tensor tv = tensor_view(dts[dt], buf, nd, shape);
        int e = bus_msg_add_tensor(m, names[nm], &tv);   // the bus refuses some (duplicate names)
        free(buf);
        if (e) break;
    }
    moments_item *it = malloc(sizeof *it);
    CHECK(it);
    char why[256] = "";
    int r = moments_item_check(m, &meta, &f, it, why, sizeof why);
    CHECK(r == 0 || r == 1);
    if (r == 1) {
        CHECK(why[0] != 0 && it->mom == NULL);
    } else {
        CHECK(it->n >= 0 && it->bad >= 0 && it->n + it->bad <= MOMENTS_MAX_N && it->n + it->bad >= 1);
        CHECK((it->n > 0) == (it->mom != NULL));
        int64_t per = store_meta_numel(&meta);
        for (int64_t i = 0; i < it->n; i++) {
            CHECK(it->index[i] >= 0 && it->index[i] < NIMG && it->labels[i] == flab[it->index[i]]);
            for (int64_t j = 0; j < i; j++) CHECK(it->index[j] != it->index[i]);
        }
        for (int k = 0; k < 4; k++)
            for (int64_t j = 0; j < it->n * per; j++) {
                float v = it->mom[(size_t)(k * it->n * per + j)];
                CHECK(isfinite(v) && (!(k & 1) || v >= 0));
            }
        moments_item_free(it);
    }
    free(it);
    bus_msg_destroy(&m);
    return 0;
}
