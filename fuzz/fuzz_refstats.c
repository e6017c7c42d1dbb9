// fuzz_refstats.c: libFuzzer harness for the reference-statistics reader
// (metrics/refstats.h) behind `eval --model images`: any input must be
// refused with an error code and a message, or load into statistics whose
// sizes agree with each other. The reader takes a path, so the input goes
// through memfd_input.h. Seeds: fuzz/corpus/refstats/. Built by Makefile.fuzz.
#include <stddef.h>
#include <stdint.h>

#include "core/base.h"
#include "fuzz/memfd_input.h"
#include "metrics/refstats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    refstats *r = NULL;
    vel_error_clear();
    int rc = refstats_load(&r, memfd_input(data, size), "n", "0000000000000000");
    if (rc != 0) {
        CHECK(r == NULL && vel_strerror(rc) != NULL);
        return 0;
    }
    CHECK(r->D >= 1 && r->mu && r->sigma && r->count >= 1);
    volatile double s = r->mu[r->D - 1] + r->sigma[(size_t)r->D * r->D - 1];
    if (r->Ds) s += r->mu_s[r->Ds - 1] + r->sigma_s[(size_t)r->Ds * r->Ds - 1];
    if (r->nfeats) s += r->feats[(size_t)r->nfeats * r->D - 1];
    (void)s;
    refstats_destroy(&r);
    return 0;
}
