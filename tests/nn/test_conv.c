// test_conv.c: nn/conv.h against tests/ref/gen_dense_conv.py (forward vs
// numpy float64; backward data, filter and bias vs float64 central finite
// differences; backward accumulates), configuration validation, and 1-vs-2
// OpenMP thread bit identity. Shapes the Winograd kernels take
// (nn/cpu/conv_winograd.c) are checked on both paths (Winograd, and forced
// off: the direct kernels).
#include <cblas.h>
#include <math.h>
#include <omp.h>

#include "core/base.h"
#include "nn/conv.h"
#include "nn/cpu/conv_winograd.h"
#include "tests/nn/dense_check.h"

#define G "dense_conv"

static conv2d_cfg cfg_of(const double *r) {
    conv2d_cfg c = {(int)r[0], (int)r[1], (int)r[2], (int)r[3], (int)r[4], (int)r[5],
                    (int)r[6], (int)r[7], (int)r[8], (int)r[9], (int)r[10], (int)r[11]};
    return c;
}

static void numpy_cases(int wino_off) {
    conv_wino_force_off(wino_off);
    int64_t nc, nwino = 0;
    double *cases = ref_f64(G, "cases", &nc);
    for (int ci = 0; ci < nc / 12; ci++) {
        conv2d_cfg c = cfg_of(cases + 12 * ci);
        nwino += conv_wino_applies(&c);
        cr_assert_eq(conv2d_validate(&c), 0);
        int OH = conv2d_out_h(&c), OW = conv2d_out_w(&c);
        int64_t ni = (int64_t)c.B * c.C * c.H * c.W, nw = (int64_t)c.OC * c.C * c.KH * c.KW;
        int64_t no = (int64_t)c.B * c.OC * OH * OW, n_out_ref;
        float *inp = case_f32(G, ci, "inp", NULL), *w = case_f32(G, ci, "weight", NULL);
        float *b = case_f32(G, ci, "bias", NULL), *R = case_f32(G, ci, "R", NULL);
        float *g0i = case_f32(G, ci, "g0_inp", NULL), *g0w = case_f32(G, ci, "g0_weight", NULL);
        float *g0b = case_f32(G, ci, "g0_bias", NULL);
        double *out_ref = case_f64(G, ci, "out", &n_out_ref);
        double *di_ref = case_f64(G, ci, "dinp", NULL), *dw_ref = case_f64(G, ci, "dweight", NULL);
        double *db_ref = case_f64(G, ci, "dbias", NULL);
        cr_assert_eq(n_out_ref, no, "output size: C %lld, numpy %lld", (long long)no,
                     (long long)n_out_ref);
        float *scratch = malloc(sizeof(float) * conv2d_scratch_floats(&c));
        float *out = malloc(sizeof(float) * no);
        char tag[96], what[128];
        snprintf(tag, sizeof tag, "B%d C%d %dx%d OC%d k%dx%d s%d p%d%d%d%d%s", c.B, c.C, c.H,
                 c.W, c.OC, c.KH, c.KW, c.stride, c.pad_top, c.pad_bottom, c.pad_left,
                 c.pad_right, conv_wino_applies(&c) ? " winograd" : "");
        conv2d_forward(out, inp, w, b, scratch, &c);
        snprintf(what, sizeof what, "conv fwd %s", tag);
        check_vs(what, out, out_ref, no, 1e-5, 1e-5);

        float *di = copy_f32(g0i, ni), *dw = copy_f32(g0w, nw), *db = copy_f32(g0b, c.OC);
        conv2d_backward(di, dw, db, R, inp, w, scratch, &c);
        // dweight and dbias reduce over B*OH*OW terms (up to 2240): long
        // reduction tolerance 1e-4 (measured max abs 4.3e-5 on dweight, B35).
        snprintf(what, sizeof what, "conv dinp %s", tag);
        check_grad(what, di, g0i, di_ref, ni, 1e-5, 1e-5);
        snprintf(what, sizeof what, "conv dweight %s", tag);
        check_grad(what, dw, g0w, dw_ref, nw, 1e-4, 1e-4);
        snprintf(what, sizeof what, "conv dbias %s", tag);
        check_grad(what, db, g0b, db_ref, c.OC, 1e-4, 1e-4);

        // Data-only and filter-only backward give the same bits as the joint call.
        float *di2 = copy_f32(g0i, ni), *dw2 = copy_f32(g0w, nw);
        conv2d_backward(di2, NULL, NULL, R, inp, w, scratch, &c);
        conv2d_backward(NULL, dw2, NULL, R, inp, w, scratch, &c);
        expect_same_bits("conv dinp alone", di2, di, ni);
        expect_same_bits("conv dweight alone", dw2, dw, nw);
        free(di2); free(dw2);
        free(inp); free(w); free(b); free(R); free(g0i); free(g0w); free(g0b);
        free(out_ref); free(di_ref); free(dw_ref); free(db_ref);
        free(scratch); free(out); free(di); free(dw); free(db);
    }
    free(cases);
    conv_wino_force_off(0);
    // the 3 Winograd cases take that path unless forced off (on AVX-512 CPUs)
    if (!wino_off && __builtin_cpu_supports("avx512f"))
        cr_expect_eq(nwino, 3, "cases on the Winograd path: %lld", (long long)nwino);
    if (wino_off) cr_expect_eq(nwino, 0);
}

