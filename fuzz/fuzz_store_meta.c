// libFuzzer harness over the "__meta__" decoder (store/meta.h). A meta that
// decodes must re-encode and decode to the same struct (round trip), and
// must pass store_meta_validate.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "store/meta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *val = malloc(size ? size : 1);
    if (!val) return 0;
    memcpy(val, data, size);
    store_meta m, again;
    int rc = store_meta_decode(&m, val, size);
    if (rc == 0) {
        CHECK(store_meta_validate(&m) == 0);
        char *buf;
        size_t len;
        CHECK(store_meta_encode(&m, &buf, &len) == 0);
        CHECK(store_meta_decode(&again, buf, len) == 0);
        CHECK(memcmp(&m, &again, sizeof m) == 0);
        free(buf);
    } else {
        CHECK(rc == STORE_EMETA || rc == VEL_ENOMEM);
    }
    free(val);
    return 0;
}
