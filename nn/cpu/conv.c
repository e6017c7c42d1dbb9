// conv.c: CPU conv2d (see nn/conv.h). On AVX-512 CPUs the forward of every
// KH x KW (up to 7x7, not 1x1) convolution at stride 1 or 2, the backward
// of 3x3 stride-1 ones and the filter gradient of 3x3 stride-2 ones run the
// direct kernels of nn/cpu/conv_direct.c; the rest (1x1, other strides, the
// data gradient at stride 2, other CPUs) im2col + sgemm. Among the 3x3
// stride-1 convs, those with >= 16 channels in and out run their forward and
// data gradient by Winograd F(2x2, 3x3) instead (nn/cpu/conv_winograd.c;
// f4c4 64 -> 64 at 16x16, fwd+bwd: 0.73x the time of the direct kernels).
//
// Small feature maps (8x8 = 64 columns) make thin GEMMs that OpenBLAS runs
// far below peak, so images are processed in groups of G, with G chosen so a
// group has at least CONV_COLS_TARGET output columns: col is (K, G*OHW) with
// K = C*KH*KW, and the GEMM output (OC, G*OHW) is scattered back to NCHW.
// With G == 1 the GEMM writes straight into out / dinp and a 1x1, stride-1,
// unpadded conv skips im2col altogether (the input already is col).
//
// Threads (one libgomp pool, BLAS single-threaded: nn/cpu/gemm.h). Two plans,
// both chosen from the shapes only, so the bits never depend on the thread
// count:
//   - slots (several groups and enough scratch): S = CONV_SLOTS groups at a
//     time run side by side, each on its own scratch slot with serial GEMMs
//     (im2col, GEMM, scatter, col2im of a group never leave its thread). The
//     weight gradient is summed per slot (slot s takes groups s, s+S, ...) and
//     the S partial sums are added to dweight in slot order.
//   - one group at a time: the GEMMs are cut into blocks (gemm_blocks) and
//     im2col / col2im / scatter loops are parallel over rows or channels
//     (each output written by one thread, taps in a fixed order).
#include "nn/cpu/ops.h"

#include <string.h>

#include "core/base.h"
#include "nn/cpu/conv_direct.h"
#include "nn/cpu/conv_winograd.h"
#include "nn/cpu/gemm.h"

// Columns per GEMM worth reaching before batching images (measured with
// bench/bench_nn_dense: below ~1k columns sgemm throughput drops sharply).
#define CONV_COLS_TARGET 2048
#define CONV_COLS_SINGLE 1024
// Copy loops below this many floats stay on one thread (fork/join costs more).
#define CONV_PAR_MIN 32768

static int group_size(const conv2d_cfg *c, int ohw) {
    // Images of CONV_COLS_SINGLE or more output pixels are not grouped: the
    // GEMM then writes NCHW directly, without the gather/scatter copies
    // (32x32 f4c4 conv fwd+bwd 0.81x the time; 16x16 images grouped by 4
    // instead of 8 were 1.24x slower, so the threshold stays here).
    if (ohw >= CONV_COLS_SINGLE) return 1;
    int g = (CONV_COLS_TARGET + ohw - 1) / ohw;
    return g < 1 ? 1 : (g > c->B ? c->B : g);
}

static int is_pointwise(const conv2d_cfg *c) {
    return c->KH == 1 && c->KW == 1 && c->stride == 1 && c->pad_top == 0 &&
           c->pad_bottom == 0 && c->pad_left == 0 && c->pad_right == 0;
}

// Groups run side by side at most (enough for the 2-core target and a few
// more; a constant, so the plan does not depend on the thread count).
#define CONV_SLOTS 4
// Scratch budget for the slots plan, in floats (64 MiB): bigger layers run
// one group at a time with blocked GEMMs instead.
#define CONV_SLOT_BUDGET ((size_t)16 << 20)

// Floats of one slot: col (K, cols), the gathered GEMM output / dout
// (OC, cols) when images are grouped, and a weight-gradient partial (OC, K).
static size_t slot_floats(const conv2d_cfg *c, int G, int ohw) {
    size_t K = (size_t)c->C * c->KH * c->KW, cols = (size_t)G * ohw;
    return K * cols + (G > 1 ? (size_t)c->OC * cols : 0) + (size_t)c->OC * K;
}