Test(conv2d, forward_backward_vs_numpy) { numpy_cases(0); }

Test(conv2d, forward_backward_vs_numpy_winograd_off) { numpy_cases(1); }

Test(conv2d, validate_rejects_bad_configs) {
    conv2d_cfg ok = conv2d_make(1, 3, 8, 8, 4, 3, 1, 1);
    cr_expect_eq(conv2d_validate(&ok), 0);
    cr_expect_eq(conv2d_out_h(&ok), 8);
    conv2d_cfg c = ok; c.stride = 0;
    cr_expect_eq(conv2d_validate(&c), VEL_EINVAL, "stride 0");
    c = ok; c.pad_left = -1;
    cr_expect_eq(conv2d_validate(&c), VEL_EINVAL, "negative pad");
    c = conv2d_make(1, 3, 2, 2, 4, 4, 1, 0);
    cr_expect_eq(conv2d_validate(&c), VEL_EINVAL, "kernel larger than padded input");
    c = ok; c.B = 0;
    cr_expect_eq(conv2d_validate(&c), VEL_EINVAL, "empty batch");
    // VAE downsample output size: 8x8 padded to 9x9, k3 s2 -> 4x4
    conv2d_cfg d = {2, 4, 8, 8, 4, 3, 3, 2, 0, 1, 0, 1};
    cr_expect_eq(conv2d_out_h(&d), 4);
    cr_expect_eq(conv2d_out_w(&d), 4);
}

// OpenBLAS pinned to one thread (its own results differ across its thread
// counts at rounding level, see test_linear.c); the OpenMP parts (im2col,
// col2im, scatter, bias) must then give the same bits for 1 and 2 threads.
// fwd_only: the forward alone (its backward may take the GEMM path).
static void conv_threads_case(conv2d_cfg c, int fwd_only) {
    int OH = conv2d_out_h(&c), OW = conv2d_out_w(&c);
    int64_t ni = (int64_t)c.B * c.C * c.H * c.W, nw = (int64_t)c.OC * c.C * c.KH * c.KW;
    int64_t no = (int64_t)c.B * c.OC * OH * OW;
    float *inp = malloc(sizeof(float) * ni), *w = malloc(sizeof(float) * nw);
    float *b = malloc(sizeof(float) * c.OC), *dout = malloc(sizeof(float) * no);
    fill_normal(inp, ni, 11, 1.0f);
    fill_normal(w, nw, 12, 0.1f);
    fill_normal(b, c.OC, 13, 1.0f);
    fill_normal(dout, no, 14, 1.0f);
    float *scratch = malloc(sizeof(float) * conv2d_scratch_floats(&c));
    float *res[2][4];
    openblas_set_num_threads(1);
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t + 1);
        res[t][0] = calloc(no, sizeof(float));
        res[t][1] = calloc(ni, sizeof(float));
        res[t][2] = calloc(nw, sizeof(float));
        res[t][3] = calloc(c.OC, sizeof(float));
        conv2d_forward(res[t][0], inp, w, b, scratch, &c);
        if (!fwd_only) conv2d_backward(res[t][1], res[t][2], res[t][3], dout, inp, w, scratch, &c);
    }
    expect_same_bits("conv out", res[0][0], res[1][0], no);
    expect_same_bits("conv dinp", res[0][1], res[1][1], ni);
    expect_same_bits("conv dweight", res[0][2], res[1][2], nw);
    expect_same_bits("conv dbias", res[0][3], res[1][3], c.OC);
    for (int t = 0; t < 2; t++) for (int k = 0; k < 4; k++) free(res[t][k]);
    free(inp); free(w); free(b); free(dout); free(scratch);
}

