// base.h: what every module shares: project-wide error codes, the always-on
// CHECK macro, checked allocation, and a few numeric helpers.
// Not here: tensors (core/tensor.h), arenas (nn/arena.h).
//
// Conventions (HACKING.md): library functions return int, 0 on success and a
// negative error code otherwise; each module keeps its own range of codes
// and a *_strerror. The shared codes below are in -1..-99; bus uses
// -100..-199, store -200..-299, nn checkpoints -300..-399, data -400..-499,
// models and stages -500..-599.
#ifndef CORE_BASE_H
#define CORE_BASE_H

#include <stddef.h>
#include <stdint.h>

enum {
    VEL_OK = 0,
    VEL_ENOMEM = -1,    // allocation failed
    VEL_EIO = -2,       // read/write/open failed (errno says more)
    VEL_EINVAL = -3,    // bad argument from the caller
    VEL_EFORMAT = -4,   // outside bytes are not what they claim to be
    VEL_ENOTFOUND = -5, // missing key, file or tensor
    VEL_ESHAPE = -6,    // shapes do not match
    VEL_ERANGE = -7,    // a value is out of the allowed range
};

// Message for the shared codes; modules chain to it from their *_strerror.
const char *vel_strerror(int err);

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

// Monotonic wall clock in seconds (for progress lines and benches).
double vel_now(void);

#endif
