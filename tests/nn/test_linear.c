// test_linear.c: nn/linear.h against tests/ref/gen_dense_linear.py (forward
// vs numpy float64, backward vs float64 central finite differences, and the
// accumulate-into-gradients contract), plus 1-vs-2-thread bit identity.
#include <cblas.h>
#include <math.h>
#include <omp.h>

#include "nn/cpu/gemm.h"
#include "nn/linear.h"
#include "tests/nn/dense_check.h"

#define G "dense_linear"

Test(linear, forward_backward_vs_numpy) {
    int64_t nc;
    double *cases = ref_f64(G, "cases", &nc);
    for (int ci = 0; ci < nc / 3; ci++) {
        int N = (int)cases[3 * ci], C = (int)cases[3 * ci + 1], OC = (int)cases[3 * ci + 2];
        float *inp = case_f32(G, ci, "inp", NULL), *w = case_f32(G, ci, "weight", NULL);
        float *b = case_f32(G, ci, "bias", NULL), *R = case_f32(G, ci, "R", NULL);
        float *g0i = case_f32(G, ci, "g0_inp", NULL), *g0w = case_f32(G, ci, "g0_weight", NULL);
        float *g0b = case_f32(G, ci, "g0_bias", NULL);
        double *out_ref = case_f64(G, ci, "out", NULL), *di_ref = case_f64(G, ci, "dinp", NULL);
        double *dw_ref = case_f64(G, ci, "dweight", NULL), *db_ref = case_f64(G, ci, "dbias", NULL);
        float *out = malloc(sizeof(float) * N * OC);
        linear_forward(out, inp, w, b, N, C, OC);
        char what[64];
        snprintf(what, sizeof what, "linear fwd N%d C%d OC%d", N, C, OC);
        check_vs(what, out, out_ref, (int64_t)N * OC, 1e-5, 1e-5);
        // no-bias forward = reference minus bias
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) out_ref[n * OC + o] -= b[o];
        linear_forward(out, inp, w, NULL, N, C, OC);
        snprintf(what, sizeof what, "linear fwd nobias N%d C%d OC%d", N, C, OC);
        check_vs(what, out, out_ref, (int64_t)N * OC, 1e-5, 1e-5);

        float *di = copy_f32(g0i, (int64_t)N * C), *dw = copy_f32(g0w, (int64_t)OC * C);
        float *db = copy_f32(g0b, OC);
        linear_backward(di, dw, db, R, inp, w, N, C, OC);
        // finite-difference reference error is ~1e-9; dweight/dbias sum N
        // products, so 1e-4 (long reduction default).
        snprintf(what, sizeof what, "linear dinp N%d C%d OC%d", N, C, OC);
        check_grad(what, di, g0i, di_ref, (int64_t)N * C, 1e-4, 1e-4);
        snprintf(what, sizeof what, "linear dweight N%d C%d OC%d", N, C, OC);
        check_grad(what, dw, g0w, dw_ref, (int64_t)OC * C, 1e-4, 1e-4);
        snprintf(what, sizeof what, "linear dbias N%d C%d OC%d", N, C, OC);
        check_grad(what, db, g0b, db_ref, OC, 1e-4, 1e-4);
        // NULL gradients are skipped and leave the others unchanged
        float *dw2 = copy_f32(g0w, (int64_t)OC * C);
        linear_backward(NULL, dw2, NULL, R, inp, w, N, C, OC);
        expect_same_bits("linear dweight alone", dw2, dw, (int64_t)OC * C);
        free(dw2);
        free(inp); free(w); free(b); free(R); free(g0i); free(g0w); free(g0b);
        free(out_ref); free(di_ref); free(dw_ref); free(db_ref); free(out);
        free(di); free(dw); free(db);
    }
    free(cases);
}

// Runs forward + full backward with the given OpenMP / OpenBLAS thread counts.
static void run_linear(float *res[4], int omp_t, int blas_t, const float *inp, const float *w,
                       const float *b, const float *dout, int N, int C, int OC) {
    // OpenBLAS first: its OpenMP build's openblas_set_num_threads also sets
    // the OpenMP count, which would undo omp_t if it came second.
    openblas_set_num_threads(blas_t);
    omp_set_num_threads(omp_t);
    res[0] = calloc((size_t)N * OC, sizeof(float));
    res[1] = calloc((size_t)N * C, sizeof(float));
    res[2] = calloc((size_t)OC * C, sizeof(float));
    res[3] = calloc(OC, sizeof(float));
    linear_forward(res[0], inp, w, b, N, C, OC);
    linear_backward(res[1], res[2], res[3], dout, inp, w, N, C, OC);
    // The GEMMs keep OpenBLAS serial without changing the caller's OpenMP
    // count (it once dropped to 1 for good after the first GEMM, so every
    // later parallel loop ran on one thread).
    cr_expect_eq(omp_get_max_threads(), omp_t, "OpenMP threads %d after linear, set %d",
                 omp_get_max_threads(), omp_t);
}

