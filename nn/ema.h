// ema.h: exponential moving average of a model's parameters (a shadow copy
// of the flat values buffer), for sampling with EMA weights.
//   shadow = shadow * (float)d + p * (float)(1 - d)   (fp32, in that grouping)
// Not here: warm-up of the decay (callers pass the d they want per step).
// Device: the shadow is allocated where pt->values lives, and ema_update /
// ema_swap run there (nn/cuda/ema.cu, the same fp32 arithmetic).
#ifndef NN_EMA_H
#define NN_EMA_H

#include <stdint.h>

#include "nn/params.h"

typedef struct {
    int64_t total;
    float *shadow;    // owned, total floats, same layout as pt->values
} ema;

// Shadow starts as a copy of pt's current values. 0 or VEL_ENOMEM / VEL_EINVAL.
int ema_create(ema **out, const param_table *pt);
void ema_destroy(ema **e);
void ema_update(ema *e, const param_table *pt, double decay);
// Exchange shadow and pt->values (evaluate with EMA weights, then swap back).
void ema_swap(ema *e, param_table *pt);
float *ema_param(const ema *e, const param_table *pt, int i);   // shadow of parameter i

#endif
