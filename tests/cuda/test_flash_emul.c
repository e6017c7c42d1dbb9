// test_flash_emul.c: the tiled attention kernels of nn/cuda/flash_attn.h run
// on the HOST, one pthread per CUDA thread (FA_SYNC() = a barrier over the
// block), against the CPU attention (nn/attention.h): forward out and lse,
// backward dqkv (accumulated onto a non-zero start), fp32 and bf16 qkv. This
// checks the kernels' index arithmetic, tile edges (T not a multiple of the
// tile, T smaller than a tile), shared-memory carving and barriers without a
// GPU; it runs everywhere (no CUDA needed). The same bodies on the GPU are
// checked by test_parity_attention (skips without a GPU).
//
// Each block gets FA_THREADS threads (the launch size of flash_attn.cu) and a
// fresh shared-memory buffer of exactly fa_smem_floats(...) floats filled with
// NaN, so a read of shared memory that no thread wrote (or past the carving)
// shows up as NaN in the result. A missing barrier would show up as a wrong
// value only if the threads happen to interleave badly: not a proof.
//
// Tolerance: HACKING.md's CUDA-vs-CPU default, atol = rtol = 1e-4 (the
// kernels and the CPU sum in different orders; measured max abs error
// ~1e-6 here, logged by each check).
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

static pthread_barrier_t g_bar;
#define FA_SYNC() pthread_barrier_wait(&g_bar)
#include "nn/cuda/flash_attn.h"

#include "core/tensor.h"
#include "nn/attention.h"
#include "tests/util.h"

#define TOL 1e-4

typedef struct {
    int which;   // FA_FWD, FA_DQ, FA_DKV
    float *out, *lse, *dqkv, *Drow;
    const float *dout;
    const void *qkv;
    int bf16, tile;
    fa_geom g;
    float *sm;
    int bx, by, tid;
} job;

static void *run_thread(void *p) {
    job *j = p;
    if (j->which == FA_FWD)
        fa_forward_body(j->out, j->lse, j->qkv, j->bf16, j->g, j->tile, j->sm, j->bx, j->by, j->tid,
                        FA_THREADS);
    else if (j->which == FA_DQ)
        fa_dq_body(j->dqkv, j->dout, j->qkv, j->bf16, j->lse, j->Drow, j->g, j->tile, j->sm, j->bx,
                   j->by, j->tid, FA_THREADS);
    else
        fa_dkv_body(j->dqkv, j->dout, j->qkv, j->bf16, j->lse, j->Drow, j->g, j->tile, j->sm, j->bx,
                    j->by, j->tid, FA_THREADS);
    return NULL;
}

// The launch of flash_attn.cu: grid (B*NH, ceil(T/tile)), FA_THREADS threads,
// the kernel's tile and shared memory; blocks run one after another.
static void launch(job proto) {
    const fa_geom g = proto.g;
    const int tile = fa_tile(proto.which, g.HD);
    cr_assert_gt(tile, 0, "no tile for HD %d", g.HD);
    const int64_t nsm = fa_smem_floats(proto.which, tile, g.HD);
    cr_assert_leq(nsm * 4, FA_SMEM_MAX);
    float *sm = malloc((size_t)nsm * sizeof(float));
    job jobs[FA_THREADS];
    pthread_t th[FA_THREADS];
    for (int bx = 0; bx < g.B * g.NH; bx++)
        for (int by = 0; by < (g.T + tile - 1) / tile; by++) {
            for (int64_t i = 0; i < nsm; i++) sm[i] = NAN;
            cr_assert_eq(pthread_barrier_init(&g_bar, NULL, FA_THREADS), 0);
            for (int t = 0; t < FA_THREADS; t++) {
                jobs[t] = proto;
                jobs[t].tile = tile;
                jobs[t].sm = sm;
                jobs[t].bx = bx, jobs[t].by = by, jobs[t].tid = t;
                cr_assert_eq(pthread_create(&th[t], NULL, run_thread, &jobs[t]), 0);
            }
            for (int t = 0; t < FA_THREADS; t++) pthread_join(th[t], NULL);
            pthread_barrier_destroy(&g_bar);
        }
    free(sm);
}

static void check(const char *what, const float *x, const float *ref, int64_t n) {
    cmp_result r = compare_f32(x, ref, n, TOL, TOL);
    cr_log_info("%s: n=%lld max_abs=%.3g max_rel=%.3g nmse=%.3g", what, (long long)n, r.max_abs,
                r.max_rel, r.nmse);
    expect_close_f32(what, x, ref, n, TOL, TOL);
}

