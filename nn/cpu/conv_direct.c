// conv_direct.c: direct convolutions with AVX-512 register tiles, replacing
// im2col + GEMM for the shapes they cover (nn/cpu/conv_direct.h): the
// forward of KH x KW convolutions (up to 7 x 7) at stride 1 or 2, and the
// data and filter gradients of 3x3 stride-1 ones. im2col writes and re-reads
// KH*KW copies of the input and OpenBLAS then packs them again; for the thin
// GEMMs of small VAEs (32-64 channels) those copies cost as much as the
// multiply (perf of the f4c4 VAE step: im2col + col2im + memcpy/memset 27%,
// packing 13%).
//
// Flat padded planes: each input plane is copied once, zero-padded, into a
// Hp x Wp plane (Wp = W + pad_left + pad_right). At stride 1, output position
// q = oh*Wp + ow then reads input q + kh*Wp + kw for tap (kh, kw): one
// contiguous 1-D correlation per tap, so 16 consecutive q are one vector with
// no edge cases. The columns ow >= OW of each flat row (KW - 1 per row) are
// computed and dropped when the result is copied back to NCHW.
// Stride 2: the padded plane is split into its 4 phases (even/odd rows x
// even/odd columns), each a Hq x Wq plane (Hq = ceil(Hp / 2), Wq likewise).
// Output (oh, ow) reads padded (2oh + kh, 2ow + kw) = phase (kh % 2, kw % 2)
// at (oh + kh / 2, ow + kw / 2), so with q = oh*Wq + ow every tap is again a
// contiguous correlation, at offset (kh / 2)*Wq + kw / 2 in its phase plane.
// A table of one offset per tap drives the same tiles for every shape.
// Narrow images (stride 1) are merged: gi images of a round side by side in
// one plane, cw = W + max(pad_left, pad_right) columns apart, so the zero
// columns between them serve as the right padding of one and the left of
// the next. An 8x8 image alone is a 10-wide flat row (20% dropped columns)
// and 5 vectors of q (two of them in the slower 1-vector tiles); 8 merged
// are 73 wide (12%) and 37 vectors, nearly all in 3-vector tiles, and the
// filter gradient's register accumulators are reloaded once per chunk of q
// instead of once per small image.
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
// channels, then taps in row-major order; images, then q for the filter
// gradient) that depends
// on the shape only, so results are identical for any thread count. The
// order differs from the GEMM path's, so results differ from it by rounding.
// Images are processed in rounds of G (shape-only) so scratch stays bounded.
#include "nn/cpu/conv_direct.h"

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
// At most this many bytes of input per q chunk (all input channels and
// phases of the chunk's vectors): the output-channel blocks of one chunk
// then find it in L2 (2 MiB per core here). Without the cap, 3x3 stride-2
// convs over 288 channels (Inception's Mixed_6a: 4 phase planes each) swept
// ~3.6 MiB per block and ran slower than im2col + GEMM.
#define CHUNK_BYTES ((size_t)512 << 10)

#define TGT __attribute__((target("avx512f")))

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

#define MAX_K 7

// One flat correlation: cin input planes of H x W placed at (pt, pl) in
// zero-padded Hp x Wp planes, split into s*s phase planes of Hq x Wq
// (s = 1: one plane, Hq x Wq = Hp x Wp) pq floats apart, one input channel
// ps = s*s*pq floats; cout output planes of OH x OW stored flat, lr floats
// apart (row stride Wq). off[t]: where tap t = kh*KW + kw reads, relative to
// q in its channel.
// Merged planes (stride 1): gi images per plane, image i's input at column
// pl + i*cw and its output at column i*cw (H, W, OH, OW are one image's).
typedef struct {
    int cin, cout, H, W, pt, pl, s, nt, gi, cw, Hp, Wp, Hq, Wq, OH, OW;
    size_t lr, pq, ps;
    int off[MAX_K * MAX_K];
} geo;

