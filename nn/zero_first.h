// zero_first.h (private to nn/): the device half of the `_set` backward ops
// (input gradients written instead of accumulated). The CPU kernels write
// directly; on the GPU the accumulating kernel runs on a buffer cleared
// here first, which gives the same result.
#ifndef NN_ZERO_FIRST_H
#define NN_ZERO_FIRST_H

#include <stddef.h>

#include "core/error.h"
#include "nn/backend.h"
#include "nn/device.h"

// Clears rows x cols floats of stride ld at p (one clear when ld == cols);
// a failure becomes op's sticky error. Returns 0 or the error.
static inline int nn_zero_first(const char *op, float *p, size_t rows, size_t cols, size_t ld) {
    int e = 0;
    if (ld == cols) e = device_zero(p, sizeof(float) * rows * cols);
    for (size_t r = 0; ld != cols && r < rows && !e; r++)
        e = device_zero(p + r * ld, sizeof(float) * cols);
    return e ? nn_fail(e, op, vel_error_detail()) : 0;
}

#endif
