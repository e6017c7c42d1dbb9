// test_muon.c: the quintic Newton-Schulz orthogonalisation of nn/muon.h
// against a float64 numpy evaluation of the same iteration
// (tests/ref/gen_optim.py), and the property Muon relies on: the singular
// values of the result sit near 1 whatever the input's scale and spectrum.
#include <criterion/criterion.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/muon.h"
#include "tests/util.h"

static void check_ref(const char *name, int64_t rows, int64_t cols) {
    char in[64], out[64];
    snprintf(in, sizeof in, "%s_in", name);
    snprintf(out, sizeof out, "%s_out", name);
    int64_t n;
    float *g = ref_f32("optim", in, &n);
    cr_assert_eq(n, rows * cols);
    float *want = ref_f32("optim", out, &n);
    float *scratch = malloc((size_t)muon_ns_scratch_floats(rows, cols) * sizeof(float));
    float *got = malloc((size_t)n * sizeof(float));
    muon_newton_schulz(got, g, rows, cols, 5, scratch);
    // fp32 vs the float64 iteration: measured max abs 1.1e-6, max rel 3.7e-5
    // (near-zero entries) over the three shapes, so atol 1e-5 carries it.
    expect_close_f32(name, got, want, n, 1e-5, 1e-5);
    // in place gives the same bits
    muon_newton_schulz(g, g, rows, cols, 5, scratch);
    cr_expect_eq(memcmp(g, got, (size_t)n * sizeof(float)), 0);
    free(g); free(want); free(scratch); free(got);
}

Test(muon, ns_wide) { check_ref("ns_wide", 5, 8); }
Test(muon, ns_tall) { check_ref("ns_tall", 9, 4); }
Test(muon, ns_square) { check_ref("ns_square", 6, 6); }

// NS acts on each singular value separately: with G = U S V^T and
// s = S / ||G||_F, five steps give U p5(s) V^T where p5 is the scalar quintic
// p(x) = a x + b x^3 + c x^5 applied five times. So the singular values of the
// fp32 result must equal p5 of the input's (both sorted), and those whose s is
// at least 2e-3 land in [0.68, 1.21] (the quintic's own range there, computed
// in double: [0.6818, 1.2024]); smaller ones are only amplified by about
// a^5 = 485 (e.g. 0.34 measured for a 64x64 input with a 10x column spread).
static int cmp_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static double *svals(const float *m, int64_t rows, int64_t cols) {
    int64_t r = rows < cols ? rows : cols;
    double *a = malloc((size_t)(rows * cols) * sizeof(double)), *s = malloc((size_t)r * sizeof(double));
    double *sup = malloc((size_t)r * sizeof(double));
    for (int64_t i = 0; i < rows * cols; i++) a[i] = m[i];
    int info = LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N', (lapack_int)rows, (lapack_int)cols, a,
                              (lapack_int)cols, s, NULL, 1, NULL, 1, sup);
    cr_assert_eq(info, 0);
    free(a);
    free(sup);
    return s;
}

static double ns_check(int64_t rows, int64_t cols, double spread, uint64_t seed, double *lo, double *hi) {
    int64_t r = rows < cols ? rows : cols;
    float *g = malloc((size_t)(rows * cols) * sizeof(float));
    fill_normal(g, rows * cols, seed, 1.0f);
    for (int64_t i = 0; i < rows; i++)   // column j scaled by spread^(-j/(cols-1))
        for (int64_t j = 0; j < cols; j++)
            g[i * cols + j] *= 37.0f * (float)pow(spread, -(double)j / (double)(cols - 1));
    double fro = 0;
    for (int64_t i = 0; i < rows * cols; i++) fro += (double)g[i] * g[i];
    fro = sqrt(fro);
    double *sin = svals(g, rows, cols);
    float *scratch = malloc((size_t)muon_ns_scratch_floats(rows, cols) * sizeof(float));
    muon_newton_schulz(g, g, rows, cols, 5, scratch);
    double *sout = svals(g, rows, cols);
    double maxerr = 0;
    *lo = 1e9;
    *hi = 0;
    for (int64_t i = 0; i < r; i++) {
        double x = sin[i] / (fro + 1e-7);
        for (int k = 0; k < 5; k++) {
            double x2 = x * x;
            x = x * (3.4445 + x2 * (-4.7750 + 2.0315 * x2));
        }
        sin[i] = x;
    }
    qsort(sin, (size_t)r, sizeof(double), cmp_desc);
    for (int64_t i = 0; i < r; i++) {
        maxerr = fmax(maxerr, fabs(sout[i] - sin[i]));
        *lo = fmin(*lo, sout[i]);
        *hi = fmax(*hi, sout[i]);
    }
    free(g); free(scratch); free(sin); free(sout);
    return maxerr;
}

Test(muon, singular_values) {
    const int64_t shapes[][2] = {{64, 64}, {32, 96}, {128, 48}, {10, 300}};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        for (int c = 0; c < 2; c++) {
            double lo, hi, spread = c ? 10.0 : 1.0;
            double err = ns_check(shapes[k][0], shapes[k][1], spread, 100 + k, &lo, &hi);
            cr_log_info("NS5 %lldx%lld spread %.0f: singular values in [%.4f, %.4f], |sv - p5(sv_in)| <= %.2e",
                        (long long)shapes[k][0], (long long)shapes[k][1], spread, lo, hi, err);
            // fp32 iteration vs the exact scalar map: measured at most 1.6e-6 here
            cr_expect(err < 2e-5, "%lldx%lld spread %.0f: singular values off the quintic map by %.2e",
                      (long long)shapes[k][0], (long long)shapes[k][1], spread, err);
            if (c == 0)   // Gaussian inputs: every normalised sv is above 2e-3
                cr_expect(lo >= 0.68 && hi <= 1.21, "%lldx%lld: singular values in [%.4f, %.4f]",
                          (long long)shapes[k][0], (long long)shapes[k][1], lo, hi);
        }
    }
}

Test(muon, zero_input_stays_finite) {
    float g[12] = {0}, scratch[64];
    cr_assert_geq(64, muon_ns_scratch_floats(3, 4));
    muon_newton_schulz(g, g, 3, 4, 5, scratch);
    for (int i = 0; i < 12; i++) cr_expect_eq(g[i], 0.0f);
}