static geo geo_make(int cin, int cout, int H, int W, int pt, int pb, int pl, int pr, int KH,
                    int KW, int s, int gi) {
    const int gap = pl > pr ? pl : pr;
    geo g = {.cin = cin, .cout = cout, .H = H, .W = W, .pt = pt, .pl = pl, .s = s,
             .nt = KH * KW, .gi = gi, .cw = W + gap, .Hp = H + pt + pb,
             .Wp = pl + gi * W + (gi - 1) * gap + pr};
    g.Hq = (g.Hp + s - 1) / s;
    g.Wq = (g.Wp + s - 1) / s;
    g.OH = (g.Hp - KH) / s + 1;
    g.OW = (W + pl + pr - KW) / s + 1;
    g.lr = round16((size_t)g.OH * g.Wq);
    // the last vector of q reads up to lr - 1 + reach in its phase plane
    size_t reach = (size_t)((KH - 1) / s) * g.Wq + (KW - 1) / s, data = (size_t)g.Hq * g.Wq;
    g.pq = round16(g.lr + reach > data ? g.lr + reach : data);
    g.ps = (size_t)s * s * g.pq;
    for (int kh = 0; kh < KH; kh++)
        for (int kw = 0; kw < KW; kw++)
            g.off[kh * KW + kw] =
                (int)(((kh % s) * s + kw % s) * g.pq + (size_t)(kh / s) * g.Wq + kw / s);
    return g;
}

// Merged planes aim at about this many columns (measured on the f4c4 conv
// rows, fwd+bwd at 1 thread, against no merging: 8x8 0.85 of the time, 16x16
// 0.91-0.96 with 160 columns; 80 columns merged 16x16 images only 4 at a
// time and gained less).
#define MERGE_COLS 160

// Images per merged plane: 1 at stride 2 or when the pads exceed the kernel
// (an image's outputs would overlap the next one's), else as many as fit in
// MERGE_COLS, spread evenly over the batch (8 images of 8 or 16 columns: 8;
// 12 images of 16 columns: 6 and 6).
static int merge_count(const conv2d_cfg *c) {
    int pmin = c->pad_left < c->pad_right ? c->pad_left : c->pad_right;
    if (c->stride != 1 || pmin >= c->KW) return 1;
    int gmax = MERGE_COLS / (c->W + 2);
    if (gmax <= 1) return 1;
    int ng = (c->B + gmax - 1) / gmax;
    return (c->B + ng - 1) / ng;
}

static geo fwd_geo(const conv2d_cfg *c) {
    return geo_make(c->C, c->OC, c->H, c->W, c->pad_top, c->pad_bottom, c->pad_left,
                    c->pad_right, c->KH, c->KW, c->stride, merge_count(c));
}

// The data gradient (3x3 stride 1) as a forward pass over dout (OH x OW, OC
// channels) padded by 2 - pad on each side; its output plane is H x W.
static geo bwd_geo(const conv2d_cfg *c) {
    return geo_make(c->OC, c->C, conv2d_out_h(c), conv2d_out_w(c), 2 - c->pad_top,
                    2 - c->pad_bottom, 2 - c->pad_left, 2 - c->pad_right, 3, 3, 1,
                    merge_count(c));
}

static int has_avx512(void) {
    static int avx512 = -1;
    if (avx512 < 0) avx512 = __builtin_cpu_supports("avx512f") ? 1 : 0;
    return avx512;
}

int conv3x3_applies(const conv2d_cfg *c) {
    return has_avx512() && c->KH == 3 && c->KW == 3 && c->stride == 1 && c->pad_top <= 2 &&
           c->pad_bottom <= 2 && c->pad_left <= 2 && c->pad_right <= 2;
}

int conv_direct_fwd_applies(const conv2d_cfg *c) {
    return has_avx512() && (c->stride == 1 || c->stride == 2) && c->KH <= MAX_K &&
           c->KW <= MAX_K && c->KH * c->KW > 1;
}

