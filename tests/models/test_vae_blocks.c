// test_vae_blocks.c: whole CompVis blocks built on the tape (ResnetBlock with
// and without nin_shortcut, AttnBlock, Downsample, Upsample) against the
// numpy reference of tests/ref/gen_vae.py (forward), and every block's
// backward (input and parameter gradients) against central finite
// differences of L = sum(out * r) evaluated through the float forward.
#include <cblas.h>
#include <criterion/criterion.h>
#include <omp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/vae_blocks.h"
#include "core/base.h"
#include "tests/util.h"

// Tiny tensors: with several engineers' jobs on 2 cores, OpenMP/OpenBLAS
// barriers between hundreds of small ops dominated (measured 129 s vs 1.6 s
// for the KL gradient test). The ops are thread-count independent by
// contract, so the tests run single-threaded.
static void one_thread(void) {
    omp_set_num_threads(1);
    openblas_set_num_threads(1);
}

typedef int (*build_fn)(vtape *t, int x);
static int b_res(vtape *t, int x) { return vtape_resnet_block(t, "blk", x, 64, 32); }
static int b_attn(vtape *t, int x) { return vtape_attn_block(t, "attn", x, 32); }
static int b_down(vtape *t, int x) { return vtape_downsample(t, "ds", x); }
static int b_up(vtape *t, int x) { return vtape_upsample_block(t, "us", x); }

typedef struct {
    param_table pt;
    vtape t;
    int B, in, out;
    int64_t nin, nout;
} rig;

static void rig_make(rig *r, const char *tag, build_fn fn, int B, int C, int H, int W) {
    param_table_init(&r->pt);
    vtape_init(&r->t, &r->pt);
    r->B = B;
    r->in = vtape_buffer(&r->t, C, H, W);
    r->out = fn(&r->t, r->in);
    cr_assert_eq(param_table_commit(&r->pt), 0);
    cr_assert_eq(vtape_alloc(&r->t, B, 1), 0);
    for (int i = 0; i < r->pt.count; i++) {
        char key[160];
        snprintf(key, sizeof key, "%s_%s", tag, r->pt.info[i].name);
        int64_t n;
        float *v = ref_f32("vae", key, &n);
        cr_assert_eq(n, r->pt.info[i].numel, "%s size", key);
        memcpy(param_data(&r->pt, i), v, sizeof(float) * n);
        free(v);
    }
    char key[64];
    snprintf(key, sizeof key, "%s_in", tag);
    float *x = ref_f32("vae", key, &r->nin);
    cr_assert_eq(r->nin, (int64_t)B * C * H * W);
    memcpy(r->t.bufs[r->in].v, x, sizeof(float) * r->nin);
    free(x);
    r->nout = r->t.bufs[r->out].per * B;
}

static void rig_free(rig *r) {
    vtape_free(&r->t);
    param_table_free(&r->pt);
}

static double loss_of(rig *r, const float *w) {
    vtape_forward(&r->t, r->B);
    const float *y = r->t.bufs[r->out].v;
    double L = 0;
    for (int64_t i = 0; i < r->nout; i++) L += (double)y[i] * w[i];
    return L;
}

// Central differences on `count` seeded coordinates of x (in place), compared
// with the analytic gradient g.
static void fd_check(rig *r, const char *what, float *x, const float *g, int64_t n,
                     const float *w, int count, uint64_t seed) {
    const float h = 1e-2f;
    double maxerr = 0;
    uint64_t s = seed;
    for (int c = 0; c < count; c++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        int64_t i = (int64_t)((s >> 33) % (uint64_t)n);
        float x0 = x[i];
        x[i] = x0 + h;
        double lp = loss_of(r, w);
        x[i] = x0 - h;
        double lm = loss_of(r, w);
        x[i] = x0;
        double fd = (lp - lm) / (2.0 * h);
        double err = fabs(fd - g[i]);
        // Float forward with h = 1e-2: rounding of L (~1e-7 * |L| / h) and the
        // h^2 term; measured worst abs error 7.5e-4 (res, norm1.bias) over all
        // blocks, so 3e-3 abs + 1e-2 rel.
        cr_assert(err <= 3e-3 + 1e-2 * fabs(fd), "%s[%lld]: analytic %.6g vs FD %.6g", what,
                  (long long)i, g[i], fd);
        if (err > maxerr) maxerr = err;
    }
    cr_log_info("%s: %d FD checks, max abs err %.3g", what, count, maxerr);
}

