// test_flow_loss.c: nn/flow_loss.h on the CPU: the values against a direct
// double-precision evaluation of the formulas, the gradient against central
// finite differences of that evaluation (accumulated onto a non-zero dv),
// bit-identity with the separate nn/loss.h ops it replaces in
// models/dit_train.c, and cos_weight 0 (MSE only, cos value 0). The GPU side
// is tests/cuda/test_parity_flow_loss.c.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "nn/flow_loss.h"
#include "nn/loss.h"
#include "tests/util.h"

// mse + w * mean(1 - cos) in double, (outer, C, inner) view.
static double loss_ref(const float *v, const float *u, int O, int C, int I, double w) {
    double se = 0, cs = 0;
    const int64_t n = (int64_t)O * C * I;
    for (int64_t i = 0; i < n; i++) se += ((double)v[i] - u[i]) * ((double)v[i] - u[i]);
    for (int o = 0; o < O; o++)
        for (int j = 0; j < I; j++) {
            double d = 0, a = 0, b = 0;
            for (int c = 0; c < C; c++) {
                int64_t k = ((int64_t)o * C + c) * I + j;
                d += (double)v[k] * u[k];
                a += (double)v[k] * v[k];
                b += (double)u[k] * u[k];
            }
            cs += 1.0 - d / (fmax(sqrt(a), 1e-8) * fmax(sqrt(b), 1e-8));
        }
    return se / (double)n + w * cs / ((double)O * I);
}

Test(flow_loss, values_and_gradient_vs_formula) {
    enum { O = 3, C = 4, I = 5, N = O * C * I };
    const float w = 0.7f;
    float v[N], u[N], dv[N], dv0[N];
    fill_normal(v, N, 1, 1.0f);
    fill_normal(u, N, 2, 1.0f);
    fill_normal(dv0, N, 3, 0.1f);
    memcpy(dv, dv0, sizeof dv);
    double vals[2];
    flow_loss(vals, dv, v, u, O, C, I, w);
    double want = loss_ref(v, u, O, C, I, w);
    cr_expect(fabs(vals[0] + w * vals[1] - want) <= 1e-12 * fabs(want), "loss %.17g vs %.17g",
              vals[0] + w * vals[1], want);
    cr_expect(fabs(vals[0] - loss_ref(v, u, O, C, I, 0)) <= 1e-12 * vals[0]);
    // Central differences of the double formula over the float step actually
    // taken; HACKING.md's default tolerance (measured: max abs 4.5e-8).
    float fd[N];
    for (int i = 0; i < N; i++) {
        float keep = v[i];
        const float h = 1e-3f;
        const float vp = keep + h, vm = keep - h;   // the step actually taken, in float
        v[i] = vp;
        double lp = loss_ref(v, u, O, C, I, w);
        v[i] = vm;
        double lm = loss_ref(v, u, O, C, I, w);
        v[i] = keep;
        fd[i] = (float)((lp - lm) / ((double)vp - (double)vm)) + dv0[i];
    }
    cmp_result r = compare_f32(dv, fd, N, 1e-5, 1e-5);
    cr_log_info("dv vs FD: max_abs %.3g max_rel %.3g", r.max_abs, r.max_rel);
    expect_close_f32("dv (accumulated) vs finite differences", dv, fd, N, 1e-5, 1e-5);
}

// The fused op is exactly the separate ops in the order dit_train.c used.
Test(flow_loss, bit_identical_to_separate_ops) {
    enum { O = 4, C = 8, I = 16, N = O * C * I };
    float *v = malloc(N * 4), *u = malloc(N * 4), *a = calloc(N, 4), *b = calloc(N, 4);
    fill_normal(v, N, 4, 1.0f);
    fill_normal(u, N, 5, 1.0f);
    double vals[2];
    flow_loss(vals, a, v, u, O, C, I, 1.0f);
    double mse = mse_loss_forward(v, u, N), cs = cosine_loss_forward(v, u, O, C, I);
    mse_loss_backward(b, NULL, v, u, N, 1.0f);
    cosine_loss_backward(b, NULL, v, u, O, C, I, 1.0f);
    cr_expect(vals[0] == mse && vals[1] == cs, "values %.17g %.17g vs %.17g %.17g", vals[0], vals[1],
              mse, cs);
    cr_expect(memcmp(a, b, N * 4) == 0, "dv differs from the separate ops");
    free(v); free(u); free(a); free(b);
}

// cos_weight 0: the cosine value is 0 and dv is the MSE gradient alone; dv
// NULL computes the values only.
Test(flow_loss, mse_only_and_values_only) {
    enum { O = 2, C = 3, I = 4, N = O * C * I };
    float v[N], u[N], a[N] = {0}, b[N] = {0};
    fill_normal(v, N, 6, 1.0f);
    fill_normal(u, N, 7, 1.0f);
    double vals[2] = {-1, -1};
    flow_loss(vals, a, v, u, O, C, I, 0.0f);
    cr_expect_eq(vals[1], 0.0);
    mse_loss_backward(b, NULL, v, u, N, 1.0f);
    cr_expect(memcmp(a, b, sizeof a) == 0);
    double only[2];
    flow_loss(only, NULL, v, u, O, C, I, 0.5f);
    cr_expect_eq(only[0], vals[0]);
    cr_expect_eq(only[1], cosine_loss_forward(v, u, O, C, I));
}
