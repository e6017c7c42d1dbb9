// bench_nn_dense.c: times linear and conv2d forward+backward (all gradients)
// against bare cblas_sgemm calls of the same shapes / FLOPs, in the same run,
// and prints a table of GFLOP/s and ratios (ratio = sgemm time / op time;
// 1.0 = as fast as bare BLAS). Targets: linear >= 0.9, conv2d >= 0.6.
//
// Baselines: linear = the three GEMMs of forward, dinp and dweight on the
// same (N, C, OC); conv = forward (OC x B*OHW x K), dweight (OC x K x B*OHW)
// and dcol (K x B*OHW x OC) with K = C*KH*KW, i.e. the GEMMs of an im2col
// conv without the im2col, col2im and NCHW reshuffles.
// Op and baseline are measured alternately and the best of each is kept, so
// a busy shared machine slows both instead of biasing the ratio.
// Bounded: each row stops after ~0.8 s or 20 repetitions (at least 2, and
// just 1 once the whole run passes 35 s, so a loaded machine stays < 60 s).
// Not a correctness test (tests/nn/test_linear.c, test_conv.c are).
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "nn/conv.h"
#include "nn/linear.h"

#define ROW_SECONDS 0.8
#define RUN_SECONDS 35.0

static double g_start;
#define MAX_REPS 20

static float *rnd(size_t n, unsigned seed) {
    float *x = xmalloc(sizeof(float) * (n ? n : 1));
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        x[i] = (float)((s >> 40) * (1.0 / 16777216.0)) - 0.5f;
    }
    return x;
}

typedef void (*bench_fn)(void *ctx);

// Best time of op and of base, run alternately.
static void best_pair(bench_fn op, bench_fn base, void *ctx, double *t_op, double *t_base) {
    op(ctx); base(ctx);   // warm up (page faults, OpenBLAS buffers)
    *t_op = *t_base = 1e30;
    double start = vel_now();
    int min_reps = vel_now() - g_start > RUN_SECONDS ? 1 : 2;
    for (int r = 0; r < MAX_REPS && (r < min_reps || vel_now() - start < ROW_SECONDS); r++) {
        double t0 = vel_now();
        op(ctx);
        double t1 = vel_now();
        base(ctx);
        double t2 = vel_now();
        if (t1 - t0 < *t_op) *t_op = t1 - t0;
        if (t2 - t1 < *t_base) *t_base = t2 - t1;
    }
}

// ---- linear -------------------------------------------------------------

typedef struct {
    int N, C, OC;
    float *inp, *w, *b, *out, *dout, *dinp, *dw, *db;
} lin_ctx;

static void lin_op(void *p) {
    lin_ctx *c = p;
    linear_forward(c->out, c->inp, c->w, c->b, c->N, c->C, c->OC);
    linear_backward(c->dinp, c->dw, c->db, c->dout, c->inp, c->w, c->N, c->C, c->OC);
}

static void lin_base(void *p) {
    lin_ctx *c = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c->N, c->OC, c->C,
                1.0f, c->inp, c->C, c->w, c->C, 0.0f, c->out, c->OC);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->N, c->C, c->OC,
                1.0f, c->dout, c->OC, c->w, c->C, 1.0f, c->dinp, c->C);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c->OC, c->C, c->N,
                1.0f, c->dout, c->OC, c->inp, c->C, 1.0f, c->dw, c->C);
}

static double bench_linear(const char *name, int N, int C, int OC) {
    lin_ctx c = {N, C, OC, rnd((size_t)N * C, 1), rnd((size_t)OC * C, 2), rnd(OC, 3),
                 rnd((size_t)N * OC, 4), rnd((size_t)N * OC, 5), rnd((size_t)N * C, 6),
                 rnd((size_t)OC * C, 7), rnd(OC, 8)};
    double t_op, t_base;
    best_pair(lin_op, lin_base, &c, &t_op, &t_base);
    double gf = 3.0 * 2.0 * N * C * OC * 1e-9;
    printf("%-28s %5d %5d %5d %9.2f %9.2f %9.2f %7.3f\n", name, N, C, OC, t_op * 1e3,
           gf / t_op, gf / t_base, t_base / t_op);
    free(c.inp); free(c.w); free(c.b); free(c.out); free(c.dout); free(c.dinp);
    free(c.dw); free(c.db);
    return t_base / t_op;
}

// ---- conv2d -------------------------------------------------------------

typedef struct {
    conv2d_cfg cfg;
    int M, Ncols, K;            // GEMM view: OC x (B*OHW) x (C*KH*KW)
    float *inp, *w, *b, *out, *dout, *dinp, *dw, *db, *scratch;
    float *ga, *gb, *gc;        // baseline buffers: col (K,N), y (M,N), dcol (K,N)
} conv_ctx;

static void conv_op(void *p) {
    conv_ctx *c = p;
    conv2d_forward(c->out, c->inp, c->w, c->b, c->scratch, &c->cfg);
    conv2d_backward(c->dinp, c->dw, c->db, c->dout, c->inp, c->w, c->scratch, &c->cfg);
}

static void conv_base(void *p) {
    conv_ctx *c = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->M, c->Ncols, c->K,
                1.0f, c->w, c->K, c->ga, c->Ncols, 0.0f, c->gb, c->Ncols);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c->M, c->K, c->Ncols,
                1.0f, c->gb, c->Ncols, c->ga, c->Ncols, 1.0f, c->dw, c->K);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c->K, c->Ncols, c->M,
                1.0f, c->w, c->K, c->gb, c->Ncols, 0.0f, c->gc, c->Ncols);
}

