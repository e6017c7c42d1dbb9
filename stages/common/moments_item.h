// moments_item.h: the checks the `encode --model vae-folder` writer applies
// to each "moments" message off the bus (docs/PROTOCOL.md) before anything
// reaches the store, kept apart from the writer's loop so they can be tested
// and fuzzed directly (tests/stages/test_moments_item.c,
// fuzz/fuzz_moments_item.c). A message is rejected with a reason, and
// nothing of it written, when its kind is not "moments", "bad" is missing
// or outside [0, MOMENTS_MAX_N], a tensor is missing or of another dtype or
// shape than the store's, an index lies outside the folder or repeats, a
// label is not the folder's label for that index, or a value is not finite
// (or a sigma negative). Items from ids the source never issued are the bus
// sink's business (bus_sink_next: BUS_EUNISSUED). In stages/common (though
// only encode uses it) so tests/ and fuzz/, which may not include a stage's
// own folder, can reach it.
#ifndef STAGES_COMMON_MOMENTS_ITEM_H
#define STAGES_COMMON_MOMENTS_ITEM_H

#include <stddef.h>
#include <stdint.h>

#include "bus/bus.h"
#include "store/store.h"

enum { MOMENTS_MAX_N = 1024 };   // images per job (encode's --job-size bound)

typedef struct {
    int64_t n, bad;            // records carried, images the worker could not read
    int32_t index[MOMENTS_MAX_N], labels[MOMENTS_MAX_N];
    float *mom;                // mu, sigma, mu_flip, sigma_flip: 4 x (n, per), malloc'ed
} moments_item;

typedef struct {
    int64_t items, records, bad, rejected;
} moments_counts;

// The folder the store is filled from: nimages entries, labels[i] the class
// of image i.
typedef struct {
    int64_t nimages;
    const int32_t *labels;
} moments_folder;

// 0: valid, *it filled (free with moments_item_free); 1: rejected (reason in
// why, it->mom NULL); VEL_ENOMEM.
int moments_item_check(const bus_msg *m, const store_meta *meta, const moments_folder *f, moments_item *it,
                       char *why, size_t cap);
void moments_item_free(moments_item *it);   // NULL-safe on it->mom

// Checks m and puts its records into st, updating c (items, records, bad on
// success; rejected on a rejection). 0: written; 1: rejected (why); < 0: the
// store failed (vel error code).
int moments_item_put(store *st, const moments_folder *f, const bus_msg *m, moments_counts *c, char *why,
                     size_t cap);

#endif
