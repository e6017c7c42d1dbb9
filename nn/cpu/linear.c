// linear.c: CPU linear layer (see nn/linear.h) on nn/cpu/gemm.h.
// All three GEMMs are row-major calls on the PyTorch layouts, so no
// transposed copies are made. Backward accumulates (beta = 1).
// Threads: the forward GEMM is cut into shape-only blocks over OpenMP
// (nn/cpu/gemm.h), each block seeding its own part of out with the bias;
// the backward runs its two products and the bias-gradient column blocks as
// tasks of one parallel region (linear_bwd). Each output is
// computed by one task in a fixed order, so results do not depend on the
// thread count.
#include "nn/cpu/ops.h"

#include "core/base.h"
#include "nn/cpu/fastexp.h"
#include "nn/cpu/gemm.h"
#include "nn/cpu/par.h"

// acc[o] += row[o] in double: independent columns, so any vector width gives
// the same bits; a CPU_CLONES leaf (the OpenMP body it runs in is baseline
// x86-64 code, two doubles per instruction). db_rows4 adds four consecutive
// rows (stride ld) one after the other in each column (the same additions
// in the same order as four db_row calls) with acc loaded and stored once.
CPU_CLONES static void db_row(double *acc, const float *row, int n) {
    #pragma omp simd
    for (int o = 0; o < n; o++) acc[o] += row[o];
}
CPU_CLONES static void db_rows4(double *acc, const float *row, size_t ld, int n) {
    #pragma omp simd
    for (int o = 0; o < n; o++) {
        double a = acc[o];
        a += row[o];
        a += row[ld + o];
        a += row[2 * ld + o];
        a += row[3 * ld + o];
        acc[o] = a;
    }
}

void linear_forward_cpu(float *out, const float *inp, const float *weight,
                    const float *bias, int N, int C, int OC) {
    // out (N,OC), inp (N,C), weight (OC,C), bias (OC) or NULL
    CHECK(N >= 0 && C > 0 && OC > 0);
    if (N == 0) return;
    // Bias: each GEMM block seeds its part of out with the bias rows and
    // sgemm adds onto them (beta = 1): one pass over out instead of a second
    // bias pass after the GEMM, on the block's own thread.
    gemm_blocks_bias(0, 1, N, OC, C, 1.0f, inp, C, weight, C, 0.0f, out, OC, bias);
}

// The row cut of a weight gradient (gemm_ksplit2): at least this many rows
// per half and this many multiply-adds in all (below, one call is cheaper
// than the fork and the scratch pass).
#define KSPLIT_MIN_ROWS 128
#define KSPLIT_MIN_MACS (1 << 22)

// Column sums of dout over its N rows for channels [o0, o1), in row order,
// in double (N can be B*T = thousands of rows), added onto dbias. The
// column blocks are fixed (DB_COLS), so the sum order does not depend on
// which thread runs a block; dout is read row by row instead of striding by
// OC per element.
enum { DB_COLS = 128 };   // 1 KiB of double accumulators on the stack
static void dbias_block(float *dbias, const float *dout, int N, int OC, int blk) {
    const int o0 = blk * DB_COLS, o1 = o0 + DB_COLS < OC ? o0 + DB_COLS : OC;
    double acc[DB_COLS];
    for (int o = o0; o < o1; o++) acc[o - o0] = 0.0;
    int n = 0;
    for (; n + 4 <= N; n += 4) db_rows4(acc, dout + (size_t)n * OC + o0, (size_t)OC, o1 - o0);
    for (; n < N; n++) db_row(acc, dout + (size_t)n * OC + o0, o1 - o0);
    for (int o = o0; o < o1; o++) dbias[o] += (float)acc[o - o0];
}

// Below this many multiply-adds per product a backward runs as before
// (each GEMM on its own, then the bias sums): one serial call is cheaper.
#define TASKS_MIN_MACS (1 << 20)

// set: dinp = (linear_backward_set: beta 0, each call clears its block of
// C) instead of +=; the parameter gradients accumulate.
//
// With both dinp and dweight wanted, the two products (the same number of
// multiply-adds) and the bias sums are independent tasks of ONE parallel
// region, taken dynamically: on two threads one computes dinp, the other
// dweight, whichever ends first takes the bias blocks. Against cutting each
// GEMM over the threads in turn (three regions, each ending in a wait for
// the slower half), this re-packs no shared operand and waits once; the
// small adaLN shapes (batch rows only), which gemm_blocks ran on one
// thread, get the second thread too. Each product is cut into half as many
// parts as gemm_blocks would cut it (machines with more cores keep them
// busy; one part each on two), and each part is one serial call whatever
// thread runs it: bits depend on the shape only, never on the thread count.
static void linear_bwd(float *dinp, float *dweight, float *dbias, const float *dout,
                       const float *inp, const float *weight, int N, int C, int OC, int set) {
    // dinp (N,C), dweight (OC,C), dbias (OC), dout (N,OC), inp (N,C), weight (OC,C)
    CHECK(N >= 0 && C > 0 && OC > 0);
    if (N == 0) return;
    const int nblk = (OC + DB_COLS - 1) / DB_COLS;
    if (dinp && dweight && (double)N * C * OC >= TASKS_MIN_MACS) {
        const int pi = (gemm_block_count(N, C, OC) + 1) / 2;
        const int pw = (gemm_block_count(OC, C, N) + 1) / 2;
        const int ntask = pi + pw + (dbias ? nblk : 0);
        #pragma omp parallel for schedule(dynamic, 1)
        for (int t = 0; t < ntask; t++) {
            if (t < pi)
                gemm_part(0, 0, N, C, OC, 1.0f, dout, OC, weight, C, set ? 0.0f : 1.0f, dinp, C,
                          NULL, pi, t);
            else if (t < pi + pw)
                gemm_part(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C, NULL, pw,
                          t - pi);
            else
                dbias_block(dbias, dout, N, OC, t - pi - pw);
        }
        return;
    }
    if (dinp)
        gemm_blocks(0, 0, N, C, OC, 1.0f, dout, OC, weight, C, set ? 0.0f : 1.0f, dinp, C);
    // dweight sums over the N rows: when the product cannot be cut along OC
    // or C but N is long, the rows are cut in two instead (nn/cpu/gemm.h).
    if (dweight && N >= 2 * KSPLIT_MIN_ROWS && gemm_block_count(OC, C, N) == 1 &&
        (double)OC * C * N >= KSPLIT_MIN_MACS)
        gemm_ksplit2(1, 0, OC, C, N, dout, OC, inp, C, dweight, C);
    else if (dweight)
        gemm_blocks(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
    if (dbias) {
        #pragma omp parallel for schedule(static) if (nblk > 1 && PAR((int64_t)N * OC))
        for (int blk = 0; blk < nblk; blk++) dbias_block(dbias, dout, N, OC, blk);
    }
}

void linear_backward_cpu(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, int N, int C, int OC) {
    linear_bwd(dinp, dweight, dbias, dout, inp, weight, N, C, OC, 0);
}
void linear_backward_set_cpu(float *dinp, float *dweight, float *dbias, const float *dout,
                             const float *inp, const float *weight, int N, int C, int OC) {
    linear_bwd(dinp, dweight, dbias, dout, inp, weight, N, C, OC, 1);
}
