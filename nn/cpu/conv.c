// conv.c: CPU conv2d (see nn/conv.h): im2col + cblas_sgemm.
//
// Small feature maps (8x8 = 64 columns) make thin GEMMs that OpenBLAS runs
// far below peak, so images are processed in groups of G, with G chosen so a
// group has at least CONV_COLS_TARGET output columns: col is (K, G*OHW) with
// K = C*KH*KW, and the GEMM output (OC, G*OHW) is scattered back to NCHW.
// With G == 1 the GEMM writes straight into out / dinp and a 1x1, stride-1,
// unpadded conv skips im2col altogether (the input already is col).
//
// Threads: only the GEMMs are parallel (OpenBLAS's own pthread pool). The
// im2col / col2im / scatter / bias loops are plain serial loops on purpose:
// after an OpenMP parallel region libgomp's idle workers spin (default
// OMP_WAIT_POLICY), and on a 2-core machine they then compete with the
// OpenBLAS threads of the very next sgemm; bench/bench_nn_dense measured the
// conv at 0.18-0.41 of bare sgemm with OpenMP copies versus ~0.7 without.
// Serial loops also make the result independent of the OpenMP thread count.
#include "nn/cpu/ops.h"

#include <cblas.h>
#include <string.h>

#include "core/base.h"

// Columns per GEMM worth reaching before batching images (measured with
// bench/bench_nn_dense: below ~1k columns sgemm throughput drops sharply).
#define CONV_COLS_TARGET 2048

static int group_size(const conv2d_cfg *c, int ohw) {
    int g = (CONV_COLS_TARGET + ohw - 1) / ohw;
    return g < 1 ? 1 : (g > c->B ? c->B : g);
}

static int is_pointwise(const conv2d_cfg *c) {
    return c->KH == 1 && c->KW == 1 && c->stride == 1 && c->pad_top == 0 &&
           c->pad_bottom == 0 && c->pad_left == 0 && c->pad_right == 0;
}

size_t conv2d_scratch_floats_cpu(const conv2d_cfg *c) {
    CHECK(conv2d_validate(c) == 0);
    size_t ohw = (size_t)conv2d_out_h(c) * conv2d_out_w(c);
    size_t K = (size_t)c->C * c->KH * c->KW;
    int g = group_size(c, (int)ohw);
    size_t cols = (size_t)g * ohw;
    // col (K, cols) plus, when images are grouped, the GEMM output / gathered
    // dout (OC, cols).
    return K * cols + (g > 1 ? (size_t)c->OC * cols : 0);
}

