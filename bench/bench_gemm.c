// bench_gemm.c: the own AVX-512 SGEMM (nn/cpu/sgemm_avx512.c) against the
// OpenBLAS path of nn/cpu/gemm.c (single-threaded cblas_sgemm calls in
// shape-only blocks, gemm_force_blas), interleaved in one run, at 1 and 2
// OpenMP threads: GF/s of each (median of the samples) and own/BLAS time.
// Shapes: sgemm 1024^3, and the three GEMMs of a linear layer (forward NT,
// input gradient NN, weight gradient TN; nn/cpu/linear.c) on the bench
// rows' and the LightningDiT-S/B shapes, small-M adaLN rows, odd sizes.
// Also prints the largest relative difference between the two results.
// Time it under the timing lock, isolated (HACKING.md); not a test.
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "nn/cpu/gemm.h"
#include "nn/cpu/sgemm_avx512.h"

typedef struct { const char *name; int ta, tb, M, N, K; } shape;

// A linear layer of N rows, C -> OC: its forward, input and weight gradient.
#define LIN(nm, rows, c, oc) \
    {nm " fwd", 0, 1, rows, oc, c}, {nm " dinp", 0, 0, rows, c, oc}, {nm " dW", 1, 0, oc, c, rows}

static const shape shapes[] = {
    {"sgemm 1024^3", 0, 0, 1024, 1024, 1024},
    LIN("toy 512->512 N4096", 4096, 512, 512),
    LIN("B qkv 768->2304 N2048", 2048, 768, 2304),
    LIN("B proj 768->768 N2048", 2048, 768, 768),
    LIN("B swi 768->2048 N2048", 2048, 768, 2048),
    LIN("B swi 2048->768 N2048", 2048, 2048, 768),
    LIN("S qkv 384->1152 N1024", 1024, 384, 1152),
    LIN("S proj 384->384 N1024", 1024, 384, 384),
    LIN("S swi 384->2048 N1024", 1024, 384, 2048),
    LIN("S swi 1024->384 N1024", 1024, 1024, 384),
    LIN("B adaLN 768->4608 N8", 8, 768, 4608),
    LIN("S adaLN 384->2304 N16", 16, 384, 2304),
    {"odd NN 1001x999x1003", 0, 0, 1001, 999, 1003},
    {"odd NT 77x1531x333", 0, 1, 77, 1531, 333},
    {"small K 1024x1024x64", 0, 0, 1024, 1024, 64},
    {"small K 1024x1024x128", 0, 0, 1024, 1024, 128},
    {"small M 64x1024x1024", 0, 0, 64, 1024, 1024},
    {"small M 128x1024x1024", 0, 0, 128, 1024, 1024},
    {"small N 1024x64x1024", 0, 0, 1024, 64, 1024},
    {"small N 1024x128x1024", 0, 0, 1024, 128, 1024},
    {"conv dcol TN 576x2048x64", 1, 0, 576, 2048, 64},
    {"conv fwd 64x2048x576", 0, 0, 64, 2048, 576},
    // the VAE's GEMMs: attention core at 8x8 latents (T 64, C 64), the
    // stride-2 convs' im2col products (forward, filter and data gradient)
    {"vae attn NN 64^3", 0, 0, 64, 64, 64},
    {"vae attn NT 64^3", 0, 1, 64, 64, 64},
    {"vae attn TN 64^3", 1, 0, 64, 64, 64},
    {"tiny NN 128^3", 0, 0, 128, 128, 128},
    {"tiny TN 128^3", 1, 0, 128, 128, 128},
    {"tiny NT 128^3", 0, 1, 128, 128, 128},
    {"tiny NN 64x256x64", 0, 0, 64, 256, 64},
    {"tiny TN 256x64x64", 1, 0, 256, 64, 64},
    {"vae down32 fwd 32x2048x288", 0, 0, 32, 2048, 288},
    {"vae down32 dW NT 32x288x2048", 0, 1, 32, 288, 2048},
    {"vae down32 dcol TN 288x2048x32", 1, 0, 288, 2048, 32},
    {"vae down64 fwd 64x512x576", 0, 0, 64, 512, 576},
    {"vae down64 dW NT 64x576x512", 0, 1, 64, 576, 512},
    {"vae down64 dcol TN 576x512x64", 1, 0, 576, 512, 64},
};

