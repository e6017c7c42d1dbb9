// sgemm_avx512.c: own AVX-512 SGEMM (see sgemm_avx512.h).
//
// Goto/BLIS structure, row-major. For each block of NC columns (jc) and KC
// depths (pc), op(B)'s block is packed into panels of NR = 32 columns
// (k-major, 32 floats per depth); each task (a block of rows times a group
// of column panels) packs its rows of op(A) into panels of MR = 14 rows
// (k-major, 14 floats per depth) and runs the 14 x 32 register kernel: 28
// zmm accumulators, per depth two loads of B and 14 broadcasts of A, 28
// FMAs. Loop order inside a task: one A micro-panel (14 x KC, 14 KiB) stays
// in L1 while the B panels stream from L2 (the B block, 1 MiB, is sized to
// stay there), each prefetched a few depths ahead. A stored (M,K) A is
// packed one micro-panel at a time, right before its sweep, while the next
// one's rows are prefetched; a stored (K,M) A once per task. Edges are
// zero-padded in the packed panels and written through masks, so every
// tile runs one kernel. Transposed operands (op(A) of a stored (M,K) A,
// op(B) of a stored (N,K) B) are packed with 16 x 16 in-register
// transposes; the others depth by depth along the stored rows.
//
// Threads: the rows are split (all threads share each packed B block,
// packed in parts, one barrier per block), or, when rows are few, the
// column panels (each thread packs and uses its own panels, no waiting).
//
// Measured on the project's machine (AVX-512 FMA peak 208-214 GF/s per
// core: 3.3 GHz under load, two 16-wide FMAs per cycle): the kernel alone
// on L1-resident panels 170-197 GF/s (the host's speed drifts), a few
// percent less with B streaming from L2; the whole GEMM 1024^3 about
// 160-170 GF/s at 1 thread (of the time, by subtraction: the kernel sweeps
// ~93%, B's packing ~4% (its source comes from memory), A's ~1%, C's
// traffic ~2%). Measured slower or no better: the B panel held in L1 with
// A streaming from L2 (session 3's version: B block > L2) 5-20%; A packed
// once per depth block for all column blocks; KC 192-512 x NC 512-1536;
// the next B block packed in pieces between sweeps (4-5% slower: the
// packing evicts the A micro-panel and B lines); its rows prefetched
// instead, over the whole block or its last quarter to sixteenth (no
// change); C written with streaming stores (8% slower); FMAs with the A
// broadcast embedded (5% slower); 6 x 64 and 8 x 48 tiles; all columns
// split over 2 threads (no change).
#include "nn/cpu/sgemm_avx512.h"

#include "core/base.h"

// VEL_NO_AVX512: build without the kernel (checks the portable build here)
#if defined(__x86_64__) && defined(__GNUC__) && !defined(VEL_NO_AVX512)

#include <immintrin.h>
#include <stdint.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cpu/avx512_transpose.h"
#include "nn/cpu/scratch.h"

#define AVX512 __attribute__((target("avx512f")))
#define INLINE static inline __attribute__((always_inline))

// Block sizes, measured (bench/bench_gemm): KC 192-512 and NC 512-1536
// within a few percent of these (KC 384/NC 640 and 512/512 also in the
// linear layers' fwd+bwd); NC 1536+ (B block past half of L2) and KC 384
// with NC 1024 slower.
#define MR 14
#define NR 32
#define KC 256    // depths per block: A micro-panel 14 KiB, B panel 32 KiB
#define MCP 24    // row panels per task block at most (A block 336 KiB)
#define NC 1024   // columns per B block: 256 x 1024 floats = 1 MiB (L2 2 MiB)
#define BPF 16    // B prefetched this many depths ahead (from L2 into L1):
                  // measured 3-8% faster than without
// Products smaller than this run on the calling thread alone.
#define PAR_MACS (1 << 21)

int sgemm_avx512_usable(void) {
    return __builtin_cpu_supports("avx512f") ? 1 : 0;   // reads a table set at startup
}

// Grow-only pack buffers, one pair per thread (nn/cpu/scratch.h): packed A
// (one micro-panel, or a task's block of a stored (K, M) A), and the B block
// of a call made on this thread (shared with the call's other threads).
static _Thread_local scratch_buf a_buf, b_buf;

