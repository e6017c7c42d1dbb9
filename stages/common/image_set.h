// image_set.h: the images `eval --model images` collects from the bus, one
// item per "images" message (docs/PROTOCOL.md: u8 (n, H, W, C) channels last
// and labels i32 (n)), checked before anything is kept: a message of another
// kind, without those tensors, of another image shape than the first kept
// one, or with a label outside [0, classes) is rejected with a reason and
// counted, and collection goes on. Duplicates are the bus sink's business
// (bus_sink_next hands out each (src, id) once). image_set_finish orders the
// items by (src, id), so the output does not depend on arrival order or on
// how many workers made the images.
#ifndef STAGES_EVAL_IMAGE_SET_H
#define STAGES_EVAL_IMAGE_SET_H

#include <stddef.h>
#include <stdint.h>

#include "bus/bus.h"

typedef struct {
    int H, W, C;          // image shape, fixed by the first kept item
    int classes;          // labels must lie in [0, classes)
    int64_t max_images;   // bound on what is held (refuse beyond it)
    void *items;          // internal
    int nitems, cap;
    int64_t total;        // images kept
    int64_t rejected;     // messages refused
} image_set;

// classes >= 1, max_images >= 1.
void image_set_init(image_set *s, int classes, int64_t max_images);
// 0: kept; 1: rejected (reason in why); VEL_ENOMEM.
int image_set_add(image_set *s, const bus_msg *m, char *why, size_t why_cap);
// All kept images in (src, id) order: *u8 (n, H, W, C), *labels (n), both
// malloc'ed for the caller. VEL_ENOMEM or 0.
int image_set_finish(image_set *s, uint8_t **u8, int32_t **labels, int64_t *n);
void image_set_free(image_set *s);

#endif
