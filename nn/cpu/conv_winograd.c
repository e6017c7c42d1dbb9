// conv_winograd.c: 3x3 stride-1 convolutions by Winograd F(2x2, 3x3)
// (nn/cpu/conv_winograd.h), for the forward and the data gradient (a
// forward over dout with the weights transposed and flipped, padded by
// 2 - pad). Each 2x2 block of outputs ("tile") comes from the 4x4 block of
// (zero-padded) input at the same corner:
//   Y = A^T [ sum over c of U[o][c] .* V[c] ] A,  U = G g G^T,  V = B^T d B,
// 16 products per tile and channel pair instead of 36 for the direct sum
// (2.25x fewer multiplies; the transforms are adds and halvings).
//
// Layout: tiles are numbered over (image, tile row, tile column). A task
// owns a run of them (whole tile rows, or pieces of long ones; two rows per
// 16 lanes where a row has <= 8 tiles): it transforms each tile's 4x4 input
// straight from NCHW (row loads split into even / odd columns by permutes;
// masked loads read the padding and the image edges as zeros) into
// V[xi][c][tile] (xi < 16) in its own scratch slot, runs the 16
// channel-sum products with the direct kernels' register tiles
// (conv_fwd_tile3/2/1 with a 1-tap "kernel": 8 output channels x up to 3
// vectors of tiles), then transforms back, interleaving each tile's two
// output columns into the NCHW rows (masked at odd edges). A slot holds at
// most ~1 MiB (V and the products M), so it stays in L2.
//
// Bits: every output is computed from its own tile alone, summing over input
// channels in order with the same FMAs whichever task or tile width holds
// it, so results do not depend on the thread count or the task split (the
// task split is chosen from the thread count, for balance only). They
// differ from the direct kernels' by rounding (the transforms reassociate).
#include "nn/cpu/conv_winograd.h"

#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "core/base.h"
#include "nn/cpu/conv_direct.h"
#include "nn/cpu/par.h"

#define TGT __attribute__((target("avx512f")))

// Below this many input or output channels the transforms cost more than the
// products save (conv_in 1 -> 32: the direct kernel is far ahead); below
// 16 output columns (8 tiles a row: half of each vector idle in the
// transforms) WINO_MIN_CH_NARROW. Measured fwd+bwd at 1 thread, batch 8,
// against the direct kernels: 16 -> 16 at 16x16 0.93x the time and 32x32
// 0.94x, but at 8x8 16 -> 16 1.16x, 24 -> 24 1.05x, 32 -> 32 1.03x, and
// 64 -> 64 0.87x, 128 -> 128 0.81x.
#define WINO_MIN_CH 16
#define WINO_MIN_CH_NARROW 48
// Scratch slots (threads that can work at once); the thread count only
// decides how many are used.
#define WINO_SLOTS 8
// Bytes of one slot at most (V and M of its tiles) and tiles per task.
#define SLOT_BYTES ((size_t)1 << 20)
#define TASK_TILES_MAX 96
// The 16 planes (xi) of V and M are one cache line further apart than
// their size: sizes such as 64 channels x 96 tiles are multiples of 4 KiB,
// and 16 streams at such a stride fall into the same L1 sets (f4c4 conv
// rows fwd+bwd at 1 thread: 0.85-0.93x the time with the skew).
#define PLANE_SKEW 16

static int force_off;

void conv_wino_force_off(int off) { force_off = off; }

int conv_wino_shape_ok(const conv2d_cfg *c) {
    static int avx512 = -1;
    if (avx512 < 0) avx512 = __builtin_cpu_supports("avx512f") ? 1 : 0;
    if (!avx512 || c->KH != 3 || c->KW != 3 || c->stride != 1) return 0;
    if (c->pad_top > 2 || c->pad_bottom > 2 || c->pad_left > 2 || c->pad_right > 2) return 0;
    const int cmin = c->C < c->OC ? c->C : c->OC;
    return cmin >= (conv2d_out_w(c) >= 16 ? WINO_MIN_CH : WINO_MIN_CH_NARROW);
}

int conv_wino_applies(const conv2d_cfg *c) { return !force_off && conv_wino_shape_ok(c); }