Test(conv2d, one_vs_two_threads_identical) {
    conv_threads_case(conv2d_make(4, 16, 16, 16, 24, 3, 1, 1), 0);  // grouped images
    conv2d_cfg d = {3, 8, 64, 64, 8, 3, 3, 2, 0, 1, 0, 1};          // single-image path
    conv_threads_case(d, 0);                                        // (direct s2 forward)
    conv2d_cfg e = {4, 16, 17, 17, 24, 1, 7, 1, 0, 0, 3, 3};        // direct 1x7 forward,
    conv_threads_case(e, 0);                                        // GEMMs of one block
    conv_threads_case(conv2d_make(8, 16, 8, 8, 24, 3, 1, 1), 0);    // 8 merged 8x8 images
    // Winograd forward and data gradient: several tasks (2 tile rows per
    // vector at 16x16; odd sizes, 17/19 channels)
    conv_threads_case(conv2d_make(8, 32, 16, 16, 40, 3, 1, 1), 0);
    conv_threads_case(conv2d_make(3, 17, 9, 37, 19, 3, 1, 1), 0);
}

// The direct forward of other kernels and strides (conv_direct.c): each
// output summed by one task in a shape-only order.
Test(conv2d, direct_forward_one_vs_two_threads_identical) {
    conv2d_cfg cs[] = {
        {4, 16, 17, 17, 24, 1, 7, 1, 0, 0, 3, 3},     // 1x7 (Inception C)
        {4, 16, 17, 17, 24, 7, 1, 1, 3, 3, 0, 0},     // 7x1
        {2, 24, 35, 35, 20, 5, 5, 1, 2, 2, 2, 2},     // 5x5 (Inception A)
        {2, 40, 35, 35, 24, 3, 3, 2, 0, 0, 0, 0},     // 3x3 s2 (Inception B)
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) conv_threads_case(cs[i], 1);
}

// The direct 3x3 kernels (nn/cpu/conv_direct.c, AVX-512 CPUs) take large images
// in rounds within a scratch budget; images are independent and the weight
// gradient is accumulated round after round, so with one image per round (this
// shape: 256 output channels at 128x128) a batch of 2 must give the same bits
// as two calls of 1 image each. C 1 makes the data gradient's output tiles 1
// channel wide. (The im2col + GEMM plan used elsewhere adds per-thread-slot
// weight-gradient partials instead, so the claim is the direct kernels'.)
Test(conv2d, batch_equals_images_one_by_one) {
    if (!__builtin_cpu_supports("avx512f")) {
        cr_log_warn("no AVX-512F: the direct 3x3 kernels are not used on this CPU");
        return;
    }
    conv2d_cfg c2 = conv2d_make(2, 1, 128, 128, 256, 3, 1, 1), c1 = c2;
    c1.B = 1;
    int64_t ni = (int64_t)c2.C * c2.H * c2.W, nw = (int64_t)c2.OC * c2.C * 9;
    int64_t no = (int64_t)c2.OC * c2.H * c2.W;
    float *inp = malloc(sizeof(float) * 2 * ni), *w = malloc(sizeof(float) * nw);
    float *b = malloc(sizeof(float) * c2.OC), *dout = malloc(sizeof(float) * 2 * no);
    fill_normal(inp, 2 * ni, 21, 1.0f);
    fill_normal(w, nw, 22, 0.1f);
    fill_normal(b, c2.OC, 23, 1.0f);
    fill_normal(dout, 2 * no, 24, 1.0f);
    size_t ns = conv2d_scratch_floats(&c2);
    float *scratch = malloc(sizeof(float) * ns);
    float *out2 = calloc(2 * no, sizeof(float)), *di2 = calloc(2 * ni, sizeof(float));
    float *dw2 = calloc(nw, sizeof(float)), *out1 = calloc(2 * no, sizeof(float));
    float *di1 = calloc(2 * ni, sizeof(float)), *dw1 = calloc(nw, sizeof(float));
    conv2d_forward(out2, inp, w, b, scratch, &c2);
    conv2d_backward(di2, dw2, NULL, dout, inp, w, scratch, &c2);
    for (int i = 0; i < 2; i++) {
        conv2d_forward(out1 + i * no, inp + i * ni, w, b, scratch, &c1);
        conv2d_backward(di1 + i * ni, dw1, NULL, dout + i * no, inp + i * ni, w, scratch, &c1);
    }
    expect_same_bits("conv out, batch vs one by one", out2, out1, 2 * no);
    expect_same_bits("conv dinp, batch vs one by one", di2, di1, 2 * ni);
    expect_same_bits("conv dweight, batch vs one by one", dw2, dw1, nw);
    free(inp); free(w); free(b); free(dout); free(scratch);
    free(out2); free(di2); free(dw2); free(out1); free(di1); free(dw1);
}

