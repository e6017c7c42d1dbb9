// arena.h: one allocation per group (parameters, gradients, optimizer
// moments, activations), carved into named views. Sizes come from a first
// "measure" pass over the same carving code, so nothing is allocated inside a
// training or sampling step (HACKING.md, llm.c).
//
//   arena a; arena_measure(&a);        // pass 1: only counts bytes
//   carve(&a, ...);                    //   arena_alloc returns NULL here
//   arena_commit(&a);                  // one aligned allocation
//   carve(&a, ...);                    // pass 2: the same calls get memory
//   ...; arena_free(&a);
//
// An arena may live on the GPU (arena_commit_on(&a, DEVICE_CUDA) after
// device_activate): its memory is registered with nn/backend.h, so the ops
// given views into it run on the device. The carving is the same.
#ifndef NN_ARENA_H
#define NN_ARENA_H

#include <stddef.h>

#include "nn/device.h"

#define ARENA_ALIGN 64

typedef struct {
    char *base;      // NULL while measuring
    size_t size;     // committed bytes
    size_t used;
    int measuring;
} arena;

void arena_measure(arena *a);
// Allocates a zeroed block of the measured size. Returns 0 or VEL_ENOMEM.
int arena_commit(arena *a);
// The same on a chosen device: 0 or device_alloc's codes (nn/device.h).
int arena_commit_on(arena *a, device_kind kind);
// Initialise with a fixed capacity directly (zeroed). Returns 0 or VEL_ENOMEM.
int arena_init(arena *a, size_t bytes);
// Next ARENA_ALIGN-aligned block; NULL while measuring. CHECKs capacity.
void *arena_alloc(arena *a, size_t bytes);
float *arena_floats(arena *a, size_t n);
void arena_reset(arena *a);     // forget all blocks, keep the memory
void arena_free(arena *a);      // host or device

#endif