// One Winograd pass: cin input planes of H x W read at padding (pt, pl),
// cout output planes of OH x OW, TH x TW tiles per image. Work unit: a
// "piece", up to PW consecutive tiles of one tile row, or where TW <= 8 the
// tiles of two consecutive tile rows (RP = 2: one vector holds both rows,
// each in 8 lanes); a task takes up to ppt consecutive pieces (at most tmax
// tiles), stored side by side.
typedef struct {
    int B, cin, cout, H, W, pt, pl, OH, OW, TH, TW, RP, THP, PW, ppr, ppt, tmax;
    int64_t np;
} wgeo;

static wgeo wgeo_make(int B, int cin, int cout, int H, int W, int pt, int pl, int OH, int OW,
                      size_t bytes, int tiles_max) {
    wgeo g = {.B = B, .cin = cin, .cout = cout, .H = H, .W = W, .pt = pt, .pl = pl,
              .OH = OH, .OW = OW, .TH = (OH + 1) / 2, .TW = (OW + 1) / 2};
    // tiles per task: V and M (16 values per tile and channel) within
    // bytes, a multiple of 16, 16 to tiles_max
    size_t t = bytes / ((size_t)16 * (cin + cout) * sizeof(float)) / 16 * 16;
    g.tmax = t < 16 ? 16 : (t > (size_t)tiles_max ? tiles_max : (int)t);
    g.RP = g.TW <= 8 ? 2 : 1;
    g.THP = (g.TH + g.RP - 1) / g.RP;
    g.PW = g.TW < g.tmax ? g.TW : g.tmax;
    g.ppr = (g.TW + g.PW - 1) / g.PW;
    g.ppt = g.tmax / (g.RP * g.PW);
    g.np = (int64_t)B * g.THP * g.ppr;
    return g;
}

static size_t slot_floats(const wgeo *g) {
    return (size_t)16 * ((g->cin + g->cout) * g->tmax + 2 * PLANE_SKEW);
}

static wgeo fwd_wgeo(const conv2d_cfg *c) {
    return wgeo_make(c->B, c->C, c->OC, c->H, c->W, c->pad_top, c->pad_left, conv2d_out_h(c),
                     conv2d_out_w(c), SLOT_BYTES, TASK_TILES_MAX);
}

static wgeo bwd_wgeo(const conv2d_cfg *c) {
    return wgeo_make(c->B, c->OC, c->C, conv2d_out_h(c), conv2d_out_w(c), 2 - c->pad_top,
                     2 - c->pad_left, c->H, c->W, SLOT_BYTES, TASK_TILES_MAX);
}

// Layout: up to 15 floats to a 64-byte boundary, the transformed weights
// (16 * cin * cout), then WINO_SLOTS slots (each a multiple of 16 floats).
size_t conv_wino_scratch_floats(const conv2d_cfg *c) {
    if (!conv_wino_shape_ok(c)) return 0;
    wgeo f = fwd_wgeo(c), b = bwd_wgeo(c);
    size_t sf = slot_floats(&f), sb = slot_floats(&b);
    return 15 + (size_t)16 * c->C * c->OC + (size_t)WINO_SLOTS * (sf > sb ? sf : sb);
}

