// ema.c: parameter EMA (see ema.h).
#include "nn/ema.h"

#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "nn/backend.h"
#include "nn/device.h"
#ifdef VEL_HAVE_CUDA
#include "nn/cuda/ops.h"
#endif

int ema_create(ema **out, const param_table *pt) {
    *out = NULL;
    if (!pt->values) return VEL_EINVAL;
    ema *e = calloc(1, sizeof *e);
    if (!e) return VEL_ENOMEM;
    e->total = pt->total;
    // The shadow lives where the parameters live (nn/device.h).
    int r = device_alloc(device_of(pt->values), (void **)&e->shadow,
                         (size_t)(pt->total ? pt->total : 1) * sizeof(float));
    if (!r) r = device_copy(e->shadow, pt->values, (size_t)pt->total * sizeof(float));
    if (r) {
        ema_destroy(&e);
        return r;
    }
    *out = e;
    return 0;
}

void ema_destroy(ema **ep) {
    if (!ep || !*ep) return;
    device_free((void **)&(*ep)->shadow);
    free(*ep);
    *ep = NULL;
}

void ema_update(ema *e, const param_table *pt, double decay) {
    CHECK(pt->total == e->total);
    int where = NN_WHERE(e->shadow, pt->values);
    if (where == NN_DEVICE) NN_CUDA(ema_update_cuda(NN_CTX, e->shadow, pt->values, e->total, decay));
    if (where != NN_HOST) return;
    const float d = (float)decay, w = (float)(1.0 - decay);
    const int64_t n = e->total;
    float *s = e->shadow;
    const float *p = pt->values;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t k = 0; k < n; k++) s[k] = s[k] * d + p[k] * w;
}

void ema_swap(ema *e, param_table *pt) {
    CHECK(pt->total == e->total);
    int where = NN_WHERE(e->shadow, pt->values);
    if (where == NN_DEVICE) NN_CUDA(ema_swap_cuda(NN_CTX, e->shadow, pt->values, e->total));
    if (where != NN_HOST) return;
    // Contents, not pointers: models keep views into pt->values.
    const int64_t n = e->total;
    float *s = e->shadow, *p = pt->values;
    for (int64_t k = 0; k < n; k++) {
        float t = p[k];
        p[k] = s[k];
        s[k] = t;
    }
}

float *ema_param(const ema *e, const param_table *pt, int i) {
    CHECK(i >= 0 && i < pt->count && pt->total == e->total);
    return e->shadow + pt->info[i].offset;
}
