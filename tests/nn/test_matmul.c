// test_matmul.c: nn/matmul.h against a float64 product written out here
// (every transpose combination, leading dimensions and matrix strides wider
// than the matrices, alpha and beta, a single matrix big enough to be cut
// into blocks), the empty cases, 1-vs-2 OpenMP thread bit identity (really
// two threads: checked inside a parallel region), and that a batch gives the
// bits of its matrices computed one by one.
#include <cblas.h>
#include <omp.h>

#include "core/base.h"
#include "nn/cpu/gemm.h"
#include "nn/matmul.h"
#include "tests/nn/dense_check.h"

typedef struct {
    int batch, ta, tb, M, N, K, lda, ldb, ldc;
    int64_t sa, sb, sc;
    float alpha, beta;
} mm_case;

// Rows x cols of A as stored (op(A) is M x K).
static int a_rows(const mm_case *c) { return c->ta ? c->K : c->M; }
static int b_rows(const mm_case *c) { return c->tb ? c->N : c->K; }

// A case with leading dimensions pad wider than needed and matrices gap
// floats further apart than their storage.
static mm_case make_case(int batch, int ta, int tb, int M, int N, int K, int pad, int gap) {
    mm_case c = {.batch = batch, .ta = ta, .tb = tb, .M = M, .N = N, .K = K,
                 .alpha = 0.75f, .beta = 0.5f};
    c.lda = (ta ? M : K) + pad;
    c.ldb = (tb ? K : N) + pad;
    c.ldc = N + pad;
    c.sa = (int64_t)a_rows(&c) * c.lda + gap;
    c.sb = (int64_t)b_rows(&c) * c.ldb + gap;
    c.sc = (int64_t)M * c.ldc + gap;
    return c;
}

static float *buf(int64_t n, uint64_t seed) {
    float *x = malloc(sizeof(float) * (n > 0 ? n : 1));
    fill_normal(x, n, seed, 1.0f);
    return x;
}

static void run(const mm_case *c, const float *A, const float *B, float *C) {
    matmul_batched(c->batch, c->ta, c->tb, c->M, c->N, c->K, c->alpha, A, c->lda, c->sa, B,
                   c->ldb, c->sb, c->beta, C, c->ldc, c->sc);
}

static void check_case(const mm_case *c) {
    int64_t na = c->batch * c->sa, nb = c->batch * c->sb, nc = c->batch * c->sc;
    float *A = buf(na, 1), *B = buf(nb, 2), *C = buf(nc, 3);
    float *C0 = copy_f32(C, nc);
    run(c, A, B, C);
    double *want = malloc(sizeof(double) * nc);
    for (int64_t i = 0; i < nc; i++) want[i] = C0[i];   // gaps and padding stay as they were
    for (int i = 0; i < c->batch; i++) {
        const float *a = A + i * c->sa, *b = B + i * c->sb;
        for (int m = 0; m < c->M; m++)
            for (int n = 0; n < c->N; n++) {
                double s = 0.0;
                for (int k = 0; k < c->K; k++) {
                    double x = c->ta ? a[(size_t)k * c->lda + m] : a[(size_t)m * c->lda + k];
                    double y = c->tb ? b[(size_t)n * c->ldb + k] : b[(size_t)k * c->ldb + n];
                    s += x * y;
                }
                int64_t at = i * c->sc + (int64_t)m * c->ldc + n;
                want[at] = c->alpha * s + (double)c->beta * C0[at];
            }
    }
    char what[96];
    snprintf(what, sizeof what, "matmul batch %d ta %d tb %d %dx%dx%d", c->batch, c->ta, c->tb,
             c->M, c->N, c->K);
    // float32 products of K ~ 100 unit-normal terms against float64
    check_vs(what, C, want, nc, 1e-4, 1e-5);
    free(A); free(B); free(C); free(C0); free(want);
}

