// scratch.h (private to nn/cpu): grow-only scratch buffers, one per thread
// and purpose (a `static _Thread_local scratch_buf`). Kernels that run in
// every layer of every step (attention tiles, GEMM packing, a K-split's
// second half) allocate only on a thread's first call and when a shape
// needs more, never per call. A thread's buffers are freed when it exits
// (scratch.c: libgomp ends the surplus threads when a team shrinks, so a
// program that changes its thread count would otherwise lose them, 2-4 MiB
// per thread and change); the calling thread's by the OS at exit.
#ifndef NN_CPU_SCRATCH_H
#define NN_CPU_SCRATCH_H

#include <stddef.h>

typedef struct { float *p; size_t n; } scratch_buf;

// b's buffer with room for n floats, or NULL when it cannot grow (b is then
// empty). huge: 2 MiB aligned and advised huge pages (GEMM pack buffers:
// fewer DTLB misses over the panels, measured 0-9% faster, noisy); else
// malloc's alignment. Only a growth allocates (a call, not a step, per
// thread and shape), so it is not inline.
float *scratch_grow(scratch_buf *b, size_t n, int huge);

// Buffers allocated and not yet freed, over all threads (for tests).
long scratch_live_buffers(void);

#endif
