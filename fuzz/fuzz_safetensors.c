// fuzz_safetensors.c: libFuzzer harness for the safetensors parser. Any input
// must either be refused with an error code or parse into entries whose data
// lies inside the input; reading every tensor as floats and walking the
// metadata must then be safe. Built by Makefile.fuzz (clang, ASan, UBSan).
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "nn/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_file *f = NULL;
    vel_error_clear();   // a detail from an earlier input must not pass the CHECK
    int rc = st_parse(&f, data, size);
    if (rc != 0) {
        CHECK(f == NULL && vel_error_detail()[0] != 0 && vel_strerror(rc) != NULL);
        return 0;
    }
    for (int i = 0; i < st_count(f); i++) {
        const st_entry *e = st_get(f, i);
        CHECK(st_find(f, e->name) == i);
        const uint8_t *p = st_data(f, i);
        CHECK(p >= data && e->end - e->begin <= size && p + (e->end - e->begin) <= data + size);
        if (e->numel <= 4096) {
            float *out = malloc((size_t)(e->numel ? e->numel : 1) * sizeof(float));
            if (out) (void)st_read_f32(f, i, out, e->numel);
            free(out);
        }
    }
    for (int i = 0; i < st_meta_count(f); i++) {
        const char *k, *v;
        st_meta_at(f, i, &k, &v);
        CHECK(st_meta_get(f, k) != NULL && v != NULL);
    }
    st_close(&f);
    return 0;
}
