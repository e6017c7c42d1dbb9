// test_gemm.c: the own AVX-512 SGEMM (nn/cpu/sgemm_avx512.h) and the entry
// points of nn/cpu/gemm.h that choose between it and OpenBLAS.
// - against a float64 product written out here, element by element within
//   the rounding bound of a float32 sum of K products (below), on shapes
//   around the kernel's tile (14 x 32), its depth block (256), its row block
//   (24 tiles) and column block (1024), every transpose combination, leading
//   dimensions wider than the rows, alpha != 1, beta 0 over a C full of NaN
//   (must not propagate), beta 1, beta 0.5, a bias, K = 0;
// - bit identity: 1 vs 2 OpenMP threads, and the product vs the same
//   product computed in pieces (cuts of M and of N at places that are not
//   tile multiples);
// - the forced OpenBLAS path (gemm_force_blas) gives OpenBLAS's own bits.
// The own-kernel tests skip on CPUs without AVX-512F.
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <unistd.h>

#include "core/base.h"
#include "nn/cpu/gemm.h"
#include "nn/cpu/sgemm_avx512.h"
#include "nn/cpu/scratch.h"
#include "tests/nn/dense_check.h"

typedef struct {
    int ta, tb, M, N, K, lda, ldb, ldc;
    float alpha, beta;
    int bias;
} gcase;

static gcase mk(int ta, int tb, int M, int N, int K, int pad, float alpha, float beta, int bias) {
    gcase c = {ta, tb, M, N, K, (ta ? M : K) + pad, (tb ? K : N) + pad, N + pad, alpha, beta, bias};
    if (c.lda < 1) c.lda = 1;
    if (c.ldb < 1) c.ldb = 1;
    return c;
}

static size_t a_len(const gcase *c) { return (size_t)(c->ta ? c->K : c->M) * c->lda; }
static size_t b_len(const gcase *c) { return (size_t)(c->tb ? c->N : c->K) * c->ldb; }
static size_t c_len(const gcase *c) { return (size_t)c->M * c->ldc; }

static float *mkbuf(size_t n, uint64_t seed) {
    float *x = xmalloc(sizeof(float) * (n ? n : 1));
    fill_normal(x, (int64_t)n, seed, 1.0f);
    return x;
}

typedef void (*gemm_fn)(const gcase *c, const float *A, const float *B, const float *bias,
                        float *C);

static void via_own(const gcase *c, const float *A, const float *B, const float *bias, float *C) {
    sgemm_avx512(c->ta, c->tb, c->M, c->N, c->K, c->alpha, A, c->lda, B, c->ldb, c->beta, C,
                 c->ldc, bias, 1);
}

static void via_blocks(const gcase *c, const float *A, const float *B, const float *bias,
                       float *C) {
    gemm_blocks_bias(c->ta, c->tb, c->M, c->N, c->K, c->alpha, A, c->lda, B, c->ldb, c->beta, C,
                     c->ldc, bias);
}