// Narrow images are merged side by side into one plane (conv_direct.c), the
// zero columns between them standing for each image's padding. An output's
// sum then runs over the same products in the same order as for the image
// alone, so the forward and the data gradient of a merged batch equal the
// one-image calls bit for bit (the weight gradient sums in another order:
// checked to 1e-5). Symmetric and asymmetric pads, 6 images of 7 columns
// (merged in one group) and 5 x 1x7 (Inception C's shape, forward only).
static void merged_case(conv2d_cfg cb, int fwd_only) {
    conv2d_cfg c1 = cb;
    c1.B = 1;
    const int B = cb.B, OH = conv2d_out_h(&cb), OW = conv2d_out_w(&cb);
    int64_t ni = (int64_t)cb.C * cb.H * cb.W, nw = (int64_t)cb.OC * cb.C * cb.KH * cb.KW;
    int64_t no = (int64_t)cb.OC * OH * OW;
    float *inp = malloc(sizeof(float) * B * ni), *w = malloc(sizeof(float) * nw);
    float *b = malloc(sizeof(float) * cb.OC), *dout = malloc(sizeof(float) * B * no);
    fill_normal(inp, B * ni, 31, 1.0f);
    fill_normal(w, nw, 32, 0.1f);
    fill_normal(b, cb.OC, 33, 1.0f);
    fill_normal(dout, B * no, 34, 1.0f);
    float *scratch = malloc(sizeof(float) * conv2d_scratch_floats(&cb));
    float *outB = calloc(B * no, sizeof(float)), *diB = calloc(B * ni, sizeof(float));
    float *dwB = calloc(nw, sizeof(float)), *out1 = calloc(B * no, sizeof(float));
    float *di1 = calloc(B * ni, sizeof(float)), *dw1 = calloc(nw, sizeof(float));
    conv2d_forward(outB, inp, w, b, scratch, &cb);
    if (!fwd_only) conv2d_backward(diB, dwB, NULL, dout, inp, w, scratch, &cb);
    for (int i = 0; i < B; i++) {
        conv2d_forward(out1 + i * no, inp + i * ni, w, b, scratch, &c1);
        if (!fwd_only)
            conv2d_backward(di1 + i * ni, dw1, NULL, dout + i * no, inp + i * ni, w, scratch, &c1);
    }
    expect_same_bits("conv out, merged batch vs one by one", outB, out1, B * no);
    expect_same_bits("conv dinp, merged batch vs one by one", diB, di1, B * ni);
    expect_close_f32("conv dweight, merged batch vs one by one", dwB, dw1, nw, 1e-5, 1e-5);
    free(inp); free(w); free(b); free(dout); free(scratch);
    free(outB); free(diB); free(dwB); free(out1); free(di1); free(dw1);
}

Test(conv2d, merged_batch_equals_images_one_by_one) {
    if (!__builtin_cpu_supports("avx512f")) {
        cr_log_warn("no AVX-512F: the direct kernels are not used on this CPU");
        return;
    }
    merged_case(conv2d_make(8, 5, 8, 8, 11, 3, 1, 1), 0);
    merged_case((conv2d_cfg){6, 3, 5, 7, 9, 3, 3, 1, 1, 0, 2, 0}, 0);
    merged_case((conv2d_cfg){5, 4, 17, 17, 10, 1, 7, 1, 0, 0, 3, 3}, 1);
    // Winograd: each 2x2 output block from its own input block, so a batch
    // equals its images one by one as well (odd size: partial tiles)
    merged_case(conv2d_make(5, 16, 9, 17, 17, 3, 1, 1), 0);
}