static float *grow(scratch_buf *b, size_t n) {
    float *p = scratch_grow(b, n, 1);
    CHECK(p != NULL);
    return p;
}

INLINE __mmask16 mask_n(int n) { return n >= 16 ? 0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

// Depths k .. k+15 of rows s, s + ld, ... (n <= 16 of them, the rest
// zero; depths at or past kc zero), transposed: r[d][i] = s[i * ld + k + d].
AVX512 INLINE void load_transposed(__m512 r[16], const float *s, size_t ld, int n, int k, int kc) {
    const __mmask16 km = mask_n(kc - k);
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        r[i] = i < n ? _mm512_maskz_loadu_ps(km, s + (size_t)i * ld + k) : _mm512_setzero_ps();
    tr16(r);
}

// Rows s, s + ld, ... (n <= 16 of them, the rest zero) of kc floats each,
// transposed into dst: dst[k * dld + i] = s[i * ld + k], the first w (<= 16)
// of each depth's 16 written.
AVX512 INLINE void pack_t(float *dst, int dld, int w, const float *s, size_t ld, int n, int kc) {
    const __mmask16 wm = mask_n(w);
    for (int k = 0; k < kc; k += 16) {
        __m512 r[16];
        load_transposed(r, s, ld, n, k, kc);
        const int kk = kc - k < 16 ? kc - k : 16;
        for (int i = 0; i < kk; i++) _mm512_mask_storeu_ps(dst + (size_t)(k + i) * dld, wm, r[i]);
    }
}

// Where output float g of a run of 16 depths x MR rows comes from, as
// _mm512_permutex2var_ps indices: vector j of the run holds floats 16 j ..
// 16 j + 15, depth g / MR, row g % MR, which lie in the transposed depths
// 16 j / MR (index 0-15) and the next one (16-31): MR = 14 < 16 never needs a
// third.
#define RUN_VECS MR   // 16 depths x 14 rows = 14 vectors of 16
static int32_t run_index[RUN_VECS][16];

__attribute__((constructor)) static void init_run_index(void) {
    for (int j = 0; j < RUN_VECS; j++)
        for (int e = 0; e < 16; e++) {
            const int g = 16 * j + e;
            run_index[j][e] = (g / MR == 16 * j / MR ? 0 : 16) + g % MR;
        }
}

// One panel: n <= MR rows of a stored (M, K) A (row stride lda) -> dst[k * MR + r].
// 16 depths at a time are transposed in registers and written as 14 full
// vectors (the packed run is contiguous), not 16 masked 14-float stores,
// which cross cache lines: 0.45 -> 0.33 cycles per float on an L2-resident
// block (TSC cycles, 2.6 GHz).
AVX512 static void pack_a_panel(float *dst, const float *s, size_t lda, int n, int kc) {
    for (int k = 0; k < kc; k += 16) {
        __m512 r[16];
        load_transposed(r, s, lda, n, k, kc);
        float *o = dst + (size_t)k * MR;
        if (kc - k >= 16) {
#pragma GCC unroll 14
            for (int j = 0; j < RUN_VECS; j++)
                _mm512_storeu_ps(o + 16 * j,
                                 _mm512_permutex2var_ps(r[16 * j / MR],
                                                        _mm512_loadu_si512(run_index[j]),
                                                        r[16 * j / MR + 1]));
        } else {
            for (int i = 0; i < kc - k; i++) _mm512_mask_storeu_ps(o + (size_t)i * MR, 0x3fff, r[i]);
        }
    }
}

// op(A) of a stored (K, M) A, rows i0 .. i0+mc, depths k0 .. k0+kc ->
// panels of MR rows, [k][r]: MR consecutive floats per depth and panel,
// read depth by depth along A's rows (contiguous, as in pack_b).
AVX512 static void pack_a_trans(float *dst, const float *A, int lda, int i0, int mc, int k0,
                                int kc) {
    for (int k = 0; k < kc; k++) {
        const float *s = A + (size_t)(k0 + k) * lda + i0;
        for (int p = 0; p < mc; p += MR)
            _mm512_mask_storeu_ps(dst + (size_t)p * kc + (size_t)k * MR, 0x3fff,
                                  _mm512_maskz_loadu_ps(mask_n(mc - p), s + p));
    }
}

// op(B) depths k0 .. k0+kc, the panels p0 .. p1 of the column block at jc
// (nc columns) -> panels of NR columns, [k][c] each.
AVX512 static void pack_b(float *bp, int transB, const float *B, int ldb, int k0, int kc, int jc,
                          int nc, int p0, int p1) {
    if (!transB) {
        // B stored (K, N): depth by depth along B's rows (contiguous reads:
        // panel by panel, every depth would be a new 4 KiB page for wide B,
        // which the hardware prefetcher does not follow; measured 2 cycles
        // per float instead of ~0.3)
        for (int k = 0; k < kc; k++) {
            const float *s = B + (size_t)(k0 + k) * ldb + jc;
            for (int p = p0; p < p1; p++) {
                const int n = nc - p * NR;
                float *d = bp + ((size_t)p * kc + k) * NR;
                if (n >= NR) {
                    _mm512_store_ps(d, _mm512_loadu_ps(s + p * NR));
                    _mm512_store_ps(d + 16, _mm512_loadu_ps(s + p * NR + 16));
                } else {
                    _mm512_store_ps(d, _mm512_maskz_loadu_ps(mask_n(n), s + p * NR));
                    _mm512_store_ps(d + 16, _mm512_maskz_loadu_ps(mask_n(n - 16), s + p * NR + 16));
                }
            }
        }
    } else {
        // B stored (N, K): column c of a panel is row jc + p NR + c of B
        for (int p = p0; p < p1; p++) {
            const int n = nc - p * NR;
            const float *s = B + (size_t)(jc + p * NR) * ldb + k0;
            float *d = bp + (size_t)p * kc * NR;
            pack_t(d, NR, 16, s, ldb, n < 16 ? n : 16, kc);
            pack_t(d + 16, NR, 16, s + (size_t)16 * ldb, ldb, n - 16, kc);
        }
    }
}

// Lines of a block of rows (rows x cols floats, row stride ld) fetched
// into L2 a few at a time, spread over a given number of steps.
typedef struct {
    const char *base;
    size_t ld;             // bytes
    int lines, total, per, done;   // lines per row, all lines, per step
} prefetch_rows;

static void prefetch_start(prefetch_rows *pf, const float *base, size_t ld, int rows, int cols,
                           int steps) {
    pf->base = (const char *)base;
    pf->ld = ld * sizeof(float);
    // a row that starts inside a line reaches one line further
    pf->lines = (int)((((uintptr_t)base & 63) + (size_t)cols * sizeof(float) + 63) / 64);
    pf->total = rows * pf->lines;
    pf->per = steps > 0 ? pf->total / steps + 1 : pf->total;
    pf->done = 0;
}

INLINE void prefetch_some(prefetch_rows *pf) {
    for (int i = 0; i < pf->per && pf->done < pf->total; i++, pf->done++)
        _mm_prefetch(pf->base + (size_t)(pf->done / pf->lines) * pf->ld +
                         (size_t)(pf->done % pf->lines) * 64,
                     _MM_HINT_T1);
}

// C tile (m <= MR rows, n <= NR columns) from packed panels a (kc x MR) and
// b (kc x NR). mode 0: C = alpha acc + beta C (beta 0: C not read);
// 1: C = alpha acc + C (later K blocks); 2: C = alpha acc + bias.
//
// Where the FMA loop sits in its 64-byte code line changes its speed: of
// the eight offsets 0x00, 0x08, ... 0x38, only 0x28 ran 1024^3 3-4% faster
// than the others (two interleaved sweeps; the cause is in the front end,
// which this host's counters do not show). So the function is 64-byte
// aligned, which makes the loop's offset depend on this code only, not on
// what the linker put before it, and KERNEL_PAD bytes of no-ops (run once
// per call) move the loop there: GCC 12 -O2 puts it at kernel+0x2b8
// (0x38), the pad at +0x2e8. Another compiler may place it elsewhere: a
// few percent slower, never a different result. After changing the
// kernel, check with objdump -d build/nn/cpu/sgemm_avx512.o.
#define KERNEL_PAD "52"
AVX512 __attribute__((aligned(64))) static void kernel(int kc, const float *a, const float *b,
                                                       float *C, int ldc, int m, int n,
                                                       float alpha, float beta, int mode,
                                                       const float *bias) {
    __asm__ volatile(".nops " KERNEL_PAD);
    // The C tile's lines fetched (for writing) while the products run, and
    // the next tile's (32 columns on) into L2: with the B prefetch 16
    // depths ahead, 1-3% faster on the K 2048 products than the tile alone
    // and 8 depths (two alternating runs; no change elsewhere). A prefetch
    // may reach past the row's end: harmless (prefetches never fault).
    for (int r = 0; r < m; r++) {
        __builtin_prefetch(C + (size_t)r * ldc, 1, 3);
        __builtin_prefetch(C + (size_t)r * ldc + 16, 1, 3);
        _mm_prefetch((const char *)(C + (size_t)r * ldc + NR), _MM_HINT_T1);
        _mm_prefetch((const char *)(C + (size_t)r * ldc + NR + 16), _MM_HINT_T1);
    }
    __m512 c0[MR], c1[MR];
#pragma GCC unroll 14
    for (int r = 0; r < MR; r++) c0[r] = c1[r] = _mm512_setzero_ps();
    // two depths per loop pass: fewer loop and pointer updates beside the
    // 28 FMAs (measured 3-4% faster on 1024^3, in builds whose loop
    // placement, below, was not yet controlled)
#pragma GCC unroll 2
    for (int k = 0; k < kc; k++, a += MR, b += NR) {
        const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
        _mm_prefetch((const char *)(b + BPF * NR), _MM_HINT_T0);
        _mm_prefetch((const char *)(b + BPF * NR + 16), _MM_HINT_T0);
#pragma GCC unroll 14
        for (int r = 0; r < MR; r++) {
            const __m512 av = _mm512_set1_ps(a[r]);
            c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
        }
    }
    const __mmask16 m0 = mask_n(n), m1 = mask_n(n - 16);
    const __m512 al = _mm512_set1_ps(alpha), be = _mm512_set1_ps(beta);
    __m512 x0 = _mm512_setzero_ps(), x1 = _mm512_setzero_ps();
    if (mode == 2) {
        x0 = _mm512_maskz_loadu_ps(m0, bias);
        x1 = _mm512_maskz_loadu_ps(m1, bias + 16);
    }
    const int load_c = mode == 1 || (mode == 0 && beta != 0.0f);
    const int scale_c = mode == 0 && beta != 1.0f;
#pragma GCC unroll 14
    for (int r = 0; r < MR; r++) {
        if (r >= m) break;
        float *cr = C + (size_t)r * ldc;
        __m512 y0 = x0, y1 = x1;
        if (load_c) {
            y0 = _mm512_maskz_loadu_ps(m0, cr);
            y1 = _mm512_maskz_loadu_ps(m1, cr + 16);
            if (scale_c) {
                y0 = _mm512_mul_ps(be, y0);
                y1 = _mm512_mul_ps(be, y1);
            }
        }
        _mm512_mask_storeu_ps(cr, m0, _mm512_fmadd_ps(al, c0[r], y0));
        _mm512_mask_storeu_ps(cr + 16, m1, _mm512_fmadd_ps(al, c1[r], y1));
    }
}

// Row panels q0 .. q1 of row block ib of nib, the blocks dealt
// round-robin to `share` threads (nib a multiple of it): block ib is block
// ib / share of thread ib % share, whose blocks split the thread's equal
// share of the panels. Cutting the panels evenly into nib blocks instead
// gave 2 threads 36 and 38 of 1024 rows' 74 panels, and the first waited
// at every block's barrier (~5%).
static void row_block(int ib, int rpan, int nib, int share, int *q0, int *q1) {
    const int per = nib / share, th = ib % share, j = ib / share;
    const int b0 = (int)((int64_t)th * rpan / share), b1 = (int)((int64_t)(th + 1) * rpan / share);
    *q0 = b0 + (int)((int64_t)j * (b1 - b0) / per);
    *q1 = b0 + (int)((int64_t)(j + 1) * (b1 - b0) / per);
}

// K = 0: C = beta C (beta 0 writes zeros) or C = bias.
static void no_product(int M, int N, float beta, float *C, int ldc, const float *bias) {
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (bias) memcpy(c, bias, sizeof(float) * (size_t)N);
        else if (beta == 0.0f) memset(c, 0, sizeof(float) * (size_t)N);
        else if (beta != 1.0f) for (int j = 0; j < N; j++) c[j] *= beta;
    }
}

