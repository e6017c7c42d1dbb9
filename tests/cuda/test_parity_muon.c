// test_parity_muon.c: Muon on the GPU (nn/cuda/muon.cu) against the CPU on
// the same inputs: the Newton-Schulz iteration (wide and tall matrices: the
// tall one runs transposed) through the op API, and three optim_step calls
// of OPTIM_MUON on a table with Muon matrices and an AdamW vector: the
// parameters and the optimizer state after each. Skips without a GPU.
//
// Tolerance: atol = 1e-4 * max |CPU value|, rtol 1e-4 (HACKING.md's fp32
// default, scaled to the output like the DiT gradient check). The GEMMs sum
// in another order than OpenBLAS, and five quintic iterations amplify
// rounding: measured on the CPU, perturbing the input by ~1 ulp moves the
// output by 1.5e-6 .. 3e-6 of its largest value (48x80, 96x40, 768x768),
// so 1e-4 leaves a margin of ~30x. Not yet run on a GPU when written.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "nn/muon.h"
#include "nn/optim.h"
#include "nn/params.h"
#include "tests/cuda/cuda_test.h"

#ifdef VEL_HAVE_CUDA
#include "core/error.h"
#include "nn/backend.h"
#include "nn/device.h"

static double max_abs(const float *x, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

static float *download(const float *dev, int64_t n) {
    float *h = malloc(sizeof(float) * (size_t)n);
    cr_assert_eq(device_copy(h, dev, sizeof(float) * (size_t)n), 0, "%s", vel_error_detail());
    return h;
}

static void expect_scaled(const char *what, const float *gpu, const float *cpu, int64_t n) {
    const double m = max_abs(cpu, n);
    cr_assert_gt(m, 0.0, "%s: all zero", what);
    cmp_result r = compare_f32(gpu, cpu, n, 1e-4 * m, 1e-4);
    cr_log_info("%s: n=%lld max_abs=%.3g max_rel=%.3g nmse=%.3g", what, (long long)n, r.max_abs, r.max_rel,
                r.nmse);
    expect_close_f32(what, gpu, cpu, n, 1e-4 * m, 1e-4);
}

static void ns_shape(int64_t rows, int64_t cols) {
    cuda_test_activate();
    const int64_t n = rows * cols, ns = muon_ns_scratch_floats(rows, cols);
    float *g = malloc(n * 4), *out = malloc(n * 4), *scr = malloc(ns * 4);
    fill_normal(g, n, 7, 1.0f);
    muon_newton_schulz(out, g, rows, cols, 5, scr);
    float *dg, *dout, *dscr;
    cr_assert_eq(device_alloc(DEVICE_CUDA, (void **)&dg, n * 4), 0);
    cr_assert_eq(device_alloc(DEVICE_CUDA, (void **)&dout, n * 4), 0);
    cr_assert_eq(device_alloc(DEVICE_CUDA, (void **)&dscr, ns * 4), 0);
    cr_assert_eq(device_copy(dg, g, n * 4), 0);
    muon_newton_schulz(dout, dg, rows, cols, 5, dscr);
    int e = nn_sync();
    cr_assert_eq(e, 0, "%s", vel_errmsg(e));
    float *h = download(dout, n);
    char what[64];
    snprintf(what, sizeof what, "newton-schulz %lldx%lld", (long long)rows, (long long)cols);
    expect_scaled(what, h, out, n);
    // in place (out == g), as muon_update calls it
    muon_newton_schulz(dg, dg, rows, cols, 5, dscr);
    e = nn_sync();
    cr_assert_eq(e, 0, "%s", vel_errmsg(e));
    free(h);
    h = download(dg, n);
    expect_scaled("newton-schulz in place", h, out, n);
    free(h); free(g); free(out); free(scr);
    device_free((void **)&dg); device_free((void **)&dout); device_free((void **)&dscr);
    device_release();
}

Test(parity_muon, newton_schulz_wide) { ns_shape(48, 80); }
Test(parity_muon, newton_schulz_tall_transposed) { ns_shape(96, 40); }

static void build(param_table *pt) {
    param_table_init(pt);
    param_add(pt, "w1", 2, (int64_t[]){24, 40});
    param_add(pt, "w2", 2, (int64_t[]){40, 24});   // tall: transposed inside Newton-Schulz
    param_add(pt, "b", 1, (int64_t[]){40});        // 1-D: AdamW
    cr_assert_eq(param_table_commit(pt), 0);
    fill_normal(pt->values, pt->total, 3, 0.1f);
}

Test(parity_muon, optim_step_three_steps) {
    cuda_test_activate();
    param_table pc, pg;
    build(&pc);
    build(&pg);
    cr_assert_eq(param_table_move(&pg, DEVICE_CUDA), 0, "%s", vel_error_detail());
    optim_config c = optim_defaults(OPTIM_MUON);
    c.weight_decay = 0.01, c.muon_weight_decay = 0.01;
    optim *oc = NULL, *og = NULL;
    cr_assert_eq(optim_create(&oc, &pc, &c), 0);
    cr_assert_eq(optim_create(&og, &pg, &c), 0, "%s", vel_error_detail());
    cr_assert(nn_on_device(og->state) && nn_on_device(og->scratch));
    float *g = malloc(sizeof(float) * pc.total);
    for (int s = 0; s < 3; s++) {
        fill_normal(g, pc.total, 100 + s, 1.0f);
        memcpy(pc.grads, g, sizeof(float) * pc.total);
        cr_assert_eq(device_copy(pg.grads, g, sizeof(float) * pc.total), 0);
        optim_step(oc, &pc, 2e-2);
        optim_step(og, &pg, 2e-2);
        int e = nn_sync();
        cr_assert_eq(e, 0, "step %d: %s", s, vel_errmsg(e));
        cr_expect_eq(og->step, oc->step);
        float *v = download(pg.values, pc.total), *st = download(og->state, 2 * pc.total);
        char what[64];
        snprintf(what, sizeof what, "parameters after step %d", s + 1);
        expect_scaled(what, v, pc.values, pc.total);
        snprintf(what, sizeof what, "optimizer state after step %d", s + 1);
        expect_scaled(what, st, oc->state, 2 * pc.total);
        free(v);
        free(st);
    }
    free(g);
    optim_destroy(&oc);
    optim_destroy(&og);
    param_table_free(&pc);
    param_table_free(&pg);
    device_release();
}
#else
Test(parity_muon, skipped) { cr_skip_test("built without nvcc: CUDA parity tests skipped"); }
#endif
