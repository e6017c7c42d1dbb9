// params.c: named parameter table (see params.h).
#include "nn/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "nn/backend.h"

// Offsets are rounded to 16 floats so every parameter starts 64-byte aligned.
static int64_t round16(int64_t n) { return (n + 15) & ~(int64_t)15; }

void param_table_init(param_table *pt) { memset(pt, 0, sizeof *pt); }

float *param_add(param_table *pt, const char *name, int ndim, const int64_t *shape) {
    CHECK(ndim >= 1 && ndim <= 4);
    CHECK(strlen(name) < PARAM_NAME_MAX);
    CHECK(param_find(pt, name) < 0);
    if (pt->count == pt->cap) {
        pt->cap = pt->cap ? 2 * pt->cap : 64;
        pt->info = realloc(pt->info, (size_t)pt->cap * sizeof *pt->info);
        CHECK(pt->info != NULL);
    }
    param_info *p = &pt->info[pt->count++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim;
    p->numel = 1;
    for (int i = 0; i < ndim; i++) {
        CHECK(shape[i] > 0);
        p->shape[i] = shape[i];
        p->numel *= shape[i];
    }
    p->offset = pt->total;
    p->no_decay = ndim < 2;
    pt->total += round16(p->numel);
    return pt->values ? pt->values + p->offset : NULL;
}

int param_table_commit(param_table *pt) {
    size_t bytes = (size_t)(pt->total ? pt->total : 16) * sizeof(float);
    pt->values = aligned_alloc(64, bytes);
    pt->grads = aligned_alloc(64, bytes);
    if (!pt->values || !pt->grads) {
        free(pt->values);
        free(pt->grads);
        pt->values = pt->grads = NULL;
        return VEL_ENOMEM;
    }
    memset(pt->values, 0, bytes);
    memset(pt->grads, 0, bytes);
    return 0;
}

float *param_data(const param_table *pt, int i) {
    CHECK(i >= 0 && i < pt->count && pt->values);
    return pt->values + pt->info[i].offset;
}

float *param_grad(const param_table *pt, int i) {
    CHECK(i >= 0 && i < pt->count && pt->grads);
    return pt->grads + pt->info[i].offset;
}

int param_find(const param_table *pt, const char *name) {
    for (int i = 0; i < pt->count; i++)
        if (strcmp(pt->info[i].name, name) == 0) return i;
    return -1;
}

void param_zero_grads(param_table *pt) {
    // On the device this is queued on the stream (a failure shows at nn_sync).
    if (pt->grads && device_zero(pt->grads, (size_t)pt->total * sizeof(float)))
        nn_fail(DEVICE_ECOPY, __func__, vel_error_detail());
}

int param_table_move(param_table *pt, device_kind kind) {
    CHECK(pt->values && pt->grads);
    if (device_of(pt->values) == kind) return 0;
    size_t bytes = (size_t)(pt->total ? pt->total : 16) * sizeof(float);
    void *v, *g;
    int r = device_alloc(kind, &v, bytes);
    if (r) return r;
    r = device_alloc(kind, &g, bytes);
    if (!r) r = device_copy(v, pt->values, bytes);
    if (!r) r = device_copy(g, pt->grads, bytes);
    if (r) {
        device_free(&v);
        device_free(&g);
        return r;
    }
    device_free((void **)&pt->values);
    device_free((void **)&pt->grads);
    pt->values = v;
    pt->grads = g;
    return 0;
}

int param_move_with_arena(param_table *pt, arena *act, device_kind *dev, device_kind kind,
                          void (*carve)(void *model, arena *a), int (*before_params)(void *model), void *model) {
    const device_kind old = *dev;
    *dev = kind;
    arena na;
    arena_measure(&na);
    carve(model, &na);
    int e = arena_commit_on(&na, kind);
    if (!e) {
        carve(model, &na);
        if (before_params) e = before_params(model);
        if (!e) e = param_table_move(pt, kind);
        if (e) arena_free(&na);
    }
    if (e) {
        *dev = old;
        arena_reset(act);   // carved once already: carve again from its start
        carve(model, act);
        return e;
    }
    arena_free(act);
    *act = na;
    return 0;
}

void param_table_free(param_table *pt) {
    free(pt->info);
    device_free((void **)&pt->values);
    device_free((void **)&pt->grads);
    memset(pt, 0, sizeof *pt);
}