static double median(double *t, int n) {
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
            double x = t[j]; t[j] = t[j - 1]; t[j - 1] = x;
        }
    return t[n / 2];
}

// name contains one of the comma-separated words of list
static int matches(const char *name, const char *list) {
    char w[64];
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        if (n && n < sizeof w) {
            memcpy(w, p, n);
            w[n] = 0;
            if (strstr(name, w)) return 1;
        }
        p += n + (p[n] == ',');
    }
    return 0;
}

static void run(const shape *s, int own, const float *A, const float *B, float *C) {
    const int lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
    if (own)
        sgemm_avx512(s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 0.0f, C, s->N, NULL, 1);
    else   // gemm_force_blas(1) set in main
        gemm_blocks(s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 0.0f, C, s->N);
}

int main(int argc, char **argv) {
    int reps = 7;
    const char *only = NULL;
    int thr_lo = 1, thr_hi = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) thr_lo = thr_hi = atoi(argv[++i]);
        else {
            printf("usage: %s [--reps N (3..99, default 7)] [--only WORD,WORD...] [--threads 1|2]\n"
                   "Times the own AVX-512 SGEMM against the OpenBLAS path of nn/cpu/gemm.c,\n"
                   "interleaved, at 1 and 2 OpenMP threads; prints GF/s (medians).\n", argv[0]);
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (reps < 3 || reps > 99) {
        fprintf(stderr, "bench_gemm: --reps must be 3..99\n");
        return 2;
    }
    if (!sgemm_avx512_usable()) {
        printf("bench_gemm: this CPU has no AVX-512F; nothing to compare\n");
        return 0;
    }
    gemm_force_blas(1);
    const size_t mx = (size_t)4608 * 2048 + 4096;
    float *A = xmalloc(sizeof(float) * mx), *B = xmalloc(sizeof(float) * mx);
    float *C0 = xmalloc(sizeof(float) * mx), *C1 = xmalloc(sizeof(float) * mx);
    for (size_t i = 0; i < mx; i++) {
        A[i] = sinf((float)i * 0.37f);
        B[i] = cosf((float)i * 0.11f);
    }
    memset(C0, 0, sizeof(float) * mx);
    memset(C1, 0, sizeof(float) * mx);
    printf("%-28s %3s %9s %9s %7s %8s\n", "shape (M N K)", "thr", "own GF/s", "BLAS GF/s",
           "own/BL", "max rel");
    double t[2][99];
    for (int thr = thr_lo; thr <= thr_hi; thr++) {
        omp_set_num_threads(thr);
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            const shape *s = &shapes[si];
            if (only && !matches(s->name, only)) continue;
            run(s, 0, A, B, C0);
            run(s, 1, A, B, C1);
            for (int r = 0; r < reps; r++)
                for (int w = 0; w < 2; w++) {
                    const double t0 = vel_now();
                    run(s, w, A, B, w ? C1 : C0);
                    t[w][r] = vel_now() - t0;
                }
            double md = 0;
            for (size_t j = 0; j < (size_t)s->M * s->N; j++) {
                const double d = fabs((double)C0[j] - C1[j]) / (fabs(C0[j]) + 1e-3);
                if (d > md) md = d;
            }
            const double fl = 2.0 * s->M * s->N * s->K * 1e-9;
            const double tb = median(t[0], reps), to = median(t[1], reps);
            printf("%-28s %3d %9.1f %9.1f %7.3f %8.1e\n", s->name, thr, fl / to, fl / tb,
                   to / tb, md);
            fflush(stdout);
        }
    }
    free(A); free(B); free(C0); free(C1);
    return 0;
}
