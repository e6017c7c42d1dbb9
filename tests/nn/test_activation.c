// test_activation.c: nn/activation.h and nn/elementwise.h.
// Activations and softmax against tests/ref/gen_dense_act.py (forward vs
// numpy float64, backward vs float64 central finite differences, backward
// accumulates, extreme inputs stay finite); element-wise helpers against
// their closed forms; 1-vs-2 thread bit identity.
#include <math.h>
#include <omp.h>

#include "nn/activation.h"
#include "nn/elementwise.h"
#include "tests/nn/dense_check.h"

#define G "dense_act"

typedef void (*act_fwd)(float *, const float *, int64_t);
typedef void (*act_bwd)(float *, const float *, const float *, int64_t);

static void leaky_fwd(float *o, const float *x, int64_t n) { leaky_relu_forward(o, x, n, 0.2f); }
static void leaky_bwd(float *d, const float *g, const float *x, int64_t n) {
    leaky_relu_backward(d, g, x, n, 0.2f);
}

static const struct { const char *name; act_fwd f; act_bwd b; } ACTS[] = {
    {"relu", relu_forward, relu_backward},
    {"silu", silu_forward, silu_backward},
    {"gelu", gelu_forward, gelu_backward},
    {"leaky", leaky_fwd, leaky_bwd},
};

Test(activation, elementwise_vs_numpy) {
    int64_t n, ne;
    float *x = ref_f32(G, "x", &n), *R = ref_f32(G, "R", NULL), *g0 = ref_f32(G, "g0", NULL);
    float *ext = ref_f32(G, "ext", &ne);
    float *out = malloc(sizeof(float) * n);
    for (size_t k = 0; k < sizeof ACTS / sizeof ACTS[0]; k++) {
        char key[64], what[64];
        snprintf(key, sizeof key, "%s_out", ACTS[k].name);
        double *ref = ref_f64(G, key, NULL);
        ACTS[k].f(out, x, n);
        snprintf(what, sizeof what, "%s fwd", ACTS[k].name);
        check_vs(what, out, ref, n, 1e-5, 1e-5);
        free(ref);
        // in place gives the same bits
        float *inpl = copy_f32(x, n);
        ACTS[k].f(inpl, inpl, n);
        expect_same_bits("in-place forward", inpl, out, n);
        free(inpl);

        snprintf(key, sizeof key, "%s_ext", ACTS[k].name);
        ref = ref_f64(G, key, NULL);
        float eo[16];
        ACTS[k].f(eo, ext, ne);
        snprintf(what, sizeof what, "%s fwd extreme inputs", ACTS[k].name);
        check_vs(what, eo, ref, ne, 1e-5, 1e-5);
        free(ref);

        snprintf(key, sizeof key, "%s_dinp", ACTS[k].name);
        double *dref = ref_f64(G, key, NULL);
        float *d = copy_f32(g0, n);
        ACTS[k].b(d, R, x, n);
        snprintf(what, sizeof what, "%s dinp", ACTS[k].name);
        check_grad(what, d, g0, dref, n, 1e-5, 1e-5);
        free(dref);
        float de[16] = {0};
        ACTS[k].b(de, ext, ext, ne);   // extreme inputs: gradients finite
        for (int i = 0; i < ne; i++)
            cr_expect(isfinite(de[i]), "%s backward at %g not finite", ACTS[k].name, ext[i]);
        free(d);
    }
    free(x); free(R); free(g0); free(ext); free(out);
}

// silu_backward_set overwrites dinp (whatever it held) with what
// silu_backward adds to a zeroed dinp; the numpy reference checks the
// latter above. Also on the extreme inputs.
Test(activation, silu_backward_set_equals_accumulate_into_zero) {
    int64_t n, ne;
    float *x = ref_f32(G, "x", &n), *R = ref_f32(G, "R", NULL), *g0 = ref_f32(G, "g0", NULL);
    float *ext = ref_f32(G, "ext", &ne);
    const float *xs[2] = {x, ext};
    const int64_t ns[2] = {n, ne};
    for (int k = 0; k < 2; k++) {
        float *acc = calloc(ns[k], sizeof(float)), *set = copy_f32(g0, ns[k]);
        silu_backward(acc, R, xs[k], ns[k]);
        silu_backward_set(set, R, xs[k], ns[k]);
        int64_t bad = -1;
        for (int64_t i = 0; i < ns[k] && bad < 0; i++)
            if (!(acc[i] == set[i])) bad = i;
        cr_expect(bad < 0, "silu_backward_set differs at %lld: %.9g vs %.9g", (long long)bad,
                  bad >= 0 ? set[bad] : 0.0, bad >= 0 ? acc[bad] : 0.0);
        free(acc); free(set);
    }
    free(x); free(R); free(g0); free(ext);
}