// Against float64 sums at every 7th output, forward and data gradient, on
// both paths: 512 -> 520 channels shrink a Winograd task to 16 tiles, so a
// tile row of 20 tiles is cut into pieces of 16 and 4 (each output sums
// 4608 products in float32, outputs ~1; measured max abs errors: Winograd
// 2.8e-6 (out) / 4.0e-6 (dinp), direct 9.3e-6 / 8.0e-6; bound 2e-5); 1x1
// images (48 -> 50 channels: one tile, 3 of its 4 outputs dropped); 6x7
// images (4 tiles a row: two tile rows squeezed into 8 lanes, and a single
// last row).
static double ref_out(const float *x, const float *w, const float *b, const conv2d_cfg *c,
                      int o, int h, int wc) {
    double acc = b[o];
    for (int ch = 0; ch < c->C; ch++)
        for (int kh = 0; kh < 3; kh++)
            for (int kw = 0; kw < 3; kw++) {
                int ih = h + kh - 1, iw = wc + kw - 1;
                if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W) continue;
                acc += (double)w[((size_t)o * c->C + ch) * 9 + kh * 3 + kw] *
                       x[((size_t)ch * c->H + ih) * c->W + iw];
            }
    return acc;
}

static double ref_dinp(const float *d, const float *w, const conv2d_cfg *c, int ch, int h,
                       int wc) {
    double acc = 0.0;
    for (int o = 0; o < c->OC; o++)
        for (int kh = 0; kh < 3; kh++)
            for (int kw = 0; kw < 3; kw++) {
                int oh = h - kh + 1, ow = wc - kw + 1;
                if (oh < 0 || oh >= c->H || ow < 0 || ow >= c->W) continue;
                acc += (double)w[((size_t)o * c->C + ch) * 9 + kh * 3 + kw] *
                       d[((size_t)o * c->H + oh) * c->W + ow];
            }
    return acc;
}

static void float64_case(conv2d_cfg c, float wstd) {
    cr_assert(conv_wino_applies(&c));
    int64_t ni = (int64_t)c.B * c.C * c.H * c.W, nw = (int64_t)c.OC * c.C * 9;
    int64_t no = (int64_t)c.B * c.OC * c.H * c.W;
    float *inp = malloc(sizeof(float) * ni), *w = malloc(sizeof(float) * nw);
    float *dout = malloc(sizeof(float) * no), *b = malloc(sizeof(float) * c.OC);
    fill_normal(inp, ni, 41, 1.0f);
    fill_normal(w, nw, 42, wstd);   // ~1/sqrt(9*C): outputs of scale ~1
    fill_normal(dout, no, 43, 1.0f);
    fill_normal(b, c.OC, 44, 1.0f);
    float *scratch = malloc(sizeof(float) * conv2d_scratch_floats(&c));
    float *out = malloc(sizeof(float) * no), *di = malloc(sizeof(float) * ni);
    const int HW = c.H * c.W;
    const size_t ii = (size_t)c.C * HW, io = (size_t)c.OC * HW;   // one image
    for (int p = 0; p < 2; p++) {
        conv_wino_force_off(p);
        memset(di, 0, sizeof(float) * ni);
        conv2d_forward(out, inp, w, b, scratch, &c);
        conv2d_backward(di, NULL, NULL, dout, inp, w, scratch, &c);
        double eo = 0.0, ed = 0.0;
        for (int64_t i = 0; i < no; i += 7) {
            int64_t im = i / io, r = i % io;
            eo = fmax(eo, fabs(out[i] - ref_out(inp + im * ii, w, b, &c, (int)(r / HW),
                                                (int)(r % HW) / c.W, (int)(r % c.W))));
        }
        for (int64_t i = 0; i < ni; i += 7) {
            int64_t im = i / ii, r = i % ii;
            ed = fmax(ed, fabs(di[i] - ref_dinp(dout + im * io, w, &c, (int)(r / HW),
                                                (int)(r % HW) / c.W, (int)(r % c.W))));
        }
        cr_log_info("C%d %dx%d %s: max abs error out %.3g, dinp %.3g", c.C, c.H, c.W,
                    p ? "direct" : "winograd", eo, ed);
        cr_expect_lt(eo, 2e-5, "%s out: max abs error %.3g", p ? "direct" : "winograd", eo);
        cr_expect_lt(ed, 2e-5, "%s dinp: max abs error %.3g", p ? "direct" : "winograd", ed);
    }
    conv_wino_force_off(0);
    free(inp); free(w); free(dout); free(b); free(scratch); free(out); free(di);
}