// Slots used: 1 means the one-group-at-a-time plan.
static int slot_count(const conv2d_cfg *c, int G, int ohw) {
    int ngroups = (c->B + G - 1) / G;
    int S = ngroups < CONV_SLOTS ? ngroups : CONV_SLOTS;
    while (S > 1 && (size_t)S * slot_floats(c, G, ohw) > CONV_SLOT_BUDGET) S--;
    return S;
}

size_t conv2d_scratch_floats_cpu(const conv2d_cfg *c) {
    CHECK(conv2d_validate(c) == 0);
    size_t direct = conv_direct_fwd_applies(c) ? conv_direct_scratch_floats(c) : 0;
    size_t wino = conv_wino_scratch_floats(c);   // 0 where Winograd never applies
    if (wino > direct) direct = wino;
    if (conv3x3_applies(c)) return direct;   // no im2col at all
    int ohw = conv2d_out_h(c) * conv2d_out_w(c);
    int g = group_size(c, ohw);
    int S = slot_count(c, g, ohw);
    size_t gemm = (size_t)S * slot_floats(c, g, ohw);   // the backward's, at least
    return direct > gemm ? direct : gemm;
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
                   int OH, int OW, int par) {
    const int KH = c->KH, KW = c->KW, H = c->H, W = c->W, s = c->stride;
    const int K = c->C * KH * KW, OHW = OH * OW;
    const size_t ld = (size_t)G * OHW;
    // Rows are independent copies: parallel when asked (par) and big enough.
    #pragma omp parallel for schedule(static) if (par && (size_t)K * ld >= CONV_PAR_MIN)
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
static void col2im_add(float *restrict dinp, const float *restrict dcol, int b0, int G,
                       const conv2d_cfg *c, int OH, int OW, int par) {
    const int KH = c->KH, KW = c->KW, H = c->H, W = c->W, s = c->stride, C = c->C;
    const int OHW = OH * OW;
    const size_t ld = (size_t)G * OHW;
    // One (image, channel) plane per task: its taps are added in order.
    #pragma omp parallel for collapse(2) schedule(static) \
        if (par && (size_t)c->C * c->KH * c->KW * ld >= CONV_PAR_MIN)
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

// out (OC, OHW) planes of images b0..b0+g-1 from the GEMM output y (OC, cols).
static void scatter_out(float *out, const float *y, const float *bias, int b0, int g, int OC,
                        int OHW, int par) {
    const size_t cols = (size_t)g * OHW;
    #pragma omp parallel for collapse(2) schedule(static) if (par && OC * cols >= CONV_PAR_MIN)
    for (int i = 0; i < g; i++)
        for (int oc = 0; oc < OC; oc++) {
            const float *src = y + (size_t)oc * cols + (size_t)i * OHW;
            float *dst = out + ((size_t)(b0 + i) * OC + oc) * OHW;
            float bv = bias ? bias[oc] : 0.0f;
            for (int k = 0; k < OHW; k++) dst[k] = src[k] + bv;
        }
}

// dy (OC, cols) gathered from dout planes of images b0..b0+g-1.
static void gather_dout(float *dy, const float *dout, int b0, int g, int OC, int OHW, int par) {
    const size_t cols = (size_t)g * OHW;
    #pragma omp parallel for collapse(2) schedule(static) if (par && OC * cols >= CONV_PAR_MIN)
    for (int i = 0; i < g; i++)
        for (int oc = 0; oc < OC; oc++)
            memcpy(dy + (size_t)oc * cols + (size_t)i * OHW,
                   dout + ((size_t)(b0 + i) * OC + oc) * OHW, sizeof(float) * OHW);
}

// Forward of images b0..b0+g-1 (one group) on one scratch slot. par: the
// copies and the GEMM may use threads (one-group plan) or not (inside a slot
// task).
static void fwd_group(float *out, const float *inp, const float *weight, const float *bias,
                      float *slot, int b0, int g, int G, const conv2d_cfg *c, int OH, int OW,
                      int par) {
    const int OHW = OH * OW, K = c->C * c->KH * c->KW, OC = c->OC, cols = g * OHW;
    float *col = slot, *ybuf = slot + (size_t)K * G * OHW;
    void (*gemm)(int, int, int, int, int, float, const float *, int, const float *, int, float,
                 float *, int) = par ? gemm_blocks : gemm_serial;
    const float *cm = col;
    if (G == 1 && is_pointwise(c)) cm = inp + (size_t)b0 * c->C * OHW;
    else im2col(col, inp, b0, g, c, OH, OW, par);
    if (G == 1) {
        float *o = out + (size_t)b0 * OC * OHW;
        float beta = 0.0f;
        if (bias) {
            for (int oc = 0; oc < OC; oc++)
                for (int i = 0; i < OHW; i++) o[(size_t)oc * OHW + i] = bias[oc];
            beta = 1.0f;
        }
        gemm(0, 0, OC, OHW, K, 1.0f, weight, K, cm, OHW, beta, o, OHW);
    } else {
        gemm(0, 0, OC, cols, K, 1.0f, weight, K, cm, cols, 0.0f, ybuf, cols);
        scatter_out(out, ybuf, bias, b0, g, OC, OHW, par);
    }
}

void conv2d_forward_cpu(float *out, const float *inp, const float *weight,
                        const float *bias, float *scratch, const conv2d_cfg *c) {
    // out (B,OC,OH,OW), inp (B,C,H,W), weight (OC,C,KH,KW), bias (OC) or NULL,
    // scratch (conv2d_scratch_floats(c))
    CHECK(conv2d_validate(c) == 0);
    if (conv_wino_applies(c)) {
        conv_wino_forward(out, inp, weight, bias, scratch, c);
        return;
    }
    if (conv_direct_fwd_applies(c)) {
        conv_direct_forward(out, inp, weight, bias, scratch, c);
        return;
    }
    const int OH = conv2d_out_h(c), OW = conv2d_out_w(c), OHW = OH * OW, B = c->B;
    const int G = group_size(c, OHW), S = slot_count(c, G, OHW);
    const int ngroups = (B + G - 1) / G;
    const size_t sf = slot_floats(c, G, OHW);
    if (S == 1) {
        for (int gi = 0; gi < ngroups; gi++) {
            int b0 = gi * G, g = B - b0 < G ? B - b0 : G;
            fwd_group(out, inp, weight, bias, scratch, b0, g, G, c, OH, OW, 1);
        }
        return;
    }
    // Groups are independent: slot s of round r takes group r*S + s.
    for (int r0 = 0; r0 < ngroups; r0 += S) {
        int n = ngroups - r0 < S ? ngroups - r0 : S;
        #pragma omp parallel for schedule(static)
        for (int s = 0; s < n; s++) {
            int b0 = (r0 + s) * G, g = B - b0 < G ? B - b0 : G;
            fwd_group(out, inp, weight, bias, scratch + (size_t)s * sf, b0, g, G, c, OH, OW, 0);
        }
    }
}

// Backward of one group on one slot: dW_acc (OC,K) += dy col^T; dinp of the
// group's images += col2im(W^T dy). par as in fwd_group.
static void bwd_group(float *dinp, float *dw_acc, const float *dout, const float *inp,
                      const float *weight, float *slot, int b0, int g, int G,
                      const conv2d_cfg *c, int OH, int OW, int par) {
    const int OHW = OH * OW, K = c->C * c->KH * c->KW, OC = c->OC, cols = g * OHW;
    const int pw = is_pointwise(c);
    float *col = slot, *dybuf = slot + (size_t)K * G * OHW;
    void (*gemm)(int, int, int, int, int, float, const float *, int, const float *, int, float,
                 float *, int) = par ? gemm_blocks : gemm_serial;
    const float *dy;
    if (G == 1) {
        dy = dout + (size_t)b0 * OC * OHW;
    } else {
        gather_dout(dybuf, dout, b0, g, OC, OHW, par);
        dy = dybuf;
    }
    if (dw_acc) {
        const float *cm = col;
        if (G == 1 && pw) cm = inp + (size_t)b0 * c->C * OHW;
        else im2col(col, inp, b0, g, c, OH, OW, par);
        // dW (OC,K) += dy (OC,cols) @ col^T (cols,K)
        gemm(0, 1, OC, K, cols, 1.0f, dy, cols, cm, cols, 1.0f, dw_acc, K);
    }
    if (dinp) {
        if (G == 1 && pw) {
            // dinp_b (C, OHW) += W^T (C, OC) @ dy (OC, OHW) directly.
            gemm(1, 0, K, OHW, OC, 1.0f, weight, K, dy, OHW, 1.0f,
                 dinp + (size_t)b0 * c->C * OHW, OHW);
        } else {
            // dcol (K, cols) = W^T @ dy, reusing the col buffer.
            gemm(1, 0, K, cols, OC, 1.0f, weight, K, dy, cols, 0.0f, col, cols);
            col2im_add(dinp, col, b0, g, c, OH, OW, par);
        }
    }
}

// set: dinp written (=) instead of accumulated: the Winograd and direct 3x3
// kernels store their result; the im2col paths add into a cleared dinp.
static void backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, float *scratch, const conv2d_cfg *c,
                     int set) {
    // dinp (B,C,H,W), dweight (OC,C,KH,KW), dbias (OC), dout (B,OC,OH,OW),
    // inp (B,C,H,W), weight (OC,C,KH,KW), scratch (conv2d_scratch_floats(c))
    CHECK(conv2d_validate(c) == 0);
    const int OH = conv2d_out_h(c), OW = conv2d_out_w(c), OHW = OH * OW;
    const int K = c->C * c->KH * c->KW, OC = c->OC, B = c->B;
    const int G = group_size(c, OHW), S = slot_count(c, G, OHW);
    const int ngroups = (B + G - 1) / G;
    const size_t sf = slot_floats(c, G, OHW);
    if (dbias) {
        // Per channel (one thread each), images then pixels in order; double
        // because B*OHW can be ~10^5 terms.
        #pragma omp parallel for schedule(static) if ((size_t)B * OC * OHW >= CONV_PAR_MIN)
        for (int oc = 0; oc < OC; oc++) {
            double acc = 0.0;
            for (int b = 0; b < B; b++)
                acc += plane_sum(dout + ((size_t)b * OC + oc) * OHW, OHW);
            dbias[oc] += (float)acc;
        }
    }
    if (!dinp && !dweight) return;
    if (conv3x3_applies(c)) {
        if (dinp && conv_wino_applies(c)) {   // direct filter gradient, Winograd data gradient
            if (dweight) conv3x3_backward(NULL, dweight, dout, inp, weight, scratch, c, 0);
            conv_wino_backward_data(dinp, dout, weight, scratch, c, set);
            return;
        }
        conv3x3_backward(dinp, dweight, dout, inp, weight, scratch, c, set);
        return;
    }
    if (dinp && set) {
        const int64_t n = (int64_t)B * c->C * c->H * c->W;
        #pragma omp parallel for schedule(static) if (n >= CONV_PAR_MIN)
        for (int64_t i = 0; i < n; i++) dinp[i] = 0.0f;
    }
    if (dweight && conv_direct_dw_applies(c)) {   // 3x3 stride 2: direct filter gradient,
        conv_direct_filter_grad(dweight, dout, inp, scratch, c);   // im2col data gradient
        if (!dinp) return;
        dweight = NULL;
    }
    if (S == 1) {
        for (int gi = 0; gi < ngroups; gi++) {
            int b0 = gi * G, g = B - b0 < G ? B - b0 : G;
            bwd_group(dinp, dweight, dout, inp, weight, scratch, b0, g, G, c, OH, OW, 1);
        }
        return;
    }
    // Slot s owns groups s, s+S, ... and its weight-gradient partial (the
    // last OC*K floats of its slot), added to dweight in slot order after.
    const size_t pw_off = sf - (size_t)OC * K;
    #pragma omp parallel for schedule(static)
    for (int s = 0; s < S; s++) {
        float *slot = scratch + (size_t)s * sf;
        float *part = dweight ? slot + pw_off : NULL;
        if (part) memset(part, 0, sizeof(float) * (size_t)OC * K);
        for (int gi = s; gi < ngroups; gi += S) {
            int b0 = gi * G, g = B - b0 < G ? B - b0 : G;
            bwd_group(dinp, part, dout, inp, weight, slot, b0, g, G, c, OH, OW, 0);
        }
    }
    if (dweight) {
        const int64_t nw = (int64_t)OC * K;
        #pragma omp parallel for schedule(static) if (nw * S >= CONV_PAR_MIN)
        for (int64_t i = 0; i < nw; i++) {
            float acc = dweight[i];
            for (int s = 0; s < S; s++) acc += scratch[(size_t)s * sf + pw_off + i];
            dweight[i] = acc;
        }
    }
}

void conv2d_backward_cpu(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, float *scratch,
                         const conv2d_cfg *c) {
    backward(dinp, dweight, dbias, dout, inp, weight, scratch, c, 0);
}

void conv2d_backward_set_cpu(float *dinp, float *dweight, float *dbias, const float *dout,
                             const float *inp, const float *weight, float *scratch,
                             const conv2d_cfg *c) {
    backward(dinp, dweight, dbias, dout, inp, weight, scratch, c, 1);
}
