// dit_device.c: the host mirror of a GPU run's training state (dit.h). The
// checkpoint code (nn/checkpoint.h) reads and writes host memory, so a run on
// the GPU saves by copying parameters, AdamW moments and the EMA shadow into
// this mirror first, and resumes by loading into the mirror and copying up.
// Explicit device_copy calls, never host code reading device memory.
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "stages/train/dit.h"

int dit_mirror_create(dit_mirror *h, const param_table *pt, const optim_config *oc) {
    memset(h, 0, sizeof *h);
    param_table_init(&h->pt);
    for (int i = 0; i < pt->count; i++) {
        param_add(&h->pt, pt->info[i].name, pt->info[i].ndim, pt->info[i].shape);
        h->pt.info[i].no_decay = pt->info[i].no_decay;
    }
    int e = param_table_commit(&h->pt);
    if (!e) e = optim_create(&h->opt, &h->pt, oc);
    if (!e) e = ema_create(&h->ema, &h->pt);
    if (!e && h->pt.total != pt->total) e = vel_fail(VEL_EINVAL, "host mirror layout differs");
    if (e) dit_mirror_free(h);
    return e;
}

void dit_mirror_free(dit_mirror *h) {
    ema_destroy(&h->ema);
    optim_destroy(&h->opt);
    if (h->pt.info) param_table_free(&h->pt);
    memset(h, 0, sizeof *h);
}

static int xfer(float *dst, const float *src, int64_t n) {
    return device_copy(dst, src, sizeof(float) * (size_t)n);
}

int dit_mirror_pull(dit_mirror *h, const param_table *pt, const optim *o, const ema *e) {
    int r = xfer(h->pt.values, pt->values, pt->total);
    if (!r) r = xfer(h->opt->state, o->state, 2 * o->total);
    if (!r) r = xfer(h->ema->shadow, e->shadow, e->total);
    h->opt->step = o->step;
    return r;
}

int dit_mirror_push(const dit_mirror *h, param_table *pt, optim *o, ema *e) {
    int r = xfer(pt->values, h->pt.values, pt->total);
    if (!r) r = xfer(o->state, h->opt->state, 2 * o->total);
    if (!r) r = xfer(e->shadow, h->ema->shadow, e->total);
    o->step = h->opt->step;
    return r;
}
