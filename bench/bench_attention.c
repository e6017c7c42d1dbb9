// bench_attention.c: times nn/attention.h forward and backward against the
// two plain GEMMs a non-fused attention would run (S = Q K^T and O = S V per
// (batch, head), cblas_sgemm on a T x T buffer, no softmax), in the same run.
//
// FLOP counting: forward = those 2 GEMMs (4 T^2 HD flops per head); backward
// recomputes Q K^T and runs dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q,
// i.e. 5 GEMMs of the same size. So fwd+bwd = 3.5x the GEMM pair, and the
// printed "eff" ratios compare each pass with that many GEMM-pair times
// (1.0 = as fast as bare BLAS on the same FLOPs; target <= 2).
// Not a correctness test (tests/nn/test_attention.c is).
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/attention.h"
#include "nn/cpu/attn_avx512.h"
#include "core/base.h"

static void fill(float *x, size_t n, unsigned seed) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        x[i] = (float)((s >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
    }
}

static void run(int B, int T, int NH, int HD, int reps) {
    const int D = NH * HD;
    const size_t nq = (size_t)B * T * 3 * D, no = (size_t)B * T * D;
    float *qkv = xmalloc(nq * 4), *dqkv = xmalloc(nq * 4), *out = xmalloc(no * 4);
    float *dout = xmalloc(no * 4), *lse = xmalloc((size_t)B * NH * T * 4);
    float *S = xmalloc((size_t)T * T * 4), *O = xmalloc((size_t)T * HD * 4);
    fill(qkv, nq, 1);
    fill(dout, no, 2);
    double tf = 1e30, tb = 1e30, tg = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = vel_now();
        attention_forward(out, lse, qkv, B, T, NH, HD);
        double t1 = vel_now();
        memset(dqkv, 0, nq * 4);
        double t2 = vel_now();
        attention_backward(dqkv, dout, qkv, out, lse, B, T, NH, HD);
        double t3 = vel_now();
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++) {
                const float *q = qkv + (size_t)b * T * 3 * D + (size_t)h * HD;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HD, 0.125f,
                            q, 3 * D, q + D, 3 * D, 0.0f, S, T);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HD, T, 1.0f,
                            S, T, q + 2 * D, 3 * D, 0.0f, O, HD);
            }
        double t4 = vel_now();
        if (t1 - t0 < tf) tf = t1 - t0;
        if (t3 - t2 < tb) tb = t3 - t2;
        if (t4 - t3 < tg) tg = t4 - t3;
    }
    const double gf = 4.0 * B * NH * (double)T * T * HD * 1e-9;  // GEMM pair GFLOP
    printf("B=%d T=%4d NH=%d HD=%d | gemm pair %7.2f ms (%5.1f GFLOP/s) | fwd %7.2f ms eff %.2fx"
           " | bwd %7.2f ms eff %.2fx | fwd+bwd %7.2f ms eff %.2fx\n",
           B, T, NH, HD, tg * 1e3, gf / tg, tf * 1e3, tf / tg, tb * 1e3, tb / (2.5 * tg),
           (tf + tb) * 1e3, (tf + tb) / (3.5 * tg));
    fflush(stdout);
    free(qkv); free(dqkv); free(out); free(dout); free(lse); free(S); free(O);
}

int main(int argc, char **argv) {
    int reps = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: %s [--reps N] [--portable]\n"
                   "Times attention forward/backward (nn/attention.h) against the two\n"
                   "cblas_sgemm calls Q K^T and P V per head, at T=256 and T=1024,\n"
                   "head dim 64, 12 heads (and the DiT-S shape: T=64, 6 heads, batch 16).\n"
                   "Best of N runs (default 3).\n"
                   "eff = time / (GEMM-pair time x FLOP multiple: fwd 1, bwd 2.5,\n"
                   "fwd+bwd 3.5); 1.0 matches bare BLAS, target <= 2.\n"
                   "--portable: the OpenBLAS tile path even where the AVX-512\n"
                   "kernels (nn/cpu/attn_avx512.c) would run.\n", argv[0]);
            return 0;
        } else if (!strcmp(argv[i], "--portable")) {
            attn_avx512_force_off(1);
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = atoi(argv[++i]);
            if (reps < 1 || reps > 100) { fprintf(stderr, "--reps must be 1..100\n"); return 2; }
        } else {
            fprintf(stderr, "unknown argument '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    run(16, 64, 6, 64, reps);   // LightningDiT-S: 64 tokens, 6 heads
    run(1, 256, 12, 64, reps);
    run(8, 256, 12, 64, reps);
    run(1, 1024, 12, 64, reps);
    run(4, 1024, 12, 64, reps);
    return 0;
}
