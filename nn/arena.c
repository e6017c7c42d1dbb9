// arena.c: bump allocator with a measuring pass.
#include "nn/arena.h"

#include <stdlib.h>
#include <string.h>

#include "core/base.h"

static size_t round_up(size_t n) { return (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1); }

void arena_measure(arena *a) { *a = (arena){.measuring = 1}; }

int arena_commit(arena *a) {
    CHECK(a->measuring);
    return arena_init(a, a->used);
}

int arena_commit_on(arena *a, device_kind kind) {
    CHECK(a->measuring);
    size_t n = round_up(a->used ? a->used : ARENA_ALIGN);
    void *p;
    int r = device_alloc(kind, &p, n);   // zeroed, ARENA_ALIGN-aligned on both kinds
    if (r) return r;
    *a = (arena){.base = p, .size = n};
    return 0;
}

int arena_init(arena *a, size_t bytes) {
    size_t n = round_up(bytes ? bytes : ARENA_ALIGN);
    char *p = aligned_alloc(ARENA_ALIGN, n);
    if (!p) return VEL_ENOMEM;
    memset(p, 0, n);
    *a = (arena){.base = p, .size = n};
    return 0;
}

void *arena_alloc(arena *a, size_t bytes) {
    size_t n = round_up(bytes);
    if (a->measuring) {
        a->used += n;
        return NULL;
    }
    CHECK(a->used + n <= a->size);
    void *p = a->base + a->used;
    a->used += n;
    return p;
}

float *arena_floats(arena *a, size_t n) { return arena_alloc(a, n * sizeof(float)); }

void arena_reset(arena *a) { a->used = 0; }

void arena_free(arena *a) {
    device_free((void **)&a->base);
    *a = (arena){0};
}