// Large enough that the GEMMs are cut into blocks (nn/cpu/gemm.h).
// Observed with Debian's OpenBLAS 0.3.21: its own threaded cblas_sgemm is NOT
// bit-identical between 1 and 2 threads (the thread split moves the M/N
// edges that the kernel handles with a different summation order; max abs
// 1.7e-6 on out, 5.3e-5 on dweight). nn/cpu cuts GEMMs by shape and calls
// OpenBLAS single-threaded, so every thread count must agree bit for bit.
Test(linear, thread_counts) {
    const int N = 512, C = 384, OC = 320;
    float *inp = malloc(sizeof(float) * N * C), *w = malloc(sizeof(float) * OC * C);
    float *b = malloc(sizeof(float) * OC), *dout = malloc(sizeof(float) * N * OC);
    fill_normal(inp, (int64_t)N * C, 1, 1.0f);
    fill_normal(w, (int64_t)OC * C, 2, 0.05f);
    fill_normal(b, OC, 3, 1.0f);
    fill_normal(dout, (int64_t)N * OC, 4, 1.0f);
    float *r1[4], *r2[4], *r3[4];
    run_linear(r1, 1, 1, inp, w, b, dout, N, C, OC);
    run_linear(r2, 2, 1, inp, w, b, dout, N, C, OC);
    run_linear(r3, 2, 2, inp, w, b, dout, N, C, OC);
    const char *names[4] = {"out", "dinp", "dweight", "dbias"};
    int64_t sizes[4] = {(int64_t)N * OC, (int64_t)N * C, (int64_t)OC * C, OC};
    for (int k = 0; k < 4; k++) {
        char what[64];
        snprintf(what, sizeof what, "linear %s omp 1 vs 2", names[k]);
        expect_same_bits(what, r1[k], r2[k], sizes[k]);
        // nn/cpu/gemm.h keeps OpenBLAS single-threaded (its own split is not
        // bit-stable), so an OpenBLAS thread count set by the caller changes
        // nothing either.
        snprintf(what, sizeof what, "linear %s openblas 1 vs 2 thr", names[k]);
        expect_same_bits(what, r1[k], r3[k], sizes[k]);
        free(r1[k]); free(r2[k]); free(r3[k]);
    }
    free(inp); free(w); free(b); free(dout);
}

// A weight gradient too narrow to cut along OC or C but summed over many
// rows (the toy MLP's 128 x 128 layers, batch 1024): nn/cpu/linear.c cuts
// the rows in two (gemm_ksplit2). Checked against a double-precision sum,
// accumulating onto a nonzero dweight, and 1 vs 2 threads bit for bit.
Test(linear, row_split_weight_gradient) {
    const int N = 1024, C = 128, OC = 128;
    float *inp = malloc(sizeof(float) * N * C), *dout = malloc(sizeof(float) * N * OC);
    float *w = malloc(sizeof(float) * OC * C), *dw0 = malloc(sizeof(float) * OC * C);
    fill_normal(inp, (int64_t)N * C, 5, 1.0f);
    fill_normal(dout, (int64_t)N * OC, 6, 1.0f);
    fill_normal(w, (int64_t)OC * C, 7, 0.05f);
    fill_normal(dw0, (int64_t)OC * C, 8, 1.0f);
    double *want = malloc(sizeof(double) * OC * C);
    for (int o = 0; o < OC; o++)
        for (int c = 0; c < C; c++) {
            double s = dw0[o * C + c];
            for (int n = 0; n < N; n++) s += (double)dout[(size_t)n * OC + o] * inp[(size_t)n * C + c];
            want[o * C + c] = s;
        }
    float *got[2];
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t + 1);
        got[t] = malloc(sizeof(float) * OC * C);
        memcpy(got[t], dw0, sizeof(float) * OC * C);
        linear_backward(NULL, got[t], NULL, dout, inp, w, N, C, OC);
    }
    double *g64 = malloc(sizeof(double) * OC * C);
    for (int i = 0; i < OC * C; i++) g64[i] = got[0][i];
    // fp32 sums of 1024 unit-variance products: |error| ~ 1e-5 of ~32
    expect_close_f64("row-split dweight vs double", g64, want, (int64_t)OC * C, 1e-4, 1e-5);
    expect_same_bits("row-split dweight omp 1 vs 2", got[0], got[1], (int64_t)OC * C);
    free(inp); free(dout); free(w); free(dw0); free(want); free(got[0]); free(got[1]); free(g64);
}