Test(matmul, batched_vs_float64) {
    omp_set_num_threads(2);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            mm_case c = make_case(3, ta, tb, 37, 29, 45, 3, 5);
            check_case(&c);
            c = make_case(1, ta, tb, 21, 70, 9, 0, 0);
            check_case(&c);
        }
    mm_case big = make_case(1, 0, 1, 160, 150, 96, 2, 0);   // 2.3M MACs: cut into blocks
    check_case(&big);
    mm_case many = make_case(8, 1, 0, 64, 64, 64, 0, 0);    // the f4c4 attention's products
    check_case(&many);
}

Test(matmul, empty_is_a_no_op) {
    float A[4] = {1, 2, 3, 4}, C[4] = {5, 6, 7, 8};
    matmul_batched(0, 0, 0, 2, 2, 2, 1.0f, A, 2, 4, A, 2, 4, 0.0f, C, 2, 4);
    matmul_batched(1, 0, 0, 0, 2, 2, 1.0f, A, 2, 4, A, 2, 4, 0.0f, C, 2, 4);
    matmul_batched(1, 0, 0, 2, 0, 2, 1.0f, A, 2, 4, A, 2, 4, 0.0f, C, 2, 4);
    cr_assert(C[0] == 5 && C[1] == 6 && C[2] == 7 && C[3] == 8);
}

Test(matmul, one_vs_two_threads_identical) {
    mm_case cs[] = {
        make_case(8, 1, 0, 64, 64, 64, 0, 0),     // one matrix per task
        make_case(8, 0, 1, 64, 256, 256, 0, 0),   // the VAE's out = v P^T at T 256
        make_case(1, 0, 0, 200, 180, 64, 1, 0),   // one matrix in blocks
    };
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        const mm_case *c = &cs[k];
        int64_t na = c->batch * c->sa, nb = c->batch * c->sb, nc = c->batch * c->sc;
        float *A = buf(na, 4), *B = buf(nb, 5), *C0 = buf(nc, 6);
        float *r[2];
        for (int t = 0; t < 2; t++) {
            omp_set_num_threads(t + 1);
            cr_assert_eq(omp_team_size(), t + 1, "the OpenMP team must have %d threads", t + 1);
            r[t] = copy_f32(C0, nc);
            run(c, A, B, r[t]);
            cr_assert_eq(omp_get_max_threads(), t + 1, "matmul_batched changed the OpenMP count");
        }
        expect_same_bits("matmul", r[0], r[1], nc);
        free(A); free(B); free(C0); free(r[0]); free(r[1]);
    }
}

// The same products one by one (a batch of 1 each, one thread): the bits a
// batch must give. With OpenBLAS forced (nn/cpu/gemm.h), one single-threaded
// cblas call each (OpenMP count 1, so the OpenMP build of OpenBLAS runs
// serial).
Test(matmul, batch_equals_single_threaded_calls) {
    mm_case c = make_case(8, 0, 0, 64, 64, 64, 0, 0);
    int64_t na = c.batch * c.sa, nb = c.batch * c.sb, nc = c.batch * c.sc;
    for (int blas = 0; blas < 2; blas++) {
        gemm_force_blas(blas);
        float *A = buf(na, 7), *B = buf(nb, 8), *C = buf(nc, 9), *D = copy_f32(C, nc);
        omp_set_num_threads(2);
        run(&c, A, B, C);
        omp_set_num_threads(1);
        for (int i = 0; i < c.batch; i++) {
            if (blas)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c.M, c.N, c.K, c.alpha,
                            A + i * c.sa, c.lda, B + i * c.sb, c.ldb, c.beta, D + i * c.sc, c.ldc);
            else
                matmul_batched(1, 0, 0, c.M, c.N, c.K, c.alpha, A + i * c.sa, c.lda, 0,
                               B + i * c.sb, c.ldb, 0, c.beta, D + i * c.sc, c.ldc, 0);
        }
        cr_expect(memcmp(C, D, sizeof(float) * nc) == 0,
                  "batch differs from one-by-one products (%s)", blas ? "OpenBLAS" : "default");
        free(A); free(B); free(C); free(D);
    }
    gemm_force_blas(0);
}
