// classifier_fixture.h: writes a classifier (models/classifier.h) with
// seeded random weights to a safetensors file: a feature network for tests
// about wiring, not quality. Header-only (static) and outside tests/util.c,
// whose object is also linked into the sanitizer build of the bus and store
// tests, which do not link the models.
#ifndef TESTS_CLASSIFIER_FIXTURE_H
#define TESTS_CLASSIFIER_FIXTURE_H

#include <stdint.h>

#include <criterion/criterion.h>

#include "core/error.h"
#include "models/classifier.h"
#include "nn/safetensors.h"

static inline void test_save_random_classifier(const char *path, uint64_t seed) {
    classifier *c = NULL;
    cr_assert_eq(classifier_create(&c, 1, 0), 0);
    classifier_init_params(c, seed);
    cr_assert_eq(st_save_params(path, &c->pt, DT_F32, NULL, 0), 0, "%s", vel_error_detail());
    classifier_destroy(&c);
}

#endif