// Runs f on case c and checks every element of C (padding included: it
// must be untouched) against the float64 product. Bound per element: a
// float32 sum of K products, each rounded, plus alpha's product and the
// beta / bias add, is within (K + 3) u (|alpha| sum_k |a_ik b_kj| +
// |beta c_ij| (or |bias_j|)) of the exact value, u = 2^-24 (the standard
// recursive-summation bound with FMA, 1 rounding per step, + 3 for the
// epilogue and beta's product), plus the smallest normal for underflow.
static void check_case(const gcase *c, gemm_fn f, const char *via) {
    const size_t na = a_len(c), nb = b_len(c), nc = c_len(c);
    float *A = mkbuf(na, 11), *B = mkbuf(nb, 12), *C = mkbuf(nc, 13), *bias = mkbuf(c->N, 14);
    // beta 0 or a bias: C must not be read, so start it full of NaN
    if (c->beta == 0.0f || c->bias)
        for (int i = 0; i < c->M; i++)
            for (int j = 0; j < c->N; j++) C[(size_t)i * c->ldc + j] = NAN;
    float *C0 = xmalloc(sizeof(float) * (nc ? nc : 1));
    memcpy(C0, C, sizeof(float) * nc);
    f(c, A, B, c->bias ? bias : NULL, C);
    const double u = ldexp(1.0, -24);
    int bad = 0;
    double worst = 0;
    for (int i = 0; i < c->M && !bad; i++) {
        for (int j = 0; j < c->ldc; j++) {
            const size_t at = (size_t)i * c->ldc + j;
            if (j >= c->N) {   // padding untouched (bitwise; NaN-safe)
                if (memcmp(&C[at], &C0[at], sizeof(float))) {
                    cr_log_error("%s: padding (%d, %d) changed", via, i, j);
                    bad = 1;
                }
                continue;
            }
            double s = 0, sa = 0;
            for (int k = 0; k < c->K; k++) {
                const double x = c->ta ? A[(size_t)k * c->lda + i] : A[(size_t)i * c->lda + k];
                const double y = c->tb ? B[(size_t)j * c->ldb + k] : B[(size_t)k * c->ldb + j];
                s += x * y;
                sa += fabs(x * y);
            }
            const double add = c->bias ? bias[j] : c->beta == 0.0f ? 0.0 : (double)c->beta * C0[at];
            const double want = c->alpha * s + add;
            const double tol = (c->K + 3) * u * (fabs(c->alpha) * sa + fabs(add)) + 0x1p-126;
            const double err = fabs((double)C[at] - want);
            if (!(err <= tol)) {
                cr_log_error("%s ta %d tb %d %dx%dx%d ld %d/%d/%d alpha %g beta %g bias %d: "
                             "C(%d, %d) = %.9g, want %.9g (tol %.3g)",
                             via, c->ta, c->tb, c->M, c->N, c->K, c->lda, c->ldb, c->ldc,
                             c->alpha, c->beta, c->bias, i, j, C[at], want, tol);
                bad = 1;
                break;
            }
            if (tol > 0 && err / tol > worst) worst = err / tol;
        }
    }
    cr_expect(!bad, "%s: a result outside its rounding bound (log above)", via);
    cr_log_info("%s ta %d tb %d %dx%dx%d: max err / bound %.3g", via, c->ta, c->tb, c->M, c->N,
                c->K, worst);
    free(A); free(B); free(C); free(C0); free(bias);
}

// Sizes around the kernel's tile (MR 14, NR 32), depth block (KC 256), row
// block (24 x 14 = 336 rows) and column block (NC 1024).
static const int dims[][3] = {
    {1, 1, 1},     {1, 32, 7},     {13, 31, 1},   {14, 32, 16},  {15, 33, 17},
    {29, 65, 255}, {28, 64, 256},  {43, 97, 257}, {337, 40, 30}, {20, 1030, 40},
    {70, 100, 513}, {5, 3, 600},
};

static void check_all(gemm_fn f, const char *via) {
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++)
        for (int t = 0; t < 4; t++) {
            const int M = dims[d][0], N = dims[d][1], K = dims[d][2], ta = t & 1, tb = t >> 1;
            // the epilogue variants, cycled over the shapes: alpha 1 beta 0,
            // alpha 0.75 beta 1, beta 0.5 with padded rows, bias
            const int v = (int)(d + t) % 4;
            gcase c = v == 0   ? mk(ta, tb, M, N, K, 0, 1.0f, 0.0f, 0)
                      : v == 1 ? mk(ta, tb, M, N, K, 3, 0.75f, 1.0f, 0)
                      : v == 2 ? mk(ta, tb, M, N, K, 5, -1.25f, 0.5f, 0)
                               : mk(ta, tb, M, N, K, 2, 1.0f, 0.0f, 1);
            check_case(&c, f, via);
        }
}

Test(gemm, own_vs_float64) {
    if (!sgemm_avx512_usable()) cr_skip_test("no AVX-512F on this CPU");
    omp_set_num_threads(2);
    check_all(via_own, "own");
}

// Through gemm.c with its per-shape choice (own for most, OpenBLAS for the
// thin ones) and with OpenBLAS forced.
Test(gemm, entry_points_vs_float64) {
    omp_set_num_threads(2);
    gemm_force_blas(0);
    check_all(via_blocks, "gemm_blocks_bias");
    gemm_force_blas(1);
    check_all(via_blocks, "gemm_blocks_bias (BLAS forced)");
    gemm_force_blas(0);
}

