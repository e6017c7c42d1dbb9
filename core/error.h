// error.h: the one error style of every library. A function returns an int
// (0 ok, a negative code otherwise); when it knows more than the code (which
// file, tensor, index, field) it records that as this thread's detail string
// with vel_fail. vel_strerror names any library's code through one range
// table, so a caller prints the code's message and the detail without
// knowing which library failed.
//
// Code ranges (each library's header defines its codes inside its range):
//   core -1..-99, bus -100..-199, store -200..-299,
//   checkpoints/safetensors -300..-399, data -400..-499,
//   models and stages -500..-599, nn/cuda -600..-649, device -650..-669,
//   dist -670..-699, metrics -700..-799.
// A library that adds a code adds its message to the table in core/error.c
// (tests/core/test_error.c checks that every code has one).
//
// Typical use:
//   if (n < 0) return vel_fail(DATA_EDIMS, "%s: %d images", path, n);
//   ...
//   int rc = thing_open(...);
//   if (rc) { fprintf(stderr, "stage: %s\n", vel_errmsg(rc)); return 1; }
#ifndef CORE_ERROR_H
#define CORE_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

enum {
    VEL_OK = 0,
    VEL_ENOMEM = -1,    // allocation failed
    VEL_EIO = -2,       // read/write/open failed (errno says more)
    VEL_EINVAL = -3,    // bad argument from the caller
    VEL_EFORMAT = -4,   // outside bytes are not what they claim to be
    VEL_ENOTFOUND = -5, // missing key, file or tensor
    VEL_ESHAPE = -6,    // shapes do not match
    VEL_ERANGE = -7,    // a value is out of the allowed range
    VEL_ENONFINITE = -8, // a NaN or infinity where finite numbers are required
};

// Records this thread's detail (printf-style, truncated at 1 KiB) together
// with code, and returns code.
int vel_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// This thread's latest detail ("" if none). Valid until the next vel_fail
// or vel_error_clear on this thread.
const char *vel_error_detail(void);

// Forgets this thread's detail (a caller that handled a failure and goes on).
void vel_error_clear(void);

// Static message for any library's code (0 -> "ok"). A code without a
// message gets "<library>: error code N" (or "unknown error code N" outside
// every range) in a thread-local buffer.
const char *vel_strerror(int code);

// "message: detail" when this thread's latest vel_fail recorded code (so an
// old detail is never shown for another failure), else vel_strerror(code).
// Thread-local buffer, valid until the next call on this thread.
const char *vel_errmsg(int code);

// Process exit status for a failure with code (the convention of every
// binary): 0 for 0; 1 for runtime failures (out of memory, I/O, sockets,
// LMDB, CUDA, collectives, an idle or aborted run); 2 for usage and input
// errors (bad flags, malformed or damaged files and messages, wrong shapes,
// non-finite numbers, missing keys).
int vel_exit_code(int code);

// Name of the library whose range holds code ("bus", "store", ...), or NULL.
const char *vel_error_library(int code);

#ifdef __cplusplus
}
#endif

#endif
