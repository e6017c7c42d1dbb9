// par.h (private to nn/cpu): when a loop is worth OpenMP threads.
// A parallel region costs a fork/join (microseconds, more when the workers
// have gone to sleep), so element-wise and reduction loops that touch fewer
// than PAR_MIN floats run on the calling thread: `#pragma omp parallel for
// if (PAR(n))`. The work split never changes results (each output is written
// by one thread; reductions use fixed chunks), so the threshold only moves
// time, never bits.
#ifndef NN_CPU_PAR_H
#define NN_CPU_PAR_H

#define PAR_MIN 32768
#define PAR(n) ((int64_t)(n) >= PAR_MIN)

#endif