// K = 0: no product; C = beta C, zeros for beta 0 (over NaN), or the bias.
Test(gemm, empty_depth) {
    if (!sgemm_avx512_usable()) cr_skip_test("no AVX-512F on this CPU");
    const int M = 3, N = 5;
    float C[15], bias[5] = {1, 2, 3, 4, 5};
    for (int i = 0; i < 15; i++) C[i] = NAN;
    sgemm_avx512(0, 0, M, N, 0, 1.0f, NULL, 1, NULL, N, 0.0f, C, N, NULL, 1);
    for (int i = 0; i < 15; i++) cr_expect(C[i] == 0.0f, "beta 0, K 0: C[%d] = %g", i, C[i]);
    for (int i = 0; i < 15; i++) C[i] = 2.0f;
    sgemm_avx512(0, 0, M, N, 0, 1.0f, NULL, 1, NULL, N, 0.5f, C, N, NULL, 1);
    for (int i = 0; i < 15; i++) cr_expect(C[i] == 1.0f, "beta 0.5, K 0: C[%d] = %g", i, C[i]);
    for (int i = 0; i < 15; i++) C[i] = NAN;
    sgemm_avx512(0, 0, M, N, 0, 1.0f, NULL, 1, NULL, N, 0.0f, C, N, bias, 1);
    for (int i = 0; i < 15; i++) cr_expect(C[i] == bias[i % N], "bias, K 0: C[%d] = %g", i, C[i]);
}

// Big enough to run on two threads (> 2^21 multiply-adds), several depth
// blocks, rows and columns that are not tile multiples.
Test(gemm, bits_thread_counts_and_cuts) {
    if (!sgemm_avx512_usable()) cr_skip_test("no AVX-512F on this CPU");
    for (int t = 0; t < 4; t++) {
        const int ta = t & 1, tb = t >> 1;
        gcase c = mk(ta, tb, 301, 1100, 700, 3, 0.75f, 0.5f, 0);
        float *A = mkbuf(a_len(&c), 21), *B = mkbuf(b_len(&c), 22), *C0 = mkbuf(c_len(&c), 23);
        float *bias = mkbuf(c.N, 24);
        const size_t nc = c_len(&c);
        float *r[4];
        for (int v = 0; v < 4; v++) {
            r[v] = xmalloc(sizeof(float) * nc);
            memcpy(r[v], C0, sizeof(float) * nc);
        }
        omp_set_num_threads(1);
        via_own(&c, A, B, NULL, r[0]);
        omp_set_num_threads(2);
        via_own(&c, A, B, NULL, r[1]);
        expect_same_bits("own 1 vs 2 threads", r[0], r[1], nc);
        // 3 and 5 threads (oversubscribed here): row shares of 7-8 and 4-5
        // panels, dealt by row_block
        for (int nt = 3; nt <= 5; nt += 2) {
            omp_set_num_threads(nt);
            memcpy(r[1], C0, sizeof(float) * nc);
            via_own(&c, A, B, NULL, r[1]);
            expect_same_bits("own 1 vs 3 or 5 threads", r[0], r[1], nc);
        }
        omp_set_num_threads(2);
        // the same through gemm_blocks (2 threads) and gemm_serial
        via_blocks(&c, A, B, NULL, r[2]);
        expect_same_bits("own vs gemm_blocks", r[0], r[2], nc);
        gemm_serial(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A, c.lda, B, c.ldb, c.beta, r[3], c.ldc);
        expect_same_bits("own vs gemm_serial", r[0], r[3], nc);
        // in pieces: rows 0..100 and 100..M, then columns 0..45 and 45..N
        memcpy(r[2], C0, sizeof(float) * nc);
        for (int h = 0; h < 2; h++) {
            const int lo = h ? 100 : 0, hi = h ? c.M : 100;
            const float *a = ta ? A + lo : A + (size_t)lo * c.lda;
            sgemm_avx512(ta, tb, hi - lo, c.N, c.K, c.alpha, a, c.lda, B, c.ldb, c.beta,
                         r[2] + (size_t)lo * c.ldc, c.ldc, NULL, 1);
        }
        expect_same_bits("own whole vs row pieces", r[0], r[2], nc);
        memcpy(r[3], C0, sizeof(float) * nc);
        for (int h = 0; h < 2; h++) {
            const int lo = h ? 45 : 0, hi = h ? c.N : 45;
            const float *b = tb ? B + (size_t)lo * c.ldb : B + lo;
            sgemm_avx512(ta, tb, c.M, hi - lo, c.K, c.alpha, A, c.lda, b, c.ldb, c.beta,
                         r[3] + lo, c.ldc, NULL, 1);
        }
        expect_same_bits("own whole vs column pieces", r[0], r[3], nc);
        // with a bias: 1 vs 2 threads
        omp_set_num_threads(1);
        via_own(&c, A, B, bias, r[2]);
        omp_set_num_threads(2);
        via_own(&c, A, B, bias, r[3]);
        expect_same_bits("own + bias 1 vs 2 threads", r[2], r[3], nc);
        free(A); free(B); free(C0); free(bias);
        for (int v = 0; v < 4; v++) free(r[v]);
    }
}