// Output columns ow in [lo, hi) read input column ow*s + iw0 inside [0, W).
static void valid_range(int iw0, int s, int W, int OW, int *lo, int *hi) {
    int l = iw0 >= 0 ? 0 : (-iw0 + s - 1) / s;
    int h = (W - 1 - iw0) >= 0 ? (W - 1 - iw0) / s + 1 : 0;
    if (h > OW) h = OW;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

// col (K, G*OHW) from images b0..b0+G-1 of inp.
static void im2col(float *col, const float *inp, int b0, int G, const conv2d_cfg *c,
                   int OH, int OW) {
    const int KH = c->KH, KW = c->KW, H = c->H, W = c->W, s = c->stride;
    const int K = c->C * KH * KW, OHW = OH * OW;
    const size_t ld = (size_t)G * OHW;
    for (int r = 0; r < K; r++) {
        for (int g = 0; g < G; g++) {
            int ch = r / (KH * KW), kh = (r / KW) % KH, kw = r % KW;
            const float *src = inp + ((size_t)(b0 + g) * c->C + ch) * H * W;
            float *dst = col + (size_t)r * ld + (size_t)g * OHW;
            // Valid output columns [lo, hi): iw = ow*s + iw0 in [0, W).
            const int iw0 = -c->pad_left + kw;
            int lo, hi;
            valid_range(iw0, s, W, OW, &lo, &hi);
            for (int oh = 0; oh < OH; oh++) {
                int ih = oh * s - c->pad_top + kh;
                float *d = dst + (size_t)oh * OW;
                if (ih < 0 || ih >= H) { memset(d, 0, sizeof(float) * OW); continue; }
                const float *srow = src + (size_t)ih * W;
                for (int ow = 0; ow < lo; ow++) d[ow] = 0.0f;
                if (s == 1) {
                    if (hi > lo) memcpy(d + lo, srow + lo + iw0, sizeof(float) * (hi - lo));
                } else {
                    #pragma omp simd
                    for (int ow = lo; ow < hi; ow++) d[ow] = srow[ow * s + iw0];
                }
                for (int ow = hi; ow < OW; ow++) d[ow] = 0.0f;
            }
        }
    }
}

// dinp images b0..b0+G-1 += col2im(dcol (K, G*OHW)), kernel taps in a
// fixed order.
static void col2im_add(float *restrict dinp, const float *restrict dcol, int b0, int G, const conv2d_cfg *c,
                       int OH, int OW) {
    const int KH = c->KH, KW = c->KW, H = c->H, W = c->W, s = c->stride, C = c->C;
    const int OHW = OH * OW;
    const size_t ld = (size_t)G * OHW;
    for (int g = 0; g < G; g++) {
        for (int ch = 0; ch < C; ch++) {
            float *dst = dinp + ((size_t)(b0 + g) * C + ch) * H * W;
            for (int kh = 0; kh < KH; kh++) {
                for (int kw = 0; kw < KW; kw++) {
                    int r = (ch * KH + kh) * KW + kw;
                    const float *src = dcol + (size_t)r * ld + (size_t)g * OHW;
                    int iw0 = -c->pad_left + kw, lo, hi;
                    valid_range(iw0, s, W, OW, &lo, &hi);
                    for (int oh = 0; oh < OH; oh++) {
                        int ih = oh * s - c->pad_top + kh;
                        if (ih < 0 || ih >= H) continue;
                        float *restrict drow = dst + (size_t)ih * W;
                        const float *restrict srow = src + (size_t)oh * OW;
                        if (s == 1) {
                            // unit stride: vectorised (-O2 alone does not; omp simd
                            // starts no threads)
                            #pragma omp simd
                            for (int ow = lo; ow < hi; ow++) drow[ow + iw0] += srow[ow];
                        } else {   // distinct targets per ow: safe to vectorise
                            #pragma omp simd
                            for (int ow = lo; ow < hi; ow++) drow[ow * s + iw0] += srow[ow];
                        }
                    }
                }
            }
        }
    }
}

// Sum of n floats with 8 interleaved partial sums (a fixed order, so
// deterministic; one serial accumulator would be bound by add latency).
static float plane_sum(const float *x, int n) {
    float p[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) p[k] += x[i + k];
    float s = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
    for (; i < n; i++) s += x[i];
    return s;
}

void conv2d_forward_cpu(float *out, const float *inp, const float *weight,
                    const float *bias, float *scratch, const conv2d_cfg *c) {
    // out (B,OC,OH,OW), inp (B,C,H,W), weight (OC,C,KH,KW), bias (OC) or NULL,
    // scratch (conv2d_scratch_floats(c))
    CHECK(conv2d_validate(c) == 0);
    const int OH = conv2d_out_h(c), OW = conv2d_out_w(c), OHW = OH * OW;
    const int K = c->C * c->KH * c->KW, OC = c->OC, B = c->B;
    const int G = group_size(c, OHW);
    float *col = scratch;
    float *ybuf = scratch + (size_t)K * G * OHW;   // used only when G > 1
    for (int b0 = 0; b0 < B; b0 += G) {
        int g = B - b0 < G ? B - b0 : G;
        int cols = g * OHW;
        const float *cm = col;
        if (G == 1 && is_pointwise(c)) cm = inp + (size_t)b0 * c->C * OHW;
        else im2col(col, inp, b0, g, c, OH, OW);
        if (G == 1) {
            float *o = out + (size_t)b0 * OC * OHW;
            float beta = 0.0f;
            if (bias) {
                for (int oc = 0; oc < OC; oc++)
                    for (int i = 0; i < OHW; i++) o[(size_t)oc * OHW + i] = bias[oc];
                beta = 1.0f;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, OHW, K,
                        1.0f, weight, K, cm, OHW, beta, o, OHW);
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, cols, K,
                        1.0f, weight, K, cm, cols, 0.0f, ybuf, cols);
                    for (int i = 0; i < g; i++) {
                for (int oc = 0; oc < OC; oc++) {
                    const float *src = ybuf + (size_t)oc * cols + (size_t)i * OHW;
                    float *dst = out + ((size_t)(b0 + i) * OC + oc) * OHW;
                    float bv = bias ? bias[oc] : 0.0f;
                    for (int k = 0; k < OHW; k++) dst[k] = src[k] + bv;
                }
            }
        }
    }
}

