// attn_avx512.h: AVX-512 attention for head dim 64 (private to nn/cpu;
// nn/cpu/attention.c dispatches to it and keeps its OpenBLAS path as the
// portable fallback for other CPUs and head dims).
//
// One (batch, head) per call, same layouts and contract as nn/attention.h:
// q, k, v rows of 64 floats with row stride ld (3 NH HD in qkv), out / dout
// rows with stride ldo; the backward ADDS into dq, dk, dv (stride ld).
// Own register-blocked micro-kernels instead of sgemm calls: K, V (and
// K^T, or per 64 queries Q^T and dO^T) are packed once into contiguous
// panels, and the softmax e^(S - lse) and dS = P (dP - Di) are applied to
// each block while it is in registers or L1. Everything for one head is done in a
// fixed order by the calling thread, so results do not depend on the thread
// count (they do differ in the last bits from the OpenBLAS path).
#ifndef NN_CPU_ATTN_AVX512_H
#define NN_CPU_ATTN_AVX512_H

#include <stddef.h>

// 1 when this CPU has AVX-512F, the build has the kernels, HD == 64 and the
// portable path is not forced (attn_avx512_force_off).
int attn_avx512_usable(int HD);

// Tests only: nonzero forces the portable path (so both paths are tested on
// an AVX-512 machine). Not thread-safe; set it between calls.
void attn_avx512_force_off(int off);

// Per-thread scratch in floats for a head of T tokens (forward or backward).
size_t attn_avx512_scratch(int T);

// lse[0..T) written; out rows written. ws: attn_avx512_scratch(T) floats.
void attn_avx512_fwd_head(float *out, float *lse, const float *q, const float *k,
                          const float *v, int T, int ld, int ldo, float scale, float *ws);

// dq, dk, dv (+=), or with set nonzero written (=, the same bits as adding
// to zeros); ws: attn_avx512_scratch(T) floats.
void attn_avx512_bwd_head(float *dq, float *dk, float *dv, const float *dout,
                          const float *q, const float *k, const float *v,
                          const float *out, const float *lse, int T, int ld, int ldo,
                          float scale, float *ws, int set);

// Tests only: y[i] = the kernels' vector e^x[i] (0 and returns 0 without
// AVX-512; returns 1 when it ran).
int attn_avx512_exp(float *y, const float *x, int n);

#endif