// Rows enough for several row blocks per thread (72 panels, at most 24 per
// block): each thread's blocks split its share of the panels (row_block in
// nn/cpu/sgemm_avx512.c), and each stored (M,K) A micro-panel is packed
// before its sweep while the next one, possibly the first of the thread's
// next block, is prefetched. 1, 2 and 3 threads give the same bits, which
// match the product in row pieces cut at other panel boundaries.
Test(gemm, bits_many_row_blocks) {
    if (!sgemm_avx512_usable()) cr_skip_test("no AVX-512F on this CPU");
    for (int ta = 0; ta < 2; ta++) {
        gcase c = mk(ta, 0, 1001, 100, 300, 0, 1.0f, 0.0f, 0);
        float *A = mkbuf(a_len(&c), 31), *B = mkbuf(b_len(&c), 32);
        const size_t nc = c_len(&c);
        float *r[3];
        for (int v = 0; v < 3; v++) {
            r[v] = xmalloc(sizeof(float) * nc);
            omp_set_num_threads(v + 1);
            via_own(&c, A, B, NULL, r[v]);
        }
        expect_same_bits("many row blocks, 1 vs 2 threads", r[0], r[1], nc);
        expect_same_bits("many row blocks, 1 vs 3 threads", r[0], r[2], nc);
        // rows 0..350 and 350..M on one thread each
        for (int h = 0; h < 2; h++) {
            const int lo = h ? 350 : 0, hi = h ? c.M : 350;
            const float *a = ta ? A + lo : A + (size_t)lo * c.lda;
            sgemm_avx512(ta, 0, hi - lo, c.N, c.K, c.alpha, a, c.lda, B, c.ldb, c.beta,
                         r[1] + (size_t)lo * c.ldc, c.ldc, NULL, 0);
        }
        expect_same_bits("many row blocks vs row pieces", r[0], r[1], nc);
        omp_set_num_threads(2);
        free(A); free(B);
        for (int v = 0; v < 3; v++) free(r[v]);
    }
}

// Few rows, so two threads split the column panels and run without
// waiting for each other, over column blocks with different panel counts
// and depth blocks of different depths: repeated, since a thread running
// ahead and overwriting panels another still reads (as an earlier version
// did) shows only some of the time. Every run must give the 1-thread bits.
Test(gemm, column_split_repeated) {
    if (!sgemm_avx512_usable()) cr_skip_test("no AVX-512F on this CPU");
    gcase c = mk(0, 0, 100, 1100, 700, 0, 1.0f, 0.0f, 0);
    float *A = mkbuf(a_len(&c), 51), *B = mkbuf(b_len(&c), 52);
    float *r0 = mkbuf(c_len(&c), 53), *r1 = mkbuf(c_len(&c), 53);
    omp_set_num_threads(1);
    via_own(&c, A, B, NULL, r0);
    omp_set_num_threads(2);
    int same = 1;
    for (int i = 0; i < 40 && same; i++) {
        via_own(&c, A, B, NULL, r1);
        same = !memcmp(r0, r1, sizeof(float) * c_len(&c));
    }
    expect_same_bits("own column split, 2 threads vs 1", r0, r1, c_len(&c));
    free(A); free(B); free(r0); free(r1);
}

// gemm_ksplit2 (C += op(A) op(B)): within the float64 bound, 1 vs 2
// threads bit for bit (own SGEMM on AVX-512 CPUs, the K cut otherwise).
static void via_ksplit(const gcase *c, const float *A, const float *B, const float *bias,
                       float *C) {
    (void)bias;
    gemm_ksplit2(c->ta, c->tb, c->M, c->N, c->K, A, c->lda, B, c->ldb, C, c->ldc);
}