// U[xi] (16 planes of cout x cin, each packed for the register tiles: the
// block of k output channels at o0 holds [c][o - o0] at o0*cin) from weight
// (cout, cin, 3, 3), or for flip from weight (cin, cout, 3, 3) transposed and
// flipped (the data gradient). U = G g G^T, G = [1 0 0; .5 .5 .5; .5 -.5 .5;
// 0 0 1]. One block and input channel at a time, the block's channels in
// the lanes (gathered; stored k adjacent floats per xi).
TGT static void weights_block(float *U, const float *w, int cout, int cin, int flip, int o0,
                              int k) {
    const size_t plane = (size_t)cout * cin;
    const __mmask16 mk = (__mmask16)((1u << k) - 1);
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i ix = _mm512_mullo_epi32(lane, _mm512_set1_epi32(flip ? 9 : cin * 9));
    const __m512 half = _mm512_set1_ps(0.5f);
    for (int c = 0; c < cin; c++) {
        const float *src = flip ? w + ((size_t)c * cout + o0) * 9 : w + ((size_t)o0 * cin + c) * 9;
        __m512 g[9];
        for (int t = 0; t < 9; t++)
            g[flip ? 8 - t : t] =
                _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mk, ix, src + t, 4);
        __m512 a[4][3];   // G g
        for (int j = 0; j < 3; j++) {
            a[0][j] = g[j];
            a[1][j] = _mm512_mul_ps(half, _mm512_add_ps(_mm512_add_ps(g[j], g[3 + j]), g[6 + j]));
            a[2][j] = _mm512_mul_ps(half, _mm512_add_ps(_mm512_sub_ps(g[j], g[3 + j]), g[6 + j]));
            a[3][j] = g[6 + j];
        }
        float *dst = U + (size_t)o0 * cin + (size_t)c * k;
        for (int i = 0; i < 4; i++) {   // (G g) G^T
            __m512 u[4] = {
                a[i][0],
                _mm512_mul_ps(half, _mm512_add_ps(_mm512_add_ps(a[i][0], a[i][1]), a[i][2])),
                _mm512_mul_ps(half, _mm512_add_ps(_mm512_sub_ps(a[i][0], a[i][1]), a[i][2])),
                a[i][2]};
            for (int j = 0; j < 4; j++)
                _mm512_mask_storeu_ps(dst + (size_t)(i * 4 + j) * plane, mk, u[j]);
        }
    }
}

static void transform_weights(float *U, const float *w, int cout, int cin, int flip) {
    const int nob = (cout + 7) / 8;
    #pragma omp parallel for schedule(static) if (PAR((int64_t)cout * cin * 16))
    for (int ob = 0; ob < nob; ob++) {
        int o0 = ob * 8, nb = cout - o0 < 8 ? cout - o0 : 8;
        for (int k = 8; k >= 1; k /= 2) {
            if (!(nb & k)) continue;
            weights_block(U, w, cout, cin, flip, o0, k);
            o0 += k;
        }
    }
}

// Lanes 0..15 of the even / odd elements of the 32 floats (a, b).
TGT static __m512 evens(__m512 a, __m512 b) {
    const __m512i i = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    return _mm512_permutex2var_ps(a, i, b);
}
TGT static __m512 odds(__m512 a, __m512 b) {
    const __m512i i = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    return _mm512_permutex2var_ps(a, i, b);
}