Test(conv2d, winograd_vs_float64) {
    if (!__builtin_cpu_supports("avx512f")) {
        cr_log_warn("no AVX-512F: the Winograd kernels are not used on this CPU");
        return;
    }
    float64_case(conv2d_make(1, 512, 5, 40, 520, 3, 1, 1), 1.0f / 68.0f);
    float64_case(conv2d_make(3, 48, 1, 1, 50, 3, 1, 1), 1.0f / 21.0f);
    float64_case(conv2d_make(2, 48, 6, 7, 50, 3, 1, 1), 1.0f / 21.0f);
}

// conv2d_backward_set writes dinp: over a garbage-filled dinp it gives the
// values of conv2d_backward into zeros (equal as floats: -0 may stand for
// +0), and the same dweight / dbias bits (those still accumulate). Paths:
// Winograd, direct 3x3 (few channels), 3x3 stride 2 (im2col data gradient),
// 1x1 (GEMM straight into dinp), 5x5 (im2col), and Winograd forced off.
static void set_case(conv2d_cfg c) {
    int OH = conv2d_out_h(&c), OW = conv2d_out_w(&c);
    int64_t ni = (int64_t)c.B * c.C * c.H * c.W, nw = (int64_t)c.OC * c.C * c.KH * c.KW;
    int64_t no = (int64_t)c.B * c.OC * OH * OW;
    float *inp = malloc(sizeof(float) * ni), *w = malloc(sizeof(float) * nw);
    float *dout = malloc(sizeof(float) * no);
    float *scratch = malloc(sizeof(float) * conv2d_scratch_floats(&c));
    fill_normal(inp, ni, 51, 1.0f);
    fill_normal(w, nw, 52, 0.1f);
    fill_normal(dout, no, 53, 1.0f);
    float *di_acc = calloc(ni, sizeof(float)), *di_set = malloc(sizeof(float) * ni);
    fill_normal(di_set, ni, 54, 1000.0f);
    float *dw[2], *db[2];
    for (int k = 0; k < 2; k++) {
        dw[k] = malloc(sizeof(float) * nw);
        db[k] = malloc(sizeof(float) * c.OC);
        fill_normal(dw[k], nw, 55, 1.0f);
        fill_normal(db[k], c.OC, 56, 1.0f);
    }
    conv2d_backward(di_acc, dw[0], db[0], dout, inp, w, scratch, &c);
    conv2d_backward_set(di_set, dw[1], db[1], dout, inp, w, scratch, &c);
    int64_t bad = 0;
    for (int64_t i = 0; i < ni; i++) bad += di_set[i] != di_acc[i];
    cr_expect_eq(bad, 0, "B%d C%d %dx%d OC%d k%d s%d: %lld dinp values differ", c.B, c.C, c.H,
                 c.W, c.OC, c.KH, c.stride, (long long)bad);
    expect_same_bits("conv set: dweight", dw[1], dw[0], nw);
    expect_same_bits("conv set: dbias", db[1], db[0], c.OC);
    free(inp); free(w); free(dout); free(scratch); free(di_acc); free(di_set);
    for (int k = 0; k < 2; k++) { free(dw[k]); free(db[k]); }
}

Test(conv2d, backward_set_equals_accumulate_into_zero) {
    conv2d_cfg cs[] = {
        conv2d_make(3, 16, 9, 17, 20, 3, 1, 1),      // Winograd (AVX-512)
        conv2d_make(2, 3, 7, 6, 5, 3, 1, 1),         // direct 3x3
        {2, 5, 8, 8, 6, 3, 3, 2, 0, 1, 0, 1},        // 3x3 s2: im2col data gradient
        conv2d_make(2, 6, 5, 5, 7, 1, 1, 0),         // 1x1: GEMM into dinp
        conv2d_make(1, 3, 9, 9, 4, 5, 1, 2),         // 5x5: im2col
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) set_case(cs[i]);
    conv_wino_force_off(1);
    set_case(cs[0]);   // the same shape on the direct kernels
    conv_wino_force_off(0);
}