Test(gemm, ksplit2_entry) {
    omp_set_num_threads(2);
    gcase c = mk(1, 0, 128, 96, 1024, 0, 1.0f, 1.0f, 0);
    check_case(&c, via_ksplit, "gemm_ksplit2");
    float *A = mkbuf(a_len(&c), 31), *B = mkbuf(b_len(&c), 32);
    float *r0 = mkbuf(c_len(&c), 33), *r1 = mkbuf(c_len(&c), 33);
    omp_set_num_threads(1);
    via_ksplit(&c, A, B, NULL, r0);
    omp_set_num_threads(2);
    via_ksplit(&c, A, B, NULL, r1);
    expect_same_bits("gemm_ksplit2 1 vs 2 threads", r0, r1, c_len(&c));
    free(A); free(B); free(r0); free(r1);
}

// Forced fallback: gemm_serial is then exactly one single-threaded
// cblas_sgemm (same bits); unforced, on AVX-512, exactly the own SGEMM.
Test(gemm, forced_blas_bits) {
    gcase c = mk(0, 1, 200, 150, 300, 1, 0.75f, 0.5f, 0);
    float *A = mkbuf(a_len(&c), 41), *B = mkbuf(b_len(&c), 42);
    float *r0 = mkbuf(c_len(&c), 43), *r1 = mkbuf(c_len(&c), 43);
    omp_set_num_threads(1);
    gemm_force_blas(1);
    gemm_serial(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A, c.lda, B, c.ldb, c.beta, r0, c.ldc);
    gemm_force_blas(0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c.M, c.N, c.K, c.alpha, A, c.lda, B,
                c.ldb, c.beta, r1, c.ldc);
    expect_same_bits("forced gemm_serial vs cblas_sgemm", r0, r1, c_len(&c));
    if (sgemm_avx512_usable()) {
        float *r2 = mkbuf(c_len(&c), 43), *r3 = mkbuf(c_len(&c), 43);
        gemm_serial(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A, c.lda, B, c.ldb, c.beta, r2, c.ldc);
        sgemm_avx512(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A, c.lda, B, c.ldb, c.beta, r3, c.ldc,
                     NULL, 0);
        expect_same_bits("gemm_serial vs own", r2, r3, c_len(&c));
        free(r2); free(r3);
    }
    free(A); free(B); free(r0); free(r1);
    omp_set_num_threads(2);
}

// Each OpenMP thread keeps grow-only pack buffers (nn/cpu/scratch.h).
// libgomp ends the surplus threads when a team shrinks; their buffers are
// freed then (scratch.c), not lost: after a product on 5 threads and one
// on 2, the live count returns to what 2 threads hold. The shape (43 row
// panels, 10 column panels) takes the row split on 2 and on 5 threads, so
// the two lasting threads hold the same buffers before and after. (The
// threads exit asynchronously: the count is polled for up to 10 s.)
Test(gemm, scratch_freed_when_threads_end) {
    if (!sgemm_avx512_usable()) cr_skip_test("no AVX-512F on this CPU");
    gcase c = mk(0, 0, 600, 300, 300, 0, 1.0f, 0.0f, 0);   // > 2^21 multiply-adds
    float *A = mkbuf(a_len(&c), 41), *B = mkbuf(b_len(&c), 42);
    float *C = xmalloc(sizeof(float) * c_len(&c));
    omp_set_num_threads(2);
    via_own(&c, A, B, NULL, C);
    const long two = scratch_live_buffers();
    cr_assert(two > 0, "the product allocated no scratch buffer");
    omp_set_num_threads(5);
    via_own(&c, A, B, NULL, C);
    cr_assert(scratch_live_buffers() > two, "5 threads hold no more buffers than 2 (%ld)", two);
    omp_set_num_threads(2);
    via_own(&c, A, B, NULL, C);
    for (int i = 0; i < 1000 && scratch_live_buffers() > two; i++) usleep(10000);
    cr_expect(scratch_live_buffers() == two, "live scratch buffers %ld after the team shrank, %ld before",
              scratch_live_buffers(), two);
    free(A); free(B); free(C);
}