// Forward and backward of one shape through the emulated kernels vs the CPU op;
// bf16: qkv rounded to bf16 (the CPU sees the rounded values as fp32).
static void run_shape(int B, int T, int NH, int HD, int bf16, uint64_t seed) {
    const int64_t nqkv = (int64_t)B * T * 3 * NH * HD, no = (int64_t)B * T * NH * HD,
                  nl = (int64_t)B * NH * T;
    float *qkv = malloc(nqkv * 4), *g = malloc(no * 4), *d0 = malloc(nqkv * 4);
    uint16_t *qb = malloc(nqkv * 2);
    fill_normal(qkv, nqkv, seed, 1.0f);
    fill_normal(g, no, seed + 1, 1.0f);
    fill_normal(d0, nqkv, seed + 2, 0.5f);
    if (bf16)
        for (int64_t i = 0; i < nqkv; i++) {
            qb[i] = f32_to_bf16(qkv[i]);
            qkv[i] = bf16_to_f32(qb[i]);
        }
    float *out = malloc(no * 4), *lse = malloc(nl * 4), *dq = malloc(nqkv * 4);
    float *eout = malloc(no * 4), *e_lse = malloc(nl * 4), *edq = malloc(nqkv * 4), *Drow = malloc(nl * 4);
    memcpy(dq, d0, nqkv * 4);
    memcpy(edq, d0, nqkv * 4);
    attention_forward(out, lse, qkv, B, T, NH, HD);
    attention_backward(dq, g, qkv, out, lse, B, T, NH, HD);

    fa_geom geo = {B, T, NH, HD, 1.0f / sqrtf((float)HD)};
    const void *src = bf16 ? (const void *)qb : (const void *)qkv;
    launch((job){.which = FA_FWD, .out = eout, .lse = e_lse, .qkv = src, .bf16 = bf16, .g = geo});
    char what[160];
    snprintf(what, sizeof what, "B%d T%d NH%d HD%d %s: out", B, T, NH, HD, bf16 ? "bf16" : "fp32");
    check(what, eout, out, no);
    snprintf(what, sizeof what, "B%d T%d NH%d HD%d %s: lse", B, T, NH, HD, bf16 ? "bf16" : "fp32");
    check(what, e_lse, lse, nl);
    // The backward from the emulated forward's own out and lse, as on the GPU.
    for (int64_t r = 0; r < nl; r++) fa_rowdot_body(Drow, g, eout, geo, r);
    launch((job){.which = FA_DQ, .dqkv = edq, .dout = g, .qkv = src, .bf16 = bf16, .lse = e_lse,
                 .Drow = Drow, .g = geo});
    launch((job){.which = FA_DKV, .dqkv = edq, .dout = g, .qkv = src, .bf16 = bf16, .lse = e_lse,
                 .Drow = Drow, .g = geo});
    snprintf(what, sizeof what, "B%d T%d NH%d HD%d %s: dqkv", B, T, NH, HD, bf16 ? "bf16" : "fp32");
    check(what, edq, dq, nqkv);
    free(qkv); free(g); free(d0); free(qb); free(out); free(lse); free(dq);
    free(eout); free(e_lse); free(edq); free(Drow);
}

// T = 70: several tiles with a ragged last one, for every kernel's tile.
Test(flash_emul, fp32_head_dim_16_ragged_tiles) { run_shape(2, 70, 2, 16, 0, 1); }
// HD 64 (DiT S/B/L) with T < every tile; HD 72 (DiT XL), T = 37.
Test(flash_emul, fp32_head_dim_64_short_sequence) { run_shape(1, 5, 2, 64, 0, 2); }
Test(flash_emul, fp32_head_dim_72) { run_shape(1, 37, 2, 72, 0, 3); }
Test(flash_emul, bf16_qkv_head_dim_32) { run_shape(1, 45, 3, 32, 1, 4); }

// Every DiT preset's head dim (tiny 16 or 32, S/B/L 64, XL 72) and the op's
// limit get a tile for every kernel within the default 48 KiB of shared memory.
Test(flash_emul, tiles_fit_shared_memory) {
    const int hds[] = {16, 32, 64, 72, 128, ATTN_HD_MAX};
    for (size_t i = 0; i < sizeof hds / sizeof *hds; i++)
        for (int k = FA_FWD; k <= FA_DKV; k++) {
            int t = fa_tile(k, hds[i]);
            cr_expect_geq(t, 4, "HD %d kernel %d: tile %d", hds[i], k, t);
            cr_expect_leq(fa_smem_floats(k, t, hds[i]) * 4, FA_SMEM_MAX);
        }
    cr_expect_eq(fa_tile(FA_FWD, 64), 32);   // the B/1 bench shape's forward tile
}
