// linear.c: CPU linear layer (see nn/linear.h) on OpenBLAS sgemm.
// All three GEMMs are row-major calls on the PyTorch layouts, so no
// transposed copies are made. Backward accumulates (beta = 1).
// Threads: the GEMMs are cut into shape-only blocks over OpenMP
// (nn/cpu/gemm.h), so results do not depend on the thread count. The bias
// copy and the bias-gradient column sums are serial: O(N*OC) next to the
// O(N*C*OC) GEMMs.
#include "nn/cpu/ops.h"

#include <string.h>

#include "core/base.h"
#include "nn/cpu/gemm.h"

void linear_forward_cpu(float *out, const float *inp, const float *weight,
                    const float *bias, int N, int C, int OC) {
    // out (N,OC), inp (N,C), weight (OC,C), bias (OC) or NULL
    CHECK(N >= 0 && C > 0 && OC > 0);
    if (N == 0) return;
    float beta = 0.0f;
    if (bias) {
        // Seed out with the bias rows and let sgemm add onto them (beta = 1):
        // one pass over out instead of a second bias pass after the GEMM.
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, bias, sizeof(float) * OC);
        beta = 1.0f;
    }
    gemm_blocks(0, 1, N, OC, C, 1.0f, inp, C, weight, C, beta, out, OC);
}

void linear_backward_cpu(float *dinp, float *dweight, float *dbias,
                     const float *dout, const float *inp, const float *weight,
                     int N, int C, int OC) {
    // dinp (N,C), dweight (OC,C), dbias (OC), dout (N,OC), inp (N,C), weight (OC,C)
    CHECK(N >= 0 && C > 0 && OC > 0);
    if (N == 0) return;
    if (dinp)
        gemm_blocks(0, 0, N, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C);
    if (dweight)
        gemm_blocks(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
    if (dbias) {
        // Column sums over rows in order, in blocks of 1024 channels so dout is
        // read row by row instead of striding by OC per element.
        enum { CB = 1024 };   // 8 KiB of double accumulators on the stack
        int nblk = (OC + CB - 1) / CB;
        for (int blk = 0; blk < nblk; blk++) {
            int o0 = blk * CB, o1 = o0 + CB < OC ? o0 + CB : OC;
            double acc[CB];  // double: N can be B*T = thousands of rows
            for (int o = o0; o < o1; o++) acc[o - o0] = 0.0;
            for (int n = 0; n < N; n++) {
                const float *row = dout + (size_t)n * OC;
                // independent columns: vectorised (omp simd starts no threads)
                #pragma omp simd
                for (int o = o0; o < o1; o++) acc[o - o0] += row[o];
            }
            for (int o = o0; o < o1; o++) dbias[o] += (float)acc[o - o0];
        }
    }
}
