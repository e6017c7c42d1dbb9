// conv3x3.c: direct 3x3 stride-1 convolution (forward, data and filter
// gradients) with AVX-512 register tiles, replacing im2col + GEMM for the
// shapes it covers (nn/cpu/conv3x3.h). im2col writes and re-reads 9 copies of
// the input and OpenBLAS then packs them again; for the thin GEMMs of small
// VAEs (32-64 channels) those copies cost as much as the multiply (perf of the
// f4c4 VAE step: im2col + col2im + memcpy/memset 27%, packing 13%).
//
// Flat padded planes: each input plane is copied once, zero-padded, into a
// Hp x Wp plane (Wp = W + pad_left + pad_right). Output position
// q = oh*Wp + ow then reads input q + kh*Wp + kw for tap (kh, kw): one
// contiguous 1-D correlation per tap, so 16 consecutive q are one vector with
// no edge cases. The columns ow >= OW of each flat row (2 per row) are
// computed and dropped when the result is copied back to NCHW.
//
// - forward: tiles of NB <= 8 output channels x NV <= 3 vectors of q, the
//   accumulators in registers; per input channel and tap, NV loads and NB
//   broadcasts feed NB*NV FMAs.
// - data gradient: the same kernel on dout, zero-padded by 2 - pad, with the
//   weights transposed (C <-> OC) and flipped (tap t -> 8 - t).
// - filter gradient: tiles of NO <= 8 output channels x one input channel x
//   one kernel row of 3 taps (vector accumulators over q, reduced at the end;
//   the rows take turns on chunks of q), over the flat dout (zeros in the
//   dropped columns) and the padded input.
//
// Bits: every output element is summed by one task in a fixed order (input
// channels, then taps; images, then q for the filter gradient) that depends
// on the shape only, so results are identical for any thread count. The
// order differs from the GEMM path's, so results differ from it by rounding.
// Images are processed in rounds of G (shape-only) so scratch stays bounded.
#include "nn/cpu/conv3x3.h"

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "core/base.h"
#include "nn/cpu/par.h"

// Scratch budget for one round of images, in floats (16 MiB); at least one
// image is always taken.
#define ROUND_BUDGET ((size_t)4 << 20)
// Vectors of q per forward task (768 positions): enough tasks for 2+ threads
// on one large image, few enough that a tile's weights stay in L1.
#define TASK_VECS 48

#define TGT __attribute__((target("avx512f")))

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

// One flat correlation: cin input planes of H x W placed at (pt, pl) in
// zero-padded Hp x Wp planes (ps floats apart), cout output planes of
// OH x OW stored flat, lr floats apart (row stride Wp).
typedef struct {
    int cin, cout, H, W, pt, pl, Hp, Wp, OH, OW;
    size_t lr, ps;
} geo;

static geo geo_make(int cin, int cout, int H, int W, int pt, int pb, int pl, int pr) {
    geo g = {cin, cout, H, W, pt, pl, H + pt + pb, W + pl + pr, 0, 0, 0, 0};
    g.OH = g.Hp - 2;
    g.OW = g.Wp - 2;
    g.lr = round16((size_t)g.OH * g.Wp);
    // the last vector of q reads up to lr - 1 + 2*Wp + 2
    g.ps = round16(g.lr + 2 * (size_t)g.Wp + 2);
    return g;
}

static geo fwd_geo(const conv2d_cfg *c) {
    return geo_make(c->C, c->OC, c->H, c->W, c->pad_top, c->pad_bottom, c->pad_left,
                    c->pad_right);
}

// The data gradient as a forward pass over dout (OH x OW, OC channels) padded
// by 2 - pad on each side; its output plane is H x W.
static geo bwd_geo(const conv2d_cfg *c) {
    return geo_make(c->OC, c->C, conv2d_out_h(c), conv2d_out_w(c), 2 - c->pad_top,
                    2 - c->pad_bottom, 2 - c->pad_left, 2 - c->pad_right);
}

int conv3x3_applies(const conv2d_cfg *c) {
    static int avx512 = -1;
    if (avx512 < 0) avx512 = __builtin_cpu_supports("avx512f") ? 1 : 0;
    return avx512 && c->KH == 3 && c->KW == 3 && c->stride == 1 && c->pad_top <= 2 &&
           c->pad_bottom <= 2 && c->pad_left <= 2 && c->pad_right <= 2;
}

