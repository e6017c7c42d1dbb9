// base.h: what every module shares: the error style (core/error.h), the always-on
// CHECK macro, checked allocation, and a few numeric helpers.
// Not here: tensors (core/tensor.h), arenas (nn/arena.h).
//
// Error codes and messages: core/error.h (included here).
#ifndef CORE_BASE_H
#define CORE_BASE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

// CHECK stays on in release builds: an invariant of the program, never an I/O
// or allocation result the user can cause (those return error codes).
#define CHECK(cond)                                                     \
    do {                                                                \
        if (!(cond)) vel_check_fail(__FILE__, __LINE__, #cond);         \
    } while (0)
_Noreturn void vel_check_fail(const char *file, int line, const char *what);

// Allocation that dies with a message on failure: only for sizes the
// program itself decided (setup code), never for sizes read from input.
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);

// Index of the first NaN or infinity in x[0..n), or -1 when all are finite.
// The boundary check of every loader, receiver and writer of floats: they
// return VEL_ENONFINITE with a detail naming the tensor and this index.
int64_t vel_first_nonfinite(const float *x, int64_t n);

// Monotonic wall clock in seconds (for progress lines and benches).
double vel_now(void);
// CPU seconds used by this process, all threads (benches: on a loaded
// machine the time slices lost to other processes do not count).
double vel_cpu_now(void);

#endif
