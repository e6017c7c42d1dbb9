// flash_tsan_drv.c: a plain program (not a Criterion test: test_flash_tsan
// compiles it with -fsanitize=thread and runs it) that runs the tiled
// attention kernel bodies of nn/cuda/flash_attn.h on the host, one pthread per
// CUDA thread, FA_SYNC() = pthread_barrier_wait. ThreadSanitizer then checks
// the barriers: two threads touching the same shared-memory word without a
// barrier between them is reported as a data race (a removed FA_SYNC() after
// the forward's row statistics was reported this way when this was written).
// Values are not checked here (test_flash_emul compares them with the CPU).
// Detection is likely, not certain: see main().
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static pthread_barrier_t g_bar;
#define FA_SYNC() pthread_barrier_wait(&g_bar)
#include "nn/cuda/flash_attn.h"

typedef struct {
    int which, tile, bx, by, tid, nt, bf16;
    fa_geom g;
    float *sm, *out, *lse, *dqkv, *Drow;
    const float *dout;
    const void *qkv;
} job;

static void *run(void *p) {
    job *j = p;
    if (j->which == FA_FWD)
        fa_forward_body(j->out, j->lse, j->qkv, j->bf16, j->g, j->tile, j->sm, j->bx, j->by, j->tid,
                        j->nt);
    else if (j->which == FA_DQ)
        fa_dq_body(j->dqkv, j->dout, j->qkv, j->bf16, j->lse, j->Drow, j->g, j->tile, j->sm, j->bx,
                   j->by, j->tid, j->nt);
    else
        fa_dkv_body(j->dqkv, j->dout, j->qkv, j->bf16, j->lse, j->Drow, j->g, j->tile, j->sm, j->bx,
                    j->by, j->tid, j->nt);
    return NULL;
}

static int launch(job p) {
    const int tile = fa_tile(p.which, p.g.HD);
    const int64_t nsm = fa_smem_floats(p.which, tile, p.g.HD);
    float *sm = malloc((size_t)nsm * sizeof(float));
    job js[FA_THREADS];
    pthread_t th[FA_THREADS];
    const int nt = p.nt;
    if (!sm) return 1;
    for (int bx = 0; bx < p.g.B * p.g.NH; bx++)
        for (int by = 0; by < (p.g.T + tile - 1) / tile; by++) {
            if (pthread_barrier_init(&g_bar, NULL, (unsigned)nt)) return 1;
            for (int t = 0; t < nt; t++) {
                js[t] = p;
                js[t].tile = tile, js[t].sm = sm, js[t].bx = bx, js[t].by = by, js[t].tid = t;
                if (pthread_create(&th[t], NULL, run, &js[t])) return 1;
            }
            for (int t = 0; t < nt; t++) pthread_join(th[t], NULL);
            pthread_barrier_destroy(&g_bar);
        }
    free(sm);
    return 0;
}

// One shape with nt threads per block: forward, row dots, dq and dk/dv.
static int shape(int B, int T, int NH, int HD, int nt) {
    const int64_t nq = (int64_t)B * T * 3 * NH * HD, no = (int64_t)B * T * NH * HD,
                  nl = (int64_t)B * NH * T;
    float *qkv = malloc(nq * 4), *out = malloc(no * 4), *lse = malloc(nl * 4), *g = malloc(no * 4);
    float *dq = calloc((size_t)nq, 4), *D = malloc(nl * 4);
    if (!qkv || !out || !lse || !g || !dq || !D) return 1;
    for (int64_t i = 0; i < nq; i++) qkv[i] = sinf((float)i * 0.37f);
    for (int64_t i = 0; i < no; i++) g[i] = cosf((float)i * 0.11f);
    fa_geom geo = {B, T, NH, HD, 1.0f / sqrtf((float)HD)};
    int e = launch((job){.which = FA_FWD, .nt = nt, .g = geo, .out = out, .lse = lse, .qkv = qkv});
    for (int64_t r = 0; r < nl; r++) fa_rowdot_body(D, g, out, geo, r);
    e = e || launch((job){.which = FA_DQ, .nt = nt, .g = geo, .dqkv = dq, .dout = g, .qkv = qkv, .lse = lse, .Drow = D});
    e = e || launch((job){.which = FA_DKV, .nt = nt, .g = geo, .dqkv = dq, .dout = g, .qkv = qkv, .lse = lse, .Drow = D});
    int finite = 1;
    for (int64_t i = 0; i < nq; i++) finite &= isfinite(dq[i]);
    printf("B%d T%d NH%d HD%d, %d threads: %s\n", B, T, NH, HD, nt, e ? "launch failed" : finite ? "ok" : "non-finite");
    free(qkv); free(out); free(lse); free(g); free(dq); free(D);
    return e || !finite;
}

// ThreadSanitizer keeps a few accesses per word, so a race among many
// threads can be missed on one run (a removed barrier was caught on 3 of 4
// runs at 128 threads); fewer threads per block and repeats raise the odds
// (the kernels' loops stride by nt, so any nt is a valid launch).
int main(void) {
    int e = 0;
    for (int rep = 0; rep < 2; rep++) {
        e = e || shape(1, 45, 2, 24, 32);   // ragged tiles for every kernel's tile
        e = e || shape(1, 19, 1, 72, 8);    // the DiT-XL head dim
    }
    return e || shape(1, 45, 2, 24, FA_THREADS);   // the launch size of flash_attn.cu
}