// Floats of one image in a round: the padded input planes and the flat
// output planes, for the larger of the forward and data-gradient passes (the
// filter gradient uses the forward geometry: padded input + flat dout).
static size_t image_floats(const conv2d_cfg *c) {
    geo f = fwd_geo(c), b = bwd_geo(c);
    size_t nf = (size_t)f.cin * f.ps + (size_t)f.cout * f.lr;
    size_t nb = (size_t)b.cin * b.ps + (size_t)b.cout * b.lr;
    return nf > nb ? nf : nb;
}

static int round_images(const conv2d_cfg *c) {
    size_t g = ROUND_BUDGET / image_floats(c);
    return g < 1 ? 1 : (g > (size_t)c->B ? c->B : (int)g);
}

// Layout: up to 15 floats to reach a 64-byte boundary, one round of images
// (every plane a multiple of 16 floats, so each starts on a 64-byte boundary:
// aligned loads of dout in the filter gradient), then the packed weights
// (pack_weights).
size_t conv3x3_scratch_floats(const conv2d_cfg *c) {
    return 15 + (size_t)round_images(c) * image_floats(c) + (size_t)c->OC * c->C * 9;
}

static float *round_area(float *scratch) {
    return (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
}

// n planes of H x W -> planes of stride floats (dstride apart), each row at
// (top + h) * Wp + left, zeros everywhere else.
static void place_planes(float *dst, size_t dstride, const float *src, int64_t n, int H, int W,
                         int top, int left, int Wp) {
    #pragma omp parallel for schedule(static) if (PAR(n * (int64_t)dstride))
    for (int64_t i = 0; i < n; i++) {
        float *d = dst + (size_t)i * dstride;
        const float *s = src + (size_t)i * H * W;
        memset(d, 0, sizeof(float) * dstride);
        for (int h = 0; h < H; h++)
            memcpy(d + (size_t)(top + h) * Wp + left, s + (size_t)h * W, sizeof(float) * W);
    }
}

// n input planes -> the zero-padded planes of g.
static void pad_planes(float *dst, const float *src, int64_t n, const geo *g) {
    place_planes(dst, g->ps, src, n, g->H, g->W, g->pt, g->pl, g->Wp);
}

// n planes of OH x OW (dout) -> flat planes of g (row stride Wp, zeros in the
// dropped columns and after the last row).
static void flat_planes(float *dst, const float *src, int64_t n, const geo *g) {
    place_planes(dst, g->lr, src, n, g->OH, g->OW, 0, 0, g->Wp);
}

// Flat output planes -> NCHW: dst = y + bias (bias may be NULL) or dst += y.
static void unflat_planes(float *dst, const float *y, int64_t n, const geo *g,
                          const float *bias, int add) {
    const int OH = g->OH, OW = g->OW, Wp = g->Wp;
    #pragma omp parallel for schedule(static) if (PAR(n * (int64_t)OH * OW))
    for (int64_t i = 0; i < n; i++) {
        float *d = dst + (size_t)i * OH * OW;
        const float *s = y + (size_t)i * g->lr;
        float bv = bias ? bias[i % g->cout] : 0.0f;
        for (int h = 0; h < OH; h++) {
            float *dr = d + (size_t)h * OW;
            const float *sr = s + (size_t)h * Wp;
            if (add) {
                #pragma omp simd
                for (int w = 0; w < OW; w++) dr[w] += sr[w];
            } else {
                #pragma omp simd
                for (int w = 0; w < OW; w++) dr[w] = sr[w] + bv;
            }
        }
    }
}

// Forward tile: y[o][16v + j] for o < NB, v < NV = sum over input channels c
// and taps (kh, kw) of w[(c*9 + kh*3 + kw)*NB + o] * p[c*ps + kh*Wp + kw + 16v + j]
// (w packed by pack_weights: the NB weights of one channel and tap adjacent).
typedef void (*fwd_tile_fn)(float *y, size_t ys, const float *p, size_t ps, const float *w,
                            int cin, int Wp);
#define DEF_FWD_TILE(NB, NV)                                                                  \
    TGT static void fwd_tile_##NB##_##NV(float *y, size_t ys, const float *p, size_t ps,     \
                                         const float *w, int cin, int Wp) {                   \
        __m512 acc[NB][NV];                                                                   \
        _Pragma("GCC unroll 8") for (int o = 0; o < NB; o++)                                  \
            _Pragma("GCC unroll 3") for (int v = 0; v < NV; v++) acc[o][v] =                  \
                _mm512_setzero_ps();                                                          \
        for (int c = 0; c < cin; c++) {                                                       \
            const float *pc = p + (size_t)c * ps, *wc = w + (size_t)c * 9 * NB;                    \
            _Pragma("GCC unroll 1") for (int kh = 0; kh < 3; kh++)                            \
                _Pragma("GCC unroll 1") for (int kw = 0; kw < 3; kw++) {                      \
                __m512 x[NV];                                                                 \
                _Pragma("GCC unroll 3") for (int v = 0; v < NV; v++) x[v] =                   \
                    _mm512_loadu_ps(pc + kh * Wp + kw + 16 * v);                              \
                _Pragma("GCC unroll 8") for (int o = 0; o < NB; o++) {                        \
                    __m512 b = _mm512_set1_ps(wc[(kh * 3 + kw) * NB + o]);                      \
                    _Pragma("GCC unroll 3") for (int v = 0; v < NV; v++) acc[o][v] =          \
                        _mm512_fmadd_ps(b, x[v], acc[o][v]);                                  \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
        _Pragma("GCC unroll 8") for (int o = 0; o < NB; o++)                                  \
            _Pragma("GCC unroll 3") for (int v = 0; v < NV; v++)                              \
                _mm512_storeu_ps(y + o * ys + 16 * v, acc[o][v]);                             \
    }
DEF_FWD_TILE(8, 3)
DEF_FWD_TILE(4, 3)
DEF_FWD_TILE(2, 3)
DEF_FWD_TILE(1, 3)
DEF_FWD_TILE(8, 1)
DEF_FWD_TILE(4, 1)
DEF_FWD_TILE(2, 1)
DEF_FWD_TILE(1, 1)
static const fwd_tile_fn FWD3[9] = {[8] = fwd_tile_8_3, [4] = fwd_tile_4_3, [2] = fwd_tile_2_3,
                                    [1] = fwd_tile_1_3};
static const fwd_tile_fn FWD1[9] = {[8] = fwd_tile_8_1, [4] = fwd_tile_4_1, [2] = fwd_tile_2_1,
                                    [1] = fwd_tile_1_1};

// Output channels are taken in tiles of 8, the last fewer than 8 as 4, 2, 1
// (its set bits). pack_weights lays out each tile's weights as [c][tap][o]:
// wp[(o0*cin + (c*9 + t)*k) + o] for the tile at o0 with k channels, with
// weight (o, c, t) = w[(o*cin + c)*9 + t], or for flip (the data gradient:
// w is (cin, cout, 3, 3), transposed and flipped) w[(c*cout + o)*9 + 8 - t].
static void pack_weights(float *wp, const float *w, int cout, int cin, int flip) {
    for (int b0 = 0; b0 < cout; b0 += 8) {
        int nb = cout - b0 < 8 ? cout - b0 : 8, o0 = b0;
        for (int k = 8; k >= 1; k /= 2) {
            if (!(nb & k)) continue;
            float *d = wp + (size_t)o0 * cin * 9;
            for (int c = 0; c < cin; c++)
                for (int t = 0; t < 9; t++)
                    for (int o = 0; o < k; o++)
                        d[((size_t)c * 9 + t) * k + o] =
                            flip ? w[((size_t)c * cout + o0 + o) * 9 + 8 - t]
                                 : w[((size_t)(o0 + o) * cin + c) * 9 + t];
            o0 += k;
        }
    }
}

// y (gn images x cout flat planes) = correlation of p (gn x cin padded
// planes) with wp (pack_weights). Tasks: (image, block of 8 output
// channels, TASK_VECS vectors of q).
static void correlate(float *y, const float *p, const float *wp, const geo *g, int gn) {
    const int nob = (g->cout + 7) / 8, nv = (int)(g->lr / 16);
    const int nqc = (nv + TASK_VECS - 1) / TASK_VECS;
    const int64_t tasks = (int64_t)gn * nob * nqc;
    const size_t wo = (size_t)g->cin * 9, lr = g->lr, ps = g->ps;
    #pragma omp parallel for schedule(static) \
        if (tasks > 1 && PAR((int64_t)gn * g->cout * (int64_t)lr * g->cin / 8))
    for (int64_t t = 0; t < tasks; t++) {
        int qc = (int)(t % nqc), ob = (int)(t / nqc % nob), im = (int)(t / ((int64_t)nqc * nob));
        int o0 = ob * 8, nb = g->cout - o0 < 8 ? g->cout - o0 : 8;
        int v0 = qc * TASK_VECS, v1 = v0 + TASK_VECS < nv ? v0 + TASK_VECS : nv;
        const float *pi = p + (size_t)im * g->cin * ps;
        float *yi = y + (size_t)im * g->cout * lr;
        for (int k = 8; k >= 1; k /= 2) {
            if (!(nb & k)) continue;
            int v = v0;
            for (; v + 3 <= v1; v += 3)
                FWD3[k](yi + o0 * lr + 16 * (size_t)v, lr, pi + 16 * (size_t)v, ps, wp + o0 * wo,
                        g->cin, g->Wp);
            for (; v < v1; v++)
                FWD1[k](yi + o0 * lr + 16 * (size_t)v, lr, pi + 16 * (size_t)v, ps, wp + o0 * wo,
                        g->cin, g->Wp);
            o0 += k;
        }
    }
}

// Filter-gradient tile: dw[o*dwo + kh*3 + kw] += sum over images and q of
// d[o][q] * p[q + kh*Wp + kw] for NO output channels and one input channel.
// q runs in chunks of DW_CHUNK vectors; within a chunk the 3 kernel rows take
// turns, each with its NO x 3 vector accumulators in registers (kept between
// chunks in accm, in L1), so the chunk of dout (NO planes) is read from
// memory once for the 9 taps instead of once per row. Per vector of q: NO
// loads of dout and 3 of input feed 3*NO FMAs. d and p point at image 0;
// images are gd / gp floats apart.
#define DW_CHUNK 16
typedef void (*dw_tile_fn)(float *dw, size_t dwo, const float *d, const float *p, size_t gd,
                           size_t gp, size_t lr, int Wp, int gn);
#define DEF_DW_TILE(NO)                                                                       \
    TGT static void dw_tile_##NO(float *dw, size_t dwo, const float *d, const float *p,       \
                                 size_t gd, size_t gp, size_t lr, int Wp, int gn) {           \
        __m512 accm[3][NO][3];                                                                \
        for (int kh = 0; kh < 3; kh++)                                                        \
            for (int o = 0; o < NO; o++)                                                      \
                for (int t = 0; t < 3; t++) accm[kh][o][t] = _mm512_setzero_ps();             \
        for (int im = 0; im < gn; im++) {                                                     \
            const float *di = d + (size_t)im * gd, *pi = p + (size_t)im * gp;                 \
            for (size_t q0 = 0; q0 < lr; q0 += 16 * DW_CHUNK) {                               \
                size_t q1 = q0 + 16 * DW_CHUNK < lr ? q0 + 16 * DW_CHUNK : lr;                \
                for (int kh = 0; kh < 3; kh++) {                                              \
                    const float *pr = pi + (size_t)kh * Wp;                                   \
                    __m512 acc[NO][3];                                                        \
                    _Pragma("GCC unroll 8") for (int o = 0; o < NO; o++)                      \
                        _Pragma("GCC unroll 3") for (int t = 0; t < 3; t++) acc[o][t] =       \
                            accm[kh][o][t];                                                   \
                    for (size_t q = q0; q < q1; q += 16) {                                    \
                        __m512 x[3];                                                          \
                        _Pragma("GCC unroll 3") for (int t = 0; t < 3; t++) x[t] =            \
                            _mm512_loadu_ps(pr + q + t);                                      \
                        _Pragma("GCC unroll 8") for (int o = 0; o < NO; o++) {                \
                            __m512 dv = _mm512_load_ps(di + o * lr + q);                      \
                            __asm__("" : "+v"(dv)); /* one load, not one per FMA */           \
                            _Pragma("GCC unroll 3") for (int t = 0; t < 3; t++) acc[o][t] =   \
                                _mm512_fmadd_ps(dv, x[t], acc[o][t]);                         \
                        }                                                                     \
                    }                                                                         \
                    _Pragma("GCC unroll 8") for (int o = 0; o < NO; o++)                      \
                        _Pragma("GCC unroll 3") for (int t = 0; t < 3; t++)                   \
                            accm[kh][o][t] = acc[o][t];                                       \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
        for (int kh = 0; kh < 3; kh++)                                                        \
            for (int o = 0; o < NO; o++)                                                      \
                for (int t = 0; t < 3; t++)                                                   \
                    dw[o * dwo + kh * 3 + t] += _mm512_reduce_add_ps(accm[kh][o][t]);         \
    }
DEF_DW_TILE(8)
DEF_DW_TILE(4)
DEF_DW_TILE(2)
DEF_DW_TILE(1)
static const dw_tile_fn DW[9] = {[8] = dw_tile_8, [4] = dw_tile_4, [2] = dw_tile_2,
                                 [1] = dw_tile_1};

// dw (OC, C, 3, 3) += filter gradient of one round: d = flat dout planes
// (gn x OC), p = padded input planes (gn x C). Tasks: (8 output channels,
// one input channel); fewer than 8 channels as 4, 2, 1.
static void filter_grad(float *dw, const float *d, const float *p, const geo *g, int gn) {
    const int C = g->cin, OC = g->cout, nob = (OC + 7) / 8;
    const int64_t tasks = (int64_t)nob * C;
    const size_t gd = (size_t)OC * g->lr, gp = (size_t)C * g->ps;
    #pragma omp parallel for schedule(static) \
        if (tasks > 1 && PAR((int64_t)gn * OC * (int64_t)g->lr * C / 8))
    for (int64_t t = 0; t < tasks; t++) {
        int c = (int)(t % C), o0 = (int)(t / C) * 8;
        int nb = OC - o0 < 8 ? OC - o0 : 8;
        for (int k = 8; k >= 1; k /= 2) {
            if (!(nb & k)) continue;
            DW[k](dw + ((size_t)o0 * C + c) * 9, (size_t)C * 9, d + o0 * g->lr, p + c * g->ps,
                  gd, gp, g->lr, g->Wp, gn);
            o0 += k;
        }
    }
}

void conv3x3_forward(float *out, const float *inp, const float *weight, const float *bias,
                     float *scratch, const conv2d_cfg *c) {
    CHECK(conv3x3_applies(c));
    const geo g = fwd_geo(c);
    const int G = round_images(c);
    float *P = round_area(scratch), *Y = P + (size_t)G * g.cin * g.ps;
    float *wp = P + (size_t)G * image_floats(c);
    pack_weights(wp, weight, c->OC, c->C, 0);
    for (int b0 = 0; b0 < c->B; b0 += G) {
        int gn = c->B - b0 < G ? c->B - b0 : G;
        pad_planes(P, inp + (size_t)b0 * c->C * c->H * c->W, (int64_t)gn * c->C, &g);
        correlate(Y, P, wp, &g, gn);
        unflat_planes(out + (size_t)b0 * c->OC * g.OH * g.OW, Y, (int64_t)gn * c->OC, &g, bias,
                      0);
    }
}

void conv3x3_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                      const float *weight, float *scratch, const conv2d_cfg *c) {
    CHECK(conv3x3_applies(c));
    const geo f = fwd_geo(c), b = bwd_geo(c);
    const int G = round_images(c), C = c->C, OC = c->OC;
    const size_t in_img = (size_t)C * c->H * c->W, out_img = (size_t)OC * f.OH * f.OW;
    float *R = round_area(scratch), *wt = R + (size_t)G * image_floats(c);
    if (dinp) pack_weights(wt, weight, C, OC, 1);
    for (int b0 = 0; b0 < c->B; b0 += G) {
        int gn = c->B - b0 < G ? c->B - b0 : G;
        if (dweight) {
            float *P = R, *D = R + (size_t)G * C * f.ps;
            pad_planes(P, inp + (size_t)b0 * in_img, (int64_t)gn * C, &f);
            flat_planes(D, dout + (size_t)b0 * out_img, (int64_t)gn * OC, &f);
            filter_grad(dweight, D, P, &f, gn);
        }
        if (dinp) {
            float *Q = R, *Y = R + (size_t)G * OC * b.ps;
            pad_planes(Q, dout + (size_t)b0 * out_img, (int64_t)gn * OC, &b);
            correlate(Y, Q, wt, &b, gn);
            unflat_planes(dinp + (size_t)b0 * in_img, Y, (int64_t)gn * C, &b, NULL, 1);
        }
    }
}