// Floats of one merged group (gi images) in a round: the padded input planes
// and the flat output planes, for the larger of the forward and (3x3 stride
// 1) the data-gradient passes (the filter gradient uses the forward
// geometry: padded input + flat dout).
static size_t group_floats(const conv2d_cfg *c) {
    geo f = fwd_geo(c);
    size_t nf = (size_t)f.cin * f.ps + (size_t)f.cout * f.lr;
    if (!conv3x3_applies(c)) return nf;
    geo b = bwd_geo(c);
    size_t nb = (size_t)b.cin * b.ps + (size_t)b.cout * b.lr;
    return nf > nb ? nf : nb;
}

// Merged groups per round (at least one).
static int round_groups(const conv2d_cfg *c) {
    int gi = merge_count(c), ng = (c->B + gi - 1) / gi;
    size_t g = ROUND_BUDGET / group_floats(c);
    return g < 1 ? 1 : (g > (size_t)ng ? ng : (int)g);
}

// Layout: up to 15 floats to reach a 64-byte boundary, one round of images
// (every plane a multiple of 16 floats, so each starts on a 64-byte boundary:
// aligned loads of dout in the filter gradient), then the packed weights
// (pack_weights).
size_t conv_direct_scratch_floats(const conv2d_cfg *c) {
    return 15 + (size_t)round_groups(c) * group_floats(c) + (size_t)c->OC * c->C * c->KH * c->KW;
}