Test(activation, softmax_vs_numpy) {
    int64_t nc;
    double *cases = ref_f64(G, "sm_cases", &nc);
    for (int ci = 0; ci < nc / 2; ci++) {
        int N = (int)cases[2 * ci], C = (int)cases[2 * ci + 1];
        int64_t n = (int64_t)N * C;
        float *x = pcase_f32(G, "sm", ci, "inp", NULL), *R = pcase_f32(G, "sm", ci, "R", NULL);
        float *g0 = pcase_f32(G, "sm", ci, "g0_inp", NULL);
        double *oref = pcase_f64(G, "sm", ci, "out", NULL), *dref = pcase_f64(G, "sm", ci, "dinp", NULL);
        float *y = malloc(sizeof(float) * n);
        softmax_forward(y, x, N, C);
        char what[64];
        snprintf(what, sizeof what, "softmax fwd N%d C%d", N, C);
        check_vs(what, y, oref, n, 1e-6, 1e-5);
        float *d = copy_f32(g0, n);
        softmax_backward(d, R, y, N, C);
        snprintf(what, sizeof what, "softmax dinp N%d C%d", N, C);
        check_grad(what, d, g0, dref, n, 1e-5, 1e-5);
        free(x); free(R); free(g0); free(oref); free(dref); free(y); free(d);
    }
    free(cases);
}

Test(elementwise, closed_forms) {
    enum { N = 777, B = 3, C = 5, HW = 7 };
    float a[N], b[N], g[N], o[N], da[N], db[N];
    fill_normal(a, N, 31, 1.0f); fill_normal(b, N, 32, 1.0f); fill_normal(g, N, 33, 1.0f);
    add_forward(o, a, b, N);
    for (int i = 0; i < N; i++) cr_expect_eq(o[i], a[i] + b[i]);
    mul_forward(o, a, b, N);
    for (int i = 0; i < N; i++) cr_expect_eq(o[i], a[i] * b[i]);
    scale_forward(o, a, 0.37f, N);
    for (int i = 0; i < N; i++) cr_expect_eq(o[i], 0.37f * a[i]);
    for (int i = 0; i < N; i++) { da[i] = 1.0f; db[i] = -2.0f; }
    add_backward(da, db, g, N);
    for (int i = 0; i < N; i++) { cr_expect_eq(da[i], 1.0f + g[i]); cr_expect_eq(db[i], -2.0f + g[i]); }
    for (int i = 0; i < N; i++) { da[i] = 1.0f; db[i] = -2.0f; }
    mul_backward(da, db, g, a, b, N);
    for (int i = 0; i < N; i++) {
        cr_expect_eq(da[i], 1.0f + g[i] * b[i]);
        cr_expect_eq(db[i], -2.0f + g[i] * a[i]);
    }
    for (int i = 0; i < N; i++) da[i] = 1.0f;
    scale_backward(da, g, 0.37f, N);
    for (int i = 0; i < N; i++) cr_expect_eq(da[i], 1.0f + 0.37f * g[i]);
    memcpy(o, a, sizeof o);
    add_inplace(o, b, N);
    for (int i = 0; i < N; i++) cr_expect_eq(o[i], a[i] + b[i]);

    float bias[C], dbias[C] = {0}, dx[B * C * HW] = {0};
    fill_normal(bias, C, 34, 1.0f);
    add_channel_bias_forward(o, a, bias, B, C, HW);
    for (int i = 0; i < B * C * HW; i++) cr_expect_eq(o[i], a[i] + bias[(i / HW) % C]);
    add_channel_bias_backward(dx, dbias, g, B, C, HW);
    double want[C] = {0};
    for (int i = 0; i < B * C * HW; i++) { want[(i / HW) % C] += g[i]; cr_expect_eq(dx[i], g[i]); }
    check_vs("add_channel_bias dbias", dbias, want, C, 1e-6, 1e-6);
}

Test(activation, one_vs_two_threads_identical) {
    const int N = 200, C = 333;
    const int64_t n = (int64_t)N * C;
    float *x = malloc(sizeof(float) * n), *g = malloc(sizeof(float) * n);
    fill_normal(x, n, 41, 3.0f); fill_normal(g, n, 42, 1.0f);
    float *r[2][3];
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t + 1);
        r[t][0] = malloc(sizeof(float) * n); r[t][1] = calloc(n, sizeof(float));
        r[t][2] = calloc(n, sizeof(float));
        gelu_forward(r[t][0], x, n);
        gelu_backward(r[t][1], g, x, n);
        softmax_forward(r[t][0], x, N, C);
        softmax_backward(r[t][2], g, r[t][0], N, C);
    }
    for (int k = 0; k < 3; k++) {
        expect_same_bits("activation buffer", r[0][k], r[1][k], n);
        free(r[0][k]); free(r[1][k]);
    }
    free(x); free(g);
}