static void block_case(const char *tag, build_fn fn, int B, int C, int H, int W) {
    rig r;
    rig_make(&r, tag, fn, B, C, H, W);
    vtape_forward(&r.t, B);
    char key[64];
    snprintf(key, sizeof key, "%s_out", tag);
    int64_t n;
    float *ref = ref_f32("vae", key, &n);
    cr_assert_eq(n, r.nout);
    char what[192];
    snprintf(what, sizeof what, "%s forward vs numpy", tag);
    cmp_result cr = compare_f32(r.t.bufs[r.out].v, ref, n, 1e-5, 1e-5);
    cr_log_info("%s: max abs %.3g max rel %.3g", what, cr.max_abs, cr.max_rel);
    // fp32 vs the float64 reference (3x3xC sums after group norms): STYLE's
    // default 1e-5 abs + 1e-5 rel.
    expect_close_f32(what, r.t.bufs[r.out].v, ref, n, 1e-5, 1e-5);
    free(ref);

    float *w = malloc(sizeof(float) * r.nout);
    fill_uniform(w, r.nout, 99, -1, 1);
    param_zero_grads(&r.pt);
    vtape_forward(&r.t, B);
    vtape_backward(&r.t, w, B);
    float *gx = malloc(sizeof(float) * r.nin);
    memcpy(gx, r.t.bufs[r.in].g, sizeof(float) * r.nin);
    float *gp = malloc(sizeof(float) * r.pt.total);
    memcpy(gp, r.pt.grads, sizeof(float) * r.pt.total);
    snprintf(what, sizeof what, "%s dinput", tag);
    fd_check(&r, what, r.t.bufs[r.in].v, gx, r.nin, w, 24, 1);
    for (int i = 0; i < r.pt.count; i++) {
        snprintf(what, sizeof what, "%s d%s", tag, r.pt.info[i].name);
        fd_check(&r, what, param_data(&r.pt, i), gp + r.pt.info[i].offset, r.pt.info[i].numel,
                 w, 6, 100 + i);
    }
    free(w); free(gx); free(gp);
    rig_free(&r);
}

Test(vae_blocks, resnet_block_with_shortcut, .init = one_thread) { block_case("res", b_res, 2, 32, 5, 4); }
Test(vae_blocks, resnet_block_same_channels, .init = one_thread) { block_case("res_same", b_res, 2, 64, 4, 4); }
Test(vae_blocks, attn_block, .init = one_thread) { block_case("attn", b_attn, 2, 64, 4, 3); }
Test(vae_blocks, downsample, .init = one_thread) { block_case("down", b_down, 2, 32, 7, 6); }
Test(vae_blocks, upsample, .init = one_thread) { block_case("up", b_up, 2, 32, 3, 4); }

Test(vae_blocks, param_names_are_compvis, .init = one_thread) {
    param_table pt;
    param_table_init(&pt);
    vtape t;
    vtape_init(&t, &pt);
    int x = vtape_buffer(&t, 32, 4, 4);
    x = vtape_resnet_block(&t, "encoder.down.0.block.0", x, 64, 32);
    vtape_attn_block(&t, "encoder.mid.attn_1", x, 32);
    const char *want[] = {"encoder.down.0.block.0.norm1.weight", "encoder.down.0.block.0.norm1.bias",
                          "encoder.down.0.block.0.conv1.weight", "encoder.down.0.block.0.conv1.bias",
                          "encoder.down.0.block.0.norm2.weight", "encoder.down.0.block.0.norm2.bias",
                          "encoder.down.0.block.0.conv2.weight", "encoder.down.0.block.0.conv2.bias",
                          "encoder.down.0.block.0.nin_shortcut.weight",
                          "encoder.down.0.block.0.nin_shortcut.bias",
                          "encoder.mid.attn_1.norm.weight", "encoder.mid.attn_1.norm.bias",
                          "encoder.mid.attn_1.q.weight", "encoder.mid.attn_1.q.bias",
                          "encoder.mid.attn_1.k.weight", "encoder.mid.attn_1.k.bias",
                          "encoder.mid.attn_1.v.weight", "encoder.mid.attn_1.v.bias",
                          "encoder.mid.attn_1.proj_out.weight", "encoder.mid.attn_1.proj_out.bias"};
    cr_assert_eq(pt.count, 20);
    for (int i = 0; i < 20; i++) cr_assert_str_eq(pt.info[i].name, want[i]);
    cr_assert_eq(pt.info[2].shape[0], 64);
    cr_assert_eq(pt.info[2].shape[1], 32);
    cr_assert_eq(pt.info[2].shape[2], 3);
    vtape_free(&t);
    param_table_free(&pt);
}