static float *round_area(float *scratch) {
    return (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
}

// gn images of C planes of H x W (NCHW) -> ceil(gn / gi) groups of C
// planes, plane (m, c) at dst + (m*C + c)*dstride: image m*gi + i's rows at
// (top + h)*Wrow + left + i*cw, zeros everywhere else.
static void place_planes(float *dst, size_t dstride, const float *src, int gn, int C, int H,
                         int W, int top, int left, int Wrow, int gi, int cw) {
    const int64_t n = (int64_t)((gn + gi - 1) / gi) * C;
    #pragma omp parallel for schedule(static) if (PAR(n * (int64_t)dstride))
    for (int64_t k = 0; k < n; k++) {
        const int m = (int)(k / C), ch = (int)(k % C);
        float *d = dst + (size_t)k * dstride;
        memset(d, 0, sizeof(float) * dstride);
        for (int i = 0; i < gi && m * gi + i < gn; i++) {
            const float *s = src + ((size_t)(m * gi + i) * C + ch) * H * W;
            float *di = d + (size_t)top * Wrow + left + (size_t)i * cw;
            for (int h = 0; h < H; h++)
                memcpy(di + (size_t)h * Wrow, s + (size_t)h * W, sizeof(float) * W);
        }
    }
}

// gn images of C input planes -> the zero-padded (merged) planes of g (at
// stride 2 split into the 4 phase planes of each channel; never merged).
static void pad_planes(float *dst, const float *src, int gn, int C, const geo *g) {
    if (g->s == 1) {
        place_planes(dst, g->ps, src, gn, C, g->H, g->W, g->pt, g->pl, g->Wp, g->gi, g->cw);
        return;
    }
    const int64_t n = (int64_t)gn * C;
    const int H = g->H, W = g->W;
    const size_t pq = g->pq;
    #pragma omp parallel for schedule(static) if (PAR(n * (int64_t)g->ps))
    for (int64_t i = 0; i < n; i++) {
        float *d = dst + (size_t)i * g->ps;
        const float *s = src + (size_t)i * H * W;
        memset(d, 0, sizeof(float) * g->ps);
        // Padded column pw = w + pl goes to phase pw & 1, column pw >> 1: the
        // w of one parity form one phase (two strided copies per row).
        const int we = g->pl & 1;   // first w whose padded column is even
        for (int h = 0; h < H; h++) {
            int ph = h + g->pt;
            float *r = d + (size_t)(ph & 1) * 2 * pq + (size_t)(ph >> 1) * g->Wq;
            const float *sr = s + (size_t)h * W;
            float *re = r + (we + g->pl) / 2, *ro = r + pq + (1 - we + g->pl) / 2;
            for (int k = 0; we + 2 * k < W; k++) re[k] = sr[we + 2 * k];
            for (int k = 0; 1 - we + 2 * k < W; k++) ro[k] = sr[1 - we + 2 * k];
        }
    }
}

// gn images of C planes of OH x OW (dout) -> flat (merged) planes of g (row
// stride Wq, zeros in the dropped columns and after the last row).
static void flat_planes(float *dst, const float *src, int gn, int C, const geo *g) {
    place_planes(dst, g->lr, src, gn, C, g->OH, g->OW, 0, 0, g->Wq, g->gi, g->cw);
}

// Flat (merged) output planes of gn images x C channels -> NCHW:
// dst = y + bias (bias may be NULL) or dst += y.
static void unflat_planes(float *dst, const float *y, int gn, int C, const geo *g,
                          const float *bias, int add) {
    const int OH = g->OH, OW = g->OW, Wq = g->Wq, gi = g->gi;
    const int64_t n = (int64_t)((gn + gi - 1) / gi) * C;
    #pragma omp parallel for schedule(static) if (PAR((int64_t)gn * C * OH * OW))
    for (int64_t k = 0; k < n; k++) {
        const int m = (int)(k / C), ch = (int)(k % C);
        const float bv = bias ? bias[ch] : 0.0f;
        for (int i = 0; i < gi && m * gi + i < gn; i++) {
            float *d = dst + ((size_t)(m * gi + i) * C + ch) * OH * OW;
            const float *s = y + (size_t)k * g->lr + (size_t)i * g->cw;
            for (int h = 0; h < OH; h++) {
                float *dr = d + (size_t)h * OW;
                const float *sr = s + (size_t)h * Wq;
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
}

// Forward tile: y[o][16v + j] for o < NB, v < NV = sum over input channels c
// and taps t < nt of w[(c*nt + t)*NB + o] * p[c*ps + off[t] + 16v + j]
// (w packed by pack_weights: the NB weights of one channel and tap adjacent).
#define DEF_FWD_TILE(NB, NV)                                                                  \
    TGT static void fwd_tile_##NB##_##NV(float *y, size_t ys, const float *p, size_t ps,     \
                                         const float *w, int cin, const int *off, int nt) {   \
        __m512 acc[NB][NV];                                                                   \
        _Pragma("GCC unroll 8") for (int o = 0; o < NB; o++)                                  \
            _Pragma("GCC unroll 3") for (int v = 0; v < NV; v++) acc[o][v] =                  \
                _mm512_setzero_ps();                                                          \
        for (int c = 0; c < cin; c++) {                                                       \
            const float *pc = p + (size_t)c * ps, *wc = w + (size_t)c * nt * NB;              \
            _Pragma("GCC unroll 1") for (int t = 0; t < nt; t++) {                            \
                const float *pt = pc + off[t];                                                \
                __m512 x[NV];                                                                 \
                _Pragma("GCC unroll 3") for (int v = 0; v < NV; v++) x[v] =                   \
                    _mm512_loadu_ps(pt + 16 * v);                                             \
                _Pragma("GCC unroll 8") for (int o = 0; o < NB; o++) {                        \
                    __m512 b = _mm512_set1_ps(wc[t * NB + o]);                                \
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
DEF_FWD_TILE(8, 2)
DEF_FWD_TILE(4, 2)
DEF_FWD_TILE(2, 2)
DEF_FWD_TILE(1, 2)
DEF_FWD_TILE(8, 1)
DEF_FWD_TILE(4, 1)
DEF_FWD_TILE(2, 1)
DEF_FWD_TILE(1, 1)
const fwd_tile_fn conv_fwd_tile3[9] = {[8] = fwd_tile_8_3, [4] = fwd_tile_4_3,
                                       [2] = fwd_tile_2_3, [1] = fwd_tile_1_3};
const fwd_tile_fn conv_fwd_tile2[9] = {[8] = fwd_tile_8_2, [4] = fwd_tile_4_2,
                                       [2] = fwd_tile_2_2, [1] = fwd_tile_1_2};
const fwd_tile_fn conv_fwd_tile1[9] = {[8] = fwd_tile_8_1, [4] = fwd_tile_4_1,
                                       [2] = fwd_tile_2_1, [1] = fwd_tile_1_1};

// Output channels are taken in tiles of 8, the last fewer than 8 as 4, 2, 1
// (its set bits). pack_weights lays out each tile's weights as [c][tap][o]:
// wp[(o0*cin*nt + (c*nt + t)*k) + o] for the tile at o0 with k channels,
// with weight (o, c, t) = w[(o*cin + c)*nt + t], or for flip (the data
// gradient: w is (cin, cout, 3, 3), transposed and flipped)
// w[(c*cout + o)*nt + nt - 1 - t].
static void pack_weights(float *wp, const float *w, int cout, int cin, int nt, int flip) {
    // blocks of 8 output channels write disjoint parts of wp
    #pragma omp parallel for schedule(static) if (PAR((int64_t)cout * cin * nt))
    for (int ob = 0; ob < (cout + 7) / 8; ob++) {
        int b0 = ob * 8, nb = cout - b0 < 8 ? cout - b0 : 8, o0 = b0;
        for (int k = 8; k >= 1; k /= 2) {
            if (!(nb & k)) continue;
            float *d = wp + (size_t)o0 * cin * nt;
            // w read in storage order (one channel's taps, or one output
            // channel's whole filter, contiguous), d written k floats apart
            // (with o innermost, each read was a stride of cin*nt or nt floats)
            if (flip) {
                for (int c = 0; c < cin; c++)
                    for (int o = 0; o < k; o++) {
                        const float *src = w + ((size_t)c * cout + o0 + o) * nt;
                        float *dc = d + (size_t)c * nt * k + o;
                        for (int t = 0; t < nt; t++) dc[(size_t)t * k] = src[nt - 1 - t];
                    }
            } else {
                const size_t n = (size_t)cin * nt;
                for (int o = 0; o < k; o++) {
                    const float *src = w + (size_t)(o0 + o) * n;
                    for (size_t j = 0; j < n; j++) d[j * k + o] = src[j];
                }
            }
            o0 += k;
        }
    }
}

// y (gn images x cout flat planes) = correlation of p (gn x cin padded
// planes) with wp (pack_weights). Tasks: (image, chunk of tv vectors of q,
// block of 8 output channels), the blocks of one chunk consecutive (they
// read the same input).
static void correlate(float *y, const float *p, const float *wp, const geo *g, int gn) {
    const int nob = (g->cout + 7) / 8, nv = (int)(g->lr / 16);
    int tv = TASK_VECS;
    while (tv > 3 && (size_t)tv * 64 * g->cin * g->s * g->s > CHUNK_BYTES) tv -= 3;
    const int nqc = (nv + tv - 1) / tv;
    const int64_t tasks = (int64_t)gn * nob * nqc;
    const size_t wo = (size_t)g->cin * g->nt, lr = g->lr, ps = g->ps;
    #pragma omp parallel for schedule(static) \
        if (tasks > 1 && PAR((int64_t)gn * g->cout * (int64_t)lr * g->cin * g->nt / 72))
    for (int64_t t = 0; t < tasks; t++) {
        int ob = (int)(t % nob), qc = (int)(t / nob % nqc), im = (int)(t / ((int64_t)nqc * nob));
        int o0 = ob * 8, nb = g->cout - o0 < 8 ? g->cout - o0 : 8;
        int v0 = qc * tv, v1 = v0 + tv < nv ? v0 + tv : nv;
        const float *pi = p + (size_t)im * g->cin * ps;
        float *yi = y + (size_t)im * g->cout * lr;
        for (int k = 8; k >= 1; k /= 2) {
            if (!(nb & k)) continue;
            int v = v0;
            for (; v + 3 <= v1; v += 3)
                conv_fwd_tile3[k](yi + o0 * lr + 16 * (size_t)v, lr, pi + 16 * (size_t)v, ps,
                                  wp + o0 * wo, g->cin, g->off, g->nt);
            for (; v < v1; v++)
                conv_fwd_tile1[k](yi + o0 * lr + 16 * (size_t)v, lr, pi + 16 * (size_t)v, ps,
                                  wp + o0 * wo, g->cin, g->off, g->nt);
            o0 += k;
        }
    }
}

// Filter-gradient tile (3x3): dw[o*dwo + kh*3 + kw] += sum over images and q
// of d[o][q] * p[q + off[kh*3 + kw]] for NO output channels and one input
// channel (off: the geometry's tap table; kh*Wp + kw at stride 1).
// q runs in chunks of DW_CHUNK vectors; within a chunk the 3 kernel rows take
// turns, each with its NO x 3 vector accumulators in registers (kept between
// chunks in accm, in L1), so the chunk of dout (NO planes) is read from
// memory once for the 9 taps instead of once per row. Per vector of q: NO
// loads of dout and 3 of input feed 3*NO FMAs. d and p point at image 0;
// images are gd / gp floats apart.
// DW_CHUNK 48 (24 KiB of dout for NO = 8, still in L1): each row's turn
// stores and reloads its 3*NO accumulators, and at 16 vectors per turn that
// was ~20% of the tile's samples. f4c4 conv rows fwd+bwd at 1 thread, 48 vs
// 16: 64->64 16x16 0.95 of the time, 8x8 0.93, 32->32 32x32 0.96 (64 and 96
// were no better). The chunk size only splits the q loop: every accumulator
// still sums images, then q, in order (same bits).
#define DW_CHUNK 48
typedef void (*dw_tile_fn)(float *dw, size_t dwo, const float *d, const float *p, size_t gd,
                           size_t gp, size_t lr, const int *off, int gn);
#define DEF_DW_TILE(NO)                                                                       \
    TGT static void dw_tile_##NO(float *dw, size_t dwo, const float *d, const float *p,       \
                                 size_t gd, size_t gp, size_t lr, const int *off, int gn) {   \
        __m512 accm[3][NO][3];                                                                \
        for (int kh = 0; kh < 3; kh++)                                                        \
            for (int o = 0; o < NO; o++)                                                      \
                for (int t = 0; t < 3; t++) accm[kh][o][t] = _mm512_setzero_ps();             \
        for (int im = 0; im < gn; im++) {                                                     \
            const float *di = d + (size_t)im * gd, *pi = p + (size_t)im * gp;                 \
            for (size_t q0 = 0; q0 < lr; q0 += 16 * DW_CHUNK) {                               \
                size_t q1 = q0 + 16 * DW_CHUNK < lr ? q0 + 16 * DW_CHUNK : lr;                \
                for (int kh = 0; kh < 3; kh++) {                                              \
                    const float *pr0 = pi + off[kh * 3], *pr1 = pi + off[kh * 3 + 1];         \
                    const float *pr2 = pi + off[kh * 3 + 2];                                  \
                    __m512 acc[NO][3];                                                        \
                    _Pragma("GCC unroll 8") for (int o = 0; o < NO; o++)                      \
                        _Pragma("GCC unroll 3") for (int t = 0; t < 3; t++) acc[o][t] =       \
                            accm[kh][o][t];                                                   \
                    for (size_t q = q0; q < q1; q += 16) {                                    \
                        __m512 x[3] = {_mm512_loadu_ps(pr0 + q), _mm512_loadu_ps(pr1 + q),   \
                                       _mm512_loadu_ps(pr2 + q)};                             \
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
                  gd, gp, g->lr, g->off, gn);
            o0 += k;
        }
    }
}

void conv_direct_forward(float *out, const float *inp, const float *weight, const float *bias,
                         float *scratch, const conv2d_cfg *c) {
    CHECK(conv_direct_fwd_applies(c));
    const geo g = fwd_geo(c);
    const int RG = round_groups(c), G = RG * g.gi;
    float *P = round_area(scratch), *Y = P + (size_t)RG * g.cin * g.ps;
    float *wp = P + (size_t)RG * group_floats(c);
    pack_weights(wp, weight, c->OC, c->C, g.nt, 0);
    for (int b0 = 0; b0 < c->B; b0 += G) {
        int gn = c->B - b0 < G ? c->B - b0 : G, ng = (gn + g.gi - 1) / g.gi;
        pad_planes(P, inp + (size_t)b0 * c->C * c->H * c->W, gn, c->C, &g);
        correlate(Y, P, wp, &g, ng);
        unflat_planes(out + (size_t)b0 * c->OC * g.OH * g.OW, Y, gn, c->OC, &g, bias, 0);
    }
}

int conv_direct_dw_applies(const conv2d_cfg *c) {
    return has_avx512() && c->KH == 3 && c->KW == 3 && c->stride == 2;
}

// dweight += the filter gradient, round by round: the padded input and the
// flat dout of each round, then filter_grad (3x3 at stride 1 or 2).
static void filter_grad_rounds(float *dweight, const float *dout, const float *inp,
                               float *scratch, const conv2d_cfg *c) {
    const geo f = fwd_geo(c);
    const int RG = round_groups(c), G = RG * f.gi, C = c->C, OC = c->OC;
    const size_t in_img = (size_t)C * c->H * c->W, out_img = (size_t)OC * f.OH * f.OW;
    float *P = round_area(scratch), *D = P + (size_t)RG * C * f.ps;
    for (int b0 = 0; b0 < c->B; b0 += G) {
        int gn = c->B - b0 < G ? c->B - b0 : G, ng = (gn + f.gi - 1) / f.gi;
        pad_planes(P, inp + (size_t)b0 * in_img, gn, C, &f);
        flat_planes(D, dout + (size_t)b0 * out_img, gn, OC, &f);
        filter_grad(dweight, D, P, &f, ng);
    }
}

void conv_direct_filter_grad(float *dweight, const float *dout, const float *inp, float *scratch,
                             const conv2d_cfg *c) {
    CHECK(conv_direct_dw_applies(c));
    filter_grad_rounds(dweight, dout, inp, scratch, c);
}

// The filter gradient over all rounds first, then the data gradient round by
// round (each reuses the whole round area; the rounds' order, and so the
// bits, are those of one interleaved loop).
void conv3x3_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                      const float *weight, float *scratch, const conv2d_cfg *c, int set) {
    CHECK(conv3x3_applies(c));
    if (dweight) filter_grad_rounds(dweight, dout, inp, scratch, c);
    if (!dinp) return;
    const geo b = bwd_geo(c);
    const int RG = round_groups(c), G = RG * b.gi, C = c->C, OC = c->OC;
    const size_t in_img = (size_t)C * c->H * c->W, out_img = (size_t)OC * b.H * b.W;
    float *Q = round_area(scratch), *Y = Q + (size_t)RG * OC * b.ps;
    float *wt = Q + (size_t)RG * group_floats(c);
    pack_weights(wt, weight, C, OC, 9, 1);
    for (int b0 = 0; b0 < c->B; b0 += G) {
        int gn = c->B - b0 < G ? c->B - b0 : G, ng = (gn + b.gi - 1) / b.gi;
        pad_planes(Q, dout + (size_t)b0 * out_img, gn, OC, &b);
        correlate(Y, Q, wt, &b, ng);
        unflat_planes(dinp + (size_t)b0 * in_img, Y, gn, C, &b, NULL, !set);
    }
}