static double bench_conv(const char *name, conv2d_cfg cfg) {
    int OH = conv2d_out_h(&cfg), OW = conv2d_out_w(&cfg);
    conv_ctx c = {0};
    c.cfg = cfg;
    c.M = cfg.OC; c.Ncols = cfg.B * OH * OW; c.K = cfg.C * cfg.KH * cfg.KW;
    size_t ni = (size_t)cfg.B * cfg.C * cfg.H * cfg.W, no = (size_t)c.M * c.Ncols;
    c.inp = rnd(ni, 1); c.w = rnd((size_t)c.M * c.K, 2); c.b = rnd(cfg.OC, 3);
    c.out = rnd(no, 4); c.dout = rnd(no, 5); c.dinp = rnd(ni, 6);
    c.dw = rnd((size_t)c.M * c.K, 7); c.db = rnd(cfg.OC, 8);
    c.scratch = rnd(conv2d_scratch_floats(&cfg), 9);
    c.ga = rnd((size_t)c.K * c.Ncols, 10); c.gb = rnd(no, 11); c.gc = rnd((size_t)c.K * c.Ncols, 12);
    double t_op, t_base;
    best_pair(conv_op, conv_base, &c, &t_op, &t_base);
    double gf = 3.0 * 2.0 * c.M * (double)c.Ncols * c.K * 1e-9;
    printf("%-28s %5d %5d %5d %9.2f %9.2f %9.2f %7.3f\n", name, c.M, c.Ncols, c.K,
           t_op * 1e3, gf / t_op, gf / t_base, t_base / t_op);
    free(c.inp); free(c.w); free(c.b); free(c.out); free(c.dout); free(c.dinp);
    free(c.dw); free(c.db); free(c.scratch); free(c.ga); free(c.gb); free(c.gc);
    return t_base / t_op;
}

int main(int argc, char **argv) {
    if (argc > 1) {
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
            printf("usage: %s\n"
                   "Times linear and conv2d forward+backward against bare cblas_sgemm\n"
                   "of the same shapes (ratio = sgemm time / op time; targets: linear\n"
                   ">= 0.9, conv >= 0.6). Threads: OPENBLAS_NUM_THREADS, OMP_NUM_THREADS.\n",
                   argv[0]);
            return 0;
        }
        fprintf(stderr, "%s: unknown argument '%s' (try --help)\n", argv[0], argv[1]);
        return 2;
    }
    double t0 = vel_now();
    g_start = t0;
    printf("linear fwd+bwd (3 GEMMs)          N     C    OC   op ms  op GF/s  sgemm GF/s  ratio\n");
    double lmin = 1e9, r;
    r = bench_linear("toy MLP 512->512", 4096, 512, 512); if (r < lmin) lmin = r;
    r = bench_linear("DiT-B qkv 768->2304", 2048, 768, 2304); if (r < lmin) lmin = r;
    r = bench_linear("DiT-B proj 768->768", 2048, 768, 768); if (r < lmin) lmin = r;
    r = bench_linear("DiT-B SwiGLU 768->2048", 2048, 768, 2048); if (r < lmin) lmin = r;
    r = bench_linear("DiT-B SwiGLU 2048->768", 2048, 2048, 768); if (r < lmin) lmin = r;
    r = bench_linear("DiT-B adaLN 768->4608 (B=8)", 8, 768, 4608); if (r < lmin) lmin = r;
    printf("\nconv2d fwd+bwd (B=16)            OC B*OHW     K   op ms  op GF/s  sgemm GF/s  ratio\n");
    double cmin = 1e9;
    conv2d_cfg ds64 = {16, 64, 32, 32, 64, 3, 3, 2, 0, 1, 0, 1};
    conv2d_cfg ds128 = {16, 128, 16, 16, 128, 3, 3, 2, 0, 1, 0, 1};
    r = bench_conv("k3 s1 64->64 32x32", conv2d_make(16, 64, 32, 32, 64, 3, 1, 1)); if (r < cmin) cmin = r;
    r = bench_conv("k3 s1 128->128 16x16", conv2d_make(16, 128, 16, 16, 128, 3, 1, 1)); if (r < cmin) cmin = r;
    r = bench_conv("k3 s1 128->128 8x8", conv2d_make(16, 128, 8, 8, 128, 3, 1, 1)); if (r < cmin) cmin = r;
    r = bench_conv("k3 s2 down 64 32->16", ds64); if (r < cmin) cmin = r;
    r = bench_conv("k3 s2 down 128 16->8", ds128); if (r < cmin) cmin = r;
    r = bench_conv("k1 64->128 16x16", conv2d_make(16, 64, 16, 16, 128, 1, 1, 0)); if (r < cmin) cmin = r;
    r = bench_conv("k3 s1 3->64 32x32 (conv_in)", conv2d_make(16, 3, 32, 32, 64, 3, 1, 1)); if (r < cmin) cmin = r;
    printf("\nworst ratio: linear %.3f (target 0.9), conv2d %.3f (target 0.6); %.1f s\n",
           lmin, cmin, vel_now() - t0);
    return 0;
}
