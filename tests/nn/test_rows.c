// test_rows.c: the strided row copies of nn/rows.h on the CPU: forward
// against its closed form (every copied element equal, every other element
// of the output untouched), backward accumulating onto its initial contents,
// and backward against central finite differences of L = sum(w .* out).
#include <criterion/criterion.h>
#include <stdlib.h>

#include "nn/rows.h"
#include "tests/util.h"

enum { N = 37, W = 24, OS = 72, IS = 40 };   // a q slot of (N, 3*24) rows <- (N, 40) rows

Test(rows, forward_closed_form) {
    float *inp = malloc(sizeof(float) * N * IS), *out = malloc(sizeof(float) * N * OS);
    fill_normal(inp, N * IS, 1, 1.0f);
    for (int i = 0; i < N * OS; i++) out[i] = -7.0f;
    rows_copy_forward(out + 24, inp, N, W, OS, IS);   // into the k slot
    for (int n = 0; n < N; n++)
        for (int j = 0; j < OS; j++) {
            float want = (j >= 24 && j < 48) ? inp[n * IS + j - 24] : -7.0f;
            cr_assert_eq(out[n * OS + j], want, "n %d j %d", n, j);
        }
    free(inp);
    free(out);
}

// L(inp) = sum over the output of w .* out, in double.
static double loss(const float *inp, const float *w, float *out) {
    rows_copy_forward(out, inp, N, W, OS, IS);
    double s = 0;
    for (int n = 0; n < N; n++)
        for (int j = 0; j < W; j++) s += (double)w[n * OS + j] * out[n * OS + j];
    return s;
}

Test(rows, backward_accumulates_and_matches_finite_differences) {
    float *inp = malloc(sizeof(float) * N * IS), *w = malloc(sizeof(float) * N * OS);
    float *out = calloc(N * OS, sizeof(float)), *g = malloc(sizeof(float) * N * IS);
    float *g0 = malloc(sizeof(float) * N * IS), *fd = malloc(sizeof(float) * N * IS);
    fill_normal(inp, N * IS, 2, 1.0f);
    fill_normal(w, N * OS, 3, 1.0f);
    fill_normal(g0, N * IS, 4, 1.0f);
    for (int i = 0; i < N * IS; i++) g[i] = g0[i];
    rows_copy_backward(g, w, N, W, OS, IS);
    const float h = 0.25f;
    for (int i = 0; i < N * IS; i++) {
        const float x = inp[i];
        inp[i] = x + h;
        double lp = loss(inp, w, out);
        inp[i] = x - h;
        double lm = loss(inp, w, out);
        inp[i] = x;
        fd[i] = (float)((lp - lm) / (2.0 * h)) + g0[i];   // onto the initial gradient
    }
    // L is linear in inp: the differences are exact up to float rounding of x +- h
    expect_close_f32("rows_copy_backward vs FD", g, fd, N * IS, 1e-5, 1e-5);
    for (int n = 0; n < N; n++)   // columns past W get nothing
        for (int j = W; j < IS; j++) cr_assert_eq(g[n * IS + j], g0[n * IS + j]);
    free(inp); free(w); free(out); free(g); free(g0); free(fd);
}