// The backward with both dinp and dweight runs its two products and the
// bias column blocks as tasks of one parallel region (nn/cpu/linear.c):
// checked against double-precision sums onto nonzero gradients (and dinp
// written by linear_backward_set), and 1 vs 2 threads bit for bit. Shapes:
// rows >= columns (the DiT projections) and a batch-rows-only adaLN-like
// product (N 16, long OC).
static void check_backward_tasks(const int (*shapes)[3], int nshapes) {
    for (int si = 0; si < nshapes; si++) {
        const int N = shapes[si][0], C = shapes[si][1], OC = shapes[si][2];
        float *inp = malloc(sizeof(float) * N * C), *dout = malloc(sizeof(float) * N * OC);
        float *w = malloc(sizeof(float) * OC * C), *g0[3];
        const int64_t sz[3] = {(int64_t)N * C, (int64_t)OC * C, OC};
        fill_normal(inp, sz[0], 11, 1.0f);
        fill_normal(dout, (int64_t)N * OC, 12, 1.0f);
        fill_normal(w, sz[1], 13, 0.05f);
        for (int k = 0; k < 3; k++) {
            g0[k] = malloc(sizeof(float) * sz[k]);
            fill_normal(g0[k], sz[k], 14 + k, 1.0f);
        }
        double *want[3];
        for (int k = 0; k < 3; k++) want[k] = malloc(sizeof(double) * sz[k]);
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++) {
                double s = g0[0][(size_t)n * C + c];
                for (int o = 0; o < OC; o++) s += (double)dout[(size_t)n * OC + o] * w[(size_t)o * C + c];
                want[0][(size_t)n * C + c] = s;
            }
        for (int o = 0; o < OC; o++) {
            for (int c = 0; c < C; c++) {
                double s = g0[1][(size_t)o * C + c];
                for (int n = 0; n < N; n++) s += (double)dout[(size_t)n * OC + o] * inp[(size_t)n * C + c];
                want[1][(size_t)o * C + c] = s;
            }
            double s = g0[2][o];
            for (int n = 0; n < N; n++) s += dout[(size_t)n * OC + o];
            want[2][o] = s;
        }
        for (int set = 0; set < 2; set++) {
            float *got[2][3];
            for (int t = 0; t < 2; t++) {
                omp_set_num_threads(t + 1);
                for (int k = 0; k < 3; k++) {
                    got[t][k] = malloc(sizeof(float) * sz[k]);
                    memcpy(got[t][k], g0[k], sizeof(float) * sz[k]);
                }
                if (set) {   // dinp written: NaN before must not matter
                    for (int64_t i = 0; i < sz[0]; i++) got[t][0][i] = NAN;
                    linear_backward_set(got[t][0], got[t][1], got[t][2], dout, inp, w, N, C, OC);
                } else {
                    linear_backward(got[t][0], got[t][1], got[t][2], dout, inp, w, N, C, OC);
                }
            }
            const char *names[3] = {"dinp", "dweight", "dbias"};
            for (int k = 0; k < 3; k++) {
                double *g64 = malloc(sizeof(double) * sz[k]);
                for (int64_t i = 0; i < sz[k]; i++)
                    g64[i] = got[0][k][i] + (set && k == 0 ? (double)g0[0][i] : 0.0);
                char what[96];
                snprintf(what, sizeof what, "tasks %s N%d C%d OC%d set %d", names[k], N, C, OC, set);
                // fp32 sums of up to 2304 unit-variance products
                expect_close_f64(what, g64, want[k], sz[k], 2e-4, 1e-5);
                snprintf(what, sizeof what, "tasks %s omp 1 vs 2 set %d", names[k], set);
                expect_same_bits(what, got[0][k], got[1][k], sz[k]);
                free(g64);
                free(got[0][k]); free(got[1][k]);
            }
        }
        for (int k = 0; k < 3; k++) { free(g0[k]); free(want[k]); }
        free(inp); free(dout); free(w);
    }
}

Test(linear, backward_tasks) {
    const int shapes[2][3] = {{256, 96, 160}, {16, 128, 2304}};
    check_backward_tasks(shapes, 2);
}

// The same with the products cut into several parts per task, as on a
// machine with 8 processors (a 2-core machine cuts at most 2 blocks, so each
// task is one whole product and the part offsets never run): row parts
// (N 2048 x C 64: dinp in 3 parts, dweight 1600 x 64 in 2) and column parts
// (N 64 x C 1600: dinp in 2 column parts, dweight 2048 x 1600 in 3 row
// parts). The part counts are asserted, so the test fails if the cut rule
// stops producing them.
Test(linear, backward_tasks_many_parts) {
    gemm_set_max_blocks(8);
    const int shapes[2][3] = {{2048, 64, 1600}, {64, 1600, 2048}};
    for (int si = 0; si < 2; si++) {
        const int N = shapes[si][0], C = shapes[si][1], OC = shapes[si][2];
        cr_assert_geq(gemm_block_count(N, C, OC), 3, "dinp blocks N%d C%d OC%d", N, C, OC);
        cr_assert_geq(gemm_block_count(OC, C, N), 3, "dweight blocks N%d C%d OC%d", N, C, OC);
    }
    check_backward_tasks(shapes, 2);
    gemm_set_max_blocks(0);
}