void conv2d_backward_cpu(float *dinp, float *dweight, float *dbias,
                     const float *dout, const float *inp, const float *weight,
                     float *scratch, const conv2d_cfg *c) {
    // dinp (B,C,H,W), dweight (OC,C,KH,KW), dbias (OC), dout (B,OC,OH,OW),
    // inp (B,C,H,W), weight (OC,C,KH,KW), scratch (conv2d_scratch_floats(c))
    CHECK(conv2d_validate(c) == 0);
    const int OH = conv2d_out_h(c), OW = conv2d_out_w(c), OHW = OH * OW;
    const int K = c->C * c->KH * c->KW, OC = c->OC, B = c->B;
    const int G = group_size(c, OHW);
    const int pw = is_pointwise(c);
    if (dbias) {
        // Per channel, images then pixels in order; double because B*OHW can
        // be ~10^5 terms.
        for (int oc = 0; oc < OC; oc++) {
            double acc = 0.0;
            for (int b = 0; b < B; b++)
                acc += plane_sum(dout + ((size_t)b * OC + oc) * OHW, OHW);
            dbias[oc] += (float)acc;
        }
    }
    if (!dinp && !dweight) return;
    float *col = scratch;
    float *dybuf = scratch + (size_t)K * G * OHW;
    for (int b0 = 0; b0 < B; b0 += G) {
        int g = B - b0 < G ? B - b0 : G;
        int cols = g * OHW;
        const float *dy;
        if (G == 1) {
            dy = dout + (size_t)b0 * OC * OHW;
        } else {
                    for (int i = 0; i < g; i++)
                for (int oc = 0; oc < OC; oc++)
                    memcpy(dybuf + (size_t)oc * cols + (size_t)i * OHW,
                           dout + ((size_t)(b0 + i) * OC + oc) * OHW, sizeof(float) * OHW);
            dy = dybuf;
        }
        if (dweight) {
            const float *cm = col;
            if (G == 1 && pw) cm = inp + (size_t)b0 * c->C * OHW;
            else im2col(col, inp, b0, g, c, OH, OW);
            // dW (OC,K) += dy (OC,cols) @ col^T (cols,K)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, K, cols,
                        1.0f, dy, cols, cm, cols, 1.0f, dweight, K);
        }
        if (dinp) {
            if (G == 1 && pw) {
                // dinp_b (C, OHW) += W^T (C, OC) @ dy (OC, OHW) directly.
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, OHW, OC,
                            1.0f, weight, K, dy, OHW, 1.0f,
                            dinp + (size_t)b0 * c->C * OHW, OHW);
            } else {
                // dcol (K, cols) = W^T @ dy, reusing the col buffer.
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, cols, OC,
                            1.0f, weight, K, dy, cols, 0.0f, col, cols);
                col2im_add(dinp, col, b0, g, c, OH, OW);
            }
        }
    }
}