// The lanes i < 16 with 0 <= col + i < n (columns inside the row).
static __mmask16 cols_mask(int col, int n) {
    int lo = col < 0 ? -col : 0, hi = n - col < 16 ? n - col : 16;
    if (hi <= lo) return 0;
    return (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
}

// One piece: tiles (img, th + j, tw0 .. tw0 + w - 1) for j < nr, w <= 16
// (a longer piece goes 16 tiles at a time; nr = 2 only for w <= 8).
// V[xi*vs + c*ls] (nr*w floats) = B^T d B for every input channel, B^T =
// [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]: first along rows on the even /
// odd columns (tile tw reads padded columns 2tw .. 2tw+3; with nr = 2 the
// second tile row's in lanes 8..15), then down the 4 rows.
TGT static void input_piece(float *V, size_t vs, size_t ls, const float *x, const wgeo *g,
                            int img, int th, int nr, int tw0, int w) {
    const size_t plane = (size_t)g->H * g->W;
    const int n = nr * w;
    const __mmask16 ms = (__mmask16)((1u << n) - 1);
    // lanes holding tiles (compressed to the first n when nr = 2 and w < 8)
    const __mmask16 mt = (__mmask16)(nr == 2 ? ((1u << w) - 1) * 0x101u : (1u << w) - 1);
    const int squeeze = nr == 2 && w < 8;
    const int col = 2 * tw0 - g->pl;
    // row + col + {0, 16, 2, 18}: 16 columns each, zeros outside the image
    const __mmask16 ma = cols_mask(col, g->W), mb = cols_mask(col + 16, g->W);
    const __mmask16 ma2 = cols_mask(col + 2, g->W), mb2 = cols_mask(col + 18, g->W);
    const float *xi = x + (size_t)img * g->cin * plane;
    for (int c = 0; c < g->cin; c++) {
        const float *xc = xi + (size_t)c * plane;
        __m512 h[4][4];
        for (int r = 0; r < 4; r++) {
            int ih = 2 * th - g->pt + r, ih2 = ih + 2;
            int in1 = ih >= 0 && ih < g->H, in2 = nr == 2 && ih2 >= 0 && ih2 < g->H;
            __m512 a, b, a2, b2;
            if (nr == 2) {   // b: the second tile row's input row, same columns
                const float *r1 = xc + (ptrdiff_t)ih * g->W + col;
                const float *r2 = xc + (ptrdiff_t)ih2 * g->W + col;
                a = _mm512_maskz_loadu_ps(in1 ? ma : 0, r1);
                a2 = _mm512_maskz_loadu_ps(in1 ? ma2 : 0, r1 + 2);
                b = _mm512_maskz_loadu_ps(in2 ? ma : 0, r2);
                b2 = _mm512_maskz_loadu_ps(in2 ? ma2 : 0, r2 + 2);
            } else {
                if (!in1) {
                    for (int k = 0; k < 4; k++) h[r][k] = _mm512_setzero_ps();
                    continue;
                }
                const float *row = xc + (size_t)ih * g->W + col;
                a = _mm512_maskz_loadu_ps(ma, row);
                b = _mm512_maskz_loadu_ps(mb, row + 16);
                a2 = _mm512_maskz_loadu_ps(ma2, row + 2);
                b2 = _mm512_maskz_loadu_ps(mb2, row + 18);
            }
            __m512 e = evens(a, b), o = odds(a, b), e1 = evens(a2, b2), o1 = odds(a2, b2);
            h[r][0] = _mm512_sub_ps(e, e1);
            h[r][1] = _mm512_add_ps(o, e1);
            h[r][2] = _mm512_sub_ps(e1, o);
            h[r][3] = _mm512_sub_ps(o, o1);
        }
        float *vc = V + (size_t)c * ls;
        for (int k = 0; k < 4; k++) {
            __m512 v[4] = {_mm512_sub_ps(h[0][k], h[2][k]), _mm512_add_ps(h[1][k], h[2][k]),
                           _mm512_sub_ps(h[2][k], h[1][k]), _mm512_sub_ps(h[1][k], h[3][k])};
            for (int r = 0; r < 4; r++) {
                if (squeeze) v[r] = _mm512_maskz_compress_ps(mt, v[r]);
                _mm512_mask_storeu_ps(vc + (r * 4 + k) * vs, ms, v[r]);
            }
        }
    }
}

// One piece back: y (+)= A^T M A (+ bias) for every output channel,
// A^T = [1 1 1 0; 0 1 -1 -1]; M[xi*ms + o*ls] (nr*w floats, laid out as
// input_piece's V) the products of channel o. Down the 4 rows first, then
// along them; the two output columns of each tile are interleaved into the
// output rows 2th and 2th + 1 (with nr = 2 also 2th + 2, 2th + 3 from lanes
// 8..15).
TGT static void output_piece(float *y, const float *M, size_t ms, size_t ls, const float *bias,
                             int add, const wgeo *g, int img, int th, int nr, int tw0, int w) {
    const size_t plane = (size_t)g->OH * g->OW;
    const int nt = nr * w;
    const __mmask16 ml = (__mmask16)((1u << nt) - 1);
    const __mmask16 mt = (__mmask16)(nr == 2 ? ((1u << w) - 1) * 0x101u : (1u << w) - 1);
    const int spread = nr == 2 && w < 8;
    const __m512i ilo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i ihi =
        _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    const int col = 2 * tw0;
    // output columns col .. col + 2w - 1 inside OW
    int n = g->OW - col < 2 * w ? g->OW - col : 2 * w;
    const __mmask16 m0 = (__mmask16)(n >= 16 ? 0xffff : (1u << n) - 1);
    const __mmask16 m1 = (__mmask16)(n <= 16 ? 0 : (n >= 32 ? 0xffff : (1u << (n - 16)) - 1));
    // output rows: lo of row i at 2th + i, hi (nr = 2) at 2th + 2 + i
    float *yi = y + (size_t)img * g->cout * plane + (size_t)2 * th * g->OW + col;
    for (int o = 0; o < g->cout; o++) {
        const float *mo = M + (size_t)o * ls;
        __m512 s[2][4];
        for (int k = 0; k < 4; k++) {
            __m512 a[4];
            for (int r = 0; r < 4; r++) {
                a[r] = _mm512_maskz_loadu_ps(ml, mo + (r * 4 + k) * ms);
                if (spread) a[r] = _mm512_maskz_expand_ps(mt, a[r]);
            }
            s[0][k] = _mm512_add_ps(_mm512_add_ps(a[0], a[1]), a[2]);
            s[1][k] = _mm512_sub_ps(_mm512_sub_ps(a[1], a[2]), a[3]);
        }
        const __m512 bv = _mm512_set1_ps(bias ? bias[o] : 0.0f);
        float *yo = yi + (size_t)o * plane;
        for (int i = 0; i < 2; i++) {
            __m512 r0 = _mm512_add_ps(_mm512_add_ps(s[i][0], s[i][1]), s[i][2]);
            __m512 r1 = _mm512_sub_ps(_mm512_sub_ps(s[i][1], s[i][2]), s[i][3]);
            __m512 v[2] = {_mm512_permutex2var_ps(r0, ilo, r1),
                           _mm512_permutex2var_ps(r0, ihi, r1)};
            float *dst[2];
            __mmask16 mk[2];
            dst[0] = 2 * th + i < g->OH ? yo + (size_t)i * g->OW : NULL;
            mk[0] = m0;
            if (nr == 2) {
                dst[1] = 2 * th + 2 + i < g->OH ? yo + (size_t)(2 + i) * g->OW : NULL;
                mk[1] = m0;
            } else {
                dst[1] = dst[0] && m1 ? dst[0] + 16 : NULL;
                mk[1] = m1;
            }
            for (int j = 0; j < 2; j++) {
                if (!dst[j]) continue;
                __m512 val = v[j];
                if (add) val = _mm512_add_ps(_mm512_maskz_loadu_ps(mk[j], dst[j]), val);
                else if (bias) val = _mm512_add_ps(val, bv);
                _mm512_mask_storeu_ps(dst[j], mk[j], val);
            }
        }
    }
}

// Piece q of the pass: image, first tile row, tile rows (1 or 2), first
// tile and width.
static void piece_at(const wgeo *g, int64_t q, int *img, int *th, int *nr, int *tw0, int *w) {
    int64_t row = q / g->ppr;
    int seg = (int)(q % g->ppr);
    *img = (int)(row / g->THP);
    *th = (int)(row % g->THP) * g->RP;
    *nr = g->TH - *th < g->RP ? g->TH - *th : g->RP;
    *tw0 = seg * g->PW;
    *w = g->TW - *tw0 < g->PW ? g->TW - *tw0 : g->PW;
}

// Lanes ntl .. ls - 1 (past the last tile) of the n rows of ls floats in
// each of the 16 planes vs floats apart: zeros, not stale floats.
static void zero_tails(float *P, size_t vs, int n, size_t ls, int ntl) {
    if ((size_t)ntl == ls) return;
    for (int xi = 0; xi < 16; xi++)
        for (int r = 0; r < n; r++)
            memset(P + xi * vs + r * ls + ntl, 0, sizeof(float) * (ls - ntl));
}

// One task: pieces [q0, q1) through all three stages in slot.
TGT static void wino_task(float *y, const float *x, const float *U, const float *bias, int add,
                          const wgeo *g, int64_t q0, int64_t q1, float *slot) {
    static const int off0[1] = {0};
    const int cin = g->cin, cout = g->cout;
    int ntl = 0;
    for (int64_t q = q0; q < q1; q++) {
        int img, th, nr, tw0, w;
        piece_at(g, q, &img, &th, &nr, &tw0, &w);
        ntl += nr * w;
    }
    const int nv = (ntl + 15) / 16;
    const size_t ls = (size_t)nv * 16, vs = cin * ls + PLANE_SKEW, ms = cout * ls + PLANE_SKEW;
    float *V = slot, *M = slot + 16 * vs;
    zero_tails(V, vs, cin, ls, ntl);
    for (int64_t q = q0, lo = 0; q < q1; q++) {
        int img, th, nr, tw0, w;
        piece_at(g, q, &img, &th, &nr, &tw0, &w);
        for (int t = 0; t < w; t += 16)
            input_piece(V + lo + t, vs, ls, x, g, img, th, nr, tw0 + t, w - t < 16 ? w - t : 16);
        lo += nr * w;
    }
    const size_t up = (size_t)cout * cin;
    for (int xi = 0; xi < 16; xi++) {
        const float *Vx = V + xi * vs, *Ux = U + xi * up;
        float *Mx = M + xi * ms;
        for (int o0 = 0; o0 < cout;) {
            int nb = cout - o0 < 8 ? cout - o0 : 8;
            for (int k = 8; k >= 1; k /= 2) {
                if (!(nb & k)) continue;
                // 3-vector tiles, the rest as 2 + 2, 2 or 1
                int n3 = nv % 3 == 1 && nv > 1 ? (nv - 4) / 3 : nv / 3;
                for (int v = 0; v < nv;) {
                    int step = v < 3 * n3 ? 3 : (nv - v >= 2 ? 2 : 1);
                    const fwd_tile_fn f = step == 3 ? conv_fwd_tile3[k]
                                          : step == 2 ? conv_fwd_tile2[k] : conv_fwd_tile1[k];
                    f(Mx + o0 * ls + 16 * (size_t)v, ls, Vx + 16 * (size_t)v, ls,
                      Ux + (size_t)o0 * cin, cin, off0, 1);
                    v += step;
                }
                o0 += k;
            }
        }
    }
    for (int64_t q = q0, lo = 0; q < q1; q++) {
        int img, th, nr, tw0, w;
        piece_at(g, q, &img, &th, &nr, &tw0, &w);
        for (int t = 0; t < w; t += 16)
            output_piece(y, M + lo + t, ms, ls, bias, add, g, img, th, nr, tw0 + t,
                         w - t < 16 ? w - t : 16);
        lo += nr * w;
    }
}

static float *aligned(float *p) { return (float *)(((uintptr_t)p + 63) & ~(uintptr_t)63); }

// y (+)= Winograd correlation of x with the weights transformed into U.
static void wino_run(float *y, const float *x, const float *U, const float *bias, int add,
                     const wgeo *g, float *slots) {
    int nthr = omp_get_max_threads();
    if (nthr > WINO_SLOTS) nthr = WINO_SLOTS;
    // Tasks of at most ppt pieces, at least one per thread where there are
    // enough pieces, pieces spread evenly (balance only: bits never depend
    // on the split).
    int64_t ntask = (g->np + g->ppt - 1) / g->ppt;
    if (ntask < nthr) ntask = g->np < nthr ? g->np : nthr;
    if (ntask < nthr) nthr = (int)ntask;
    const size_t sf = slot_floats(g);
    const int64_t work = g->np * g->RP * g->PW * g->cin * g->cout;
    #pragma omp parallel num_threads(nthr) if (nthr > 1 && PAR(work / 16))
    {
        float *slot = slots + (size_t)omp_get_thread_num() * sf;
        #pragma omp for schedule(static)
        for (int64_t t = 0; t < ntask; t++)
            wino_task(y, x, U, bias, add, g, t * g->np / ntask, (t + 1) * g->np / ntask, slot);
    }
}

// The forward (bwd 0) or the data gradient (bwd 1: over dout, weights
// transposed and flipped, added to y unless set).
static void wino_pass(float *y, const float *x, const float *weight, const float *bias, int bwd,
                      int set, float *scratch, const conv2d_cfg *c) {
    CHECK(conv_wino_applies(c));
    const wgeo g = bwd ? bwd_wgeo(c) : fwd_wgeo(c);
    float *U = aligned(scratch), *slots = U + (size_t)16 * c->C * c->OC;
    transform_weights(U, weight, g.cout, g.cin, bwd);
    wino_run(y, x, U, bias, bwd && !set, &g, slots);
}

void conv_wino_forward(float *out, const float *inp, const float *weight, const float *bias,
                       float *scratch, const conv2d_cfg *c) {
    wino_pass(out, inp, weight, bias, 0, 0, scratch, c);
}

void conv_wino_backward_data(float *dinp, const float *dout, const float *weight,
                             float *scratch, const conv2d_cfg *c, int set) {
    wino_pass(dinp, dout, weight, NULL, 1, set, scratch, c);
}

