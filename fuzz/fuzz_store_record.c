// libFuzzer harness over the store's record decoder (store/record.h), the
// parser of record bytes read from an LMDB cache. Input: byte 0 picks the
// cache layout (numel per tensor, has_flip), the rest is the record value.
// On success the views must lie inside the input and cover it exactly; the
// tensors are read through them (ASan checks the bounds).
// Not a test of LMDB itself.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "store/record.h"

static const int64_t NUMELS[4] = {1, 2, 8, 64};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int64_t numel = NUMELS[data[0] & 3];
    bool flip = data[0] & 4;
    // A private copy so that reads past the value are caught by ASan, not
    // hidden by the layout byte in front of it.
    size_t len = size - 1;
    uint8_t *val = malloc(len ? len : 1);
    if (!val) return 0;
    memcpy(val, data + 1, len);
    store_view v;
    int rc = store_record_decode(&v, val, len, numel, flip);
    if (rc == 0) {
        size_t tb = (size_t)numel * 4;
        const uint8_t *end = val + len;
        CHECK(v.numel == numel && v.has_flip == flip);
        CHECK((const uint8_t *)v.mu >= val && (const uint8_t *)v.sigma + tb <= end);
        CHECK((const uint8_t *)v.sigma == (const uint8_t *)v.mu + tb);
        if (flip) CHECK((const uint8_t *)v.sigma_flip + tb == end);
        else CHECK((const uint8_t *)v.sigma + tb == end && !v.mu_flip && !v.sigma_flip);
        float acc = 0, f;
        for (int64_t j = 0; j < numel; j++) {
            memcpy(&f, (const uint8_t *)v.sigma + 4 * j, 4);
            acc += f;
        }
        (void)acc;
    } else {
        CHECK(rc == STORE_EHEADER || rc == STORE_ERECSIZE || rc == VEL_ENOMEM);
    }
    free(val);
    return 0;
}
