// Tests for nn/embed.h: timestep features and the 2D sin-cos table against
// numpy ports of DiT's / MAE's code (tests/ref/gen_dit_ops.py); label
// lookup with the null class and an explicit drop mask; backward "+=" with
// repeated labels; out-of-range labels rejected without writing.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "nn/embed.h"
#include "tests/util.h"

static void report(const char *what, const float *x, const float *r, int64_t n,
                   double atol, double rtol) {
    cmp_result c = compare_f32(x, r, n, atol, rtol);
    fprintf(stderr, "[embed] %-14s max_abs %.3g max_rel %.3g\n", what, c.max_abs, c.max_rel);
    expect_close_f32(what, x, r, n, atol, rtol);
}

Test(embed, timestep_vs_numpy) {
    int64_t n, m;
    float *t = ref_f32("dit_ops", "temb_t", &n), *ref = ref_f32("dit_ops", "temb", &m);
    cr_assert_eq(m, n * 256);
    float *out = malloc(m * 4);
    timestep_embedding(out, t, (int)n, 256, 10000.0);
    report("timestep", out, ref, m, 1e-7, 1e-6);
    // layout: cos half first (t = 0 gives ones then zeros)
    cr_assert(out[0] == 1.0f && out[127] == 1.0f && out[128] == 0.0f && out[255] == 0.0f);
    free(t); free(ref); free(out);
}

Test(embed, pos_embed_vs_numpy) {
    int64_t n;
    float *ref = ref_f32("dit_ops", "pos_4x6_d32", &n);
    float out[4 * 6 * 32];
    cr_assert_eq(n, 4 * 6 * 32);
    pos_embed_2d(out, 4, 6, 32);
    report("pos 4x6 d32", out, ref, n, 1e-7, 1e-6);
    free(ref);
    ref = ref_f32("dit_ops", "pos_16x16_d768", &n);
    float *big = malloc(n * 4);
    pos_embed_2d(big, 16, 16, 768);
    report("pos 16x16 d768", big, ref, n, 1e-7, 1e-6);
    free(ref); free(big);
}

enum { NC = 5, D = 4, B = 6 };

Test(embed, label_lookup_drop_and_backward) {
    float table[(NC + 1) * D], out[B * D], dt[(NC + 1) * D], g[B * D];
    for (int i = 0; i < (NC + 1) * D; i++) table[i] = (float)i;
    int32_t y[B] = {0, 4, 2, 4, 5, 1};            // 5 = the null id itself
    uint8_t drop[B] = {0, 0, 1, 0, 0, 0};
    cr_assert_eq(label_embed_forward(out, table, y, drop, B, D, NC), 0);
    const int rows[B] = {0, 4, 5, 4, 5, 1};
    for (int b = 0; b < B; b++)
        for (int c = 0; c < D; c++) cr_assert_eq(out[b * D + c], table[rows[b] * D + c]);
    for (int i = 0; i < B * D; i++) g[i] = (float)(i + 1);
    for (int i = 0; i < (NC + 1) * D; i++) dt[i] = 1.0f;
    label_embed_backward(dt, g, y, drop, B, D, NC);
    for (int r = 0; r <= NC; r++)
        for (int c = 0; c < D; c++) {
            float want = 1.0f;
            for (int b = 0; b < B; b++) if (rows[b] == r) want += g[b * D + c];
            cr_assert_eq(dt[r * D + c], want, "row %d col %d: %g vs %g", r, c, dt[r * D + c], want);
        }
    // no mask = no dropout
    cr_assert_eq(label_embed_forward(out, table, y, NULL, B, D, NC), 0);
    cr_assert_eq(out[2 * D], table[2 * D]);
}

Test(embed, label_out_of_range_rejected) {
    float table[(NC + 1) * D] = {0}, out[2 * D];
    memset(out, 0x7f, sizeof out);
    int32_t bad[2][2] = {{0, 6}, {-1, 0}};
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(label_embed_forward(out, table, bad[k], NULL, 2, D, NC), VEL_ERANGE);
        for (int i = 0; i < 2 * D; i++) cr_assert(out[i] != 0.0f, "written despite error");
    }
    // a dropped entry is not looked at (it becomes the null row)
    uint8_t drop[2] = {0, 1};
    cr_assert_eq(label_embed_forward(out, table, bad[0], drop, 2, D, NC), 0);
}