void sgemm_avx512(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                  int lda, const float *B, int ldb, float beta, float *C, int ldc,
                  const float *bias, int par) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        no_product(M, N, beta, C, ldc, bias);
        return;
    }
    const int nc_max = N < NC ? N : NC;
    const int kc_max = K < KC ? K : KC;
    // two B blocks: one being packed while the other may still be in use
    const size_t bblk = (size_t)((nc_max + NR - 1) / NR) * NR * kc_max;
    float *const bbuf = grow(&b_buf, 2 * bblk + 16);
    const int run_par = par && !omp_in_parallel() && omp_get_max_threads() > 1 &&
                        (double)M * N * K >= PAR_MACS;
    const int rpan = (M + MR - 1) / MR;   // row panels
#pragma omp parallel if (run_par)
    {
        const int nthr = omp_get_num_threads();
        // Tasks: row blocks (at most MCP panels) x column groups, dealt out
        // round-robin (thread t takes t, t + nthr, ...). The column panels are split over the
        // threads when rows are few (under 8 panels per thread) or that
        // balances the work clearly better: then each thread packs and uses
        // only its own B panels (they stay in its L2) and packs all of A
        // (cheap when rows are few). Otherwise the rows are split. The bits
        // do not depend on the split.
        const int npan_all = (nc_max + NR - 1) / NR;
        const double imb_c = (double)((npan_all + nthr - 1) / nthr) * nthr / npan_all;
        const double imb_r = (double)((rpan + nthr - 1) / nthr) * nthr / rpan;
        const int col = nthr > 1 && (rpan < 8 * nthr || imb_c < imb_r - 0.05);
        int nib = (rpan + MCP - 1) / MCP;
        if (!col) nib = (nib + nthr - 1) / nthr * nthr;
        if (nib > rpan) nib = rpan;
        const int njg = col ? nthr : 1;
        // the row split deals blocks me, me + nthr, ... to thread me: each
        // thread's blocks cover one contiguous equal share of the panels
        const int rshare = !col && nib % nthr == 0 ? nthr : 1;
        const int me = omp_get_thread_num();
        // packed A: a task's block (at most ceil(rpan / nib) panels) of a
        // stored (K, M) A, else one micro-panel
        const size_t a_panels = transA ? (size_t)(rpan + nib - 1) / nib : 1;
        float *ap = grow(&a_buf, a_panels * MR * kc_max + 16);
        // the column split's B panels: in this thread's own buffer (for the
        // calling thread, the shared one, unused by the others then)
        float *const bown = col ? grow(&b_buf, bblk + 16) : NULL;
        int blk = 0;
        for (int jc = 0; jc < N; jc += NC) {
            const int nc = N - jc < NC ? N - jc : NC;
            const int npan = (nc + NR - 1) / NR;
            for (int pc = 0; pc < K; pc += KC, blk++) {
                const int kc = K - pc < KC ? K - pc : KC;
                const int mode = pc ? 1 : bias ? 2 : 0;
                // Each thread packs a share of the panels. The column split:
                // exactly the panels it uses, into its own buffer, so no
                // thread waits for another (threads run blocks apart: a
                // shared buffer would be overwritten under a slower
                // thread, as panel offsets move with kc and the panel
                // count). The row split: all threads use all panels of the
                // shared block, hence the barrier; B blocks alternate
                // between two buffers, so the one packed here was last read
                // two blocks ago, before the previous barrier: one barrier
                // per block.
                // (one thread: always the first buffer, whose lines the
                // previous block left in L2, so packing does not fetch them
                // from L3 before overwriting them; 1024^3 1% faster)
                float *bp = col ? bown : bbuf + (nthr > 1 ? (blk & 1) * bblk : 0);
                const int pb0 = (int)((int64_t)me * npan / nthr);
                const int pb1 = (int)((int64_t)(me + 1) * npan / nthr);
                pack_b(bp, transB, B, ldb, pc, kc, jc, nc, pb0, pb1);
                if (!col) {
#pragma omp barrier
                }
                // this thread's tasks: me, me + nthr, ... (with the column
                // split, jg = me: the panels packed above)
                for (int t = me; t < nib * njg; t += nthr) {
                    const int ib = t / njg, jg = t % njg;
                    // balanced: threads' shares differ by at most one panel
                    int q0, q1;
                    row_block(ib, rpan, nib, rshare, &q0, &q1);
                    const int p0 = (int)((int64_t)jg * npan / njg);
                    const int p1 = (int)((int64_t)(jg + 1) * npan / njg);
                    if (q0 >= q1 || p0 >= p1) continue;
                    const int i0 = q0 * MR, mc = (q1 * MR < M ? q1 * MR : M) - i0;
                    // A stored (K, M) is packed for the whole task (contiguous
                    // rows of mc floats per depth); a stored (M, K) A one
                    // micro-panel at a time, just before its sweep, with the
                    // next micro-panel's rows prefetched during the sweep:
                    // its source lines come from L2 instead of memory, and no
                    // A block sits in L2 beside the B block (1024^3 at 1
                    // thread: A's packing 1.38M -> 0.48M TSC cycles per
                    // call; per micro-panel, a stored (K, M) A was 5% slower:
                    // 14 floats of each row, strided)
                    if (transA) pack_a_trans(ap, A, lda, i0, mc, pc, kc);
                    // the A micro-panel stays in L1 while the B panels
                    // stream from L2 (measured 5-15% faster than the other
                    // order, B panel in L1 and A streaming, which needs a
                    // B block too big for L2 to reuse it)
                    for (int ir = 0; ir < mc; ir += MR) {
                        const int m = mc - ir < MR ? mc - ir : MR;
                        const float *apn = transA ? ap + (size_t)ir * kc : ap;
                        prefetch_rows pf = {0};
                        if (!transA) {
                            pack_a_panel(ap, A + (size_t)(i0 + ir) * lda + pc, lda, m, kc);
                            // the next micro-panel: in this task, or the
                            // first of this thread's next task
                            int nxt = -1;
                            if (ir + MR < mc) nxt = i0 + ir + MR;
                            else if (t + nthr < nib * njg) {
                                int n0, n1;
                                row_block((t + nthr) / njg, rpan, nib, rshare, &n0, &n1);
                                nxt = n0 * MR;
                            }
                            if (nxt >= 0)
                                prefetch_start(&pf, A + (size_t)nxt * lda + pc, lda,
                                               M - nxt < MR ? M - nxt : MR, kc, p1 - p0);
                        }
                        for (int p = p0; p < p1; p++) {
                            const int j = jc + p * NR, n = jc + nc - j < NR ? jc + nc - j : NR;
                            const float *bpp = bp + (size_t)p * NR * kc;
                            kernel(kc, apn, bpp, C + (size_t)(i0 + ir) * ldc + j,
                                   ldc, m, n, alpha, beta, mode, bias ? bias + j : NULL);
                            prefetch_some(&pf);
                        }
                    }
                }
            }
        }
    }
}

#else   // not x86-64 GCC/Clang: never usable, gemm.c calls OpenBLAS

int sgemm_avx512_usable(void) { return 0; }

void sgemm_avx512(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                  int lda, const float *B, int ldb, float beta, float *C, int ldc,
                  const float *bias, int par) {
    (void)transA, (void)transB, (void)M, (void)N, (void)K, (void)alpha, (void)A, (void)lda;
    (void)B, (void)ldb, (void)beta, (void)C, (void)ldc, (void)bias, (void)par;
    CHECK(0 && "sgemm_avx512 called on a build without it");
}

#endif
