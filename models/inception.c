// inception.c: see inception.h.
//
// The network is written once, as code that runs in two modes: "declare"
// (at create: adds each BasicConv2d's parameters under pytorch-fid's names
// and records the largest buffer and im2col scratch each role needs) and
// "run" (forward: the same calls execute, taking the units in the same
// order). Feature maps are NCHW batches; a Mixed block's branches write into
// channel slices of the block's output (staged, then scattered per image).
#include "models/inception.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "nn/activation.h"
#include "nn/conv.h"
#include "nn/matmul.h"
#include "nn/pool.h"
#include "nn/safetensors.h"

#define BN_EPS 1e-3

typedef struct {
    int w, g, b, mean, var;      // param indices: conv.weight, bn.{weight,bias,running_*}
    int C, OC, kh, kw, stride, ph, pw;
    float *fw, *fb;              // folded weight (OC, C, kh, kw) and bias (OC)
} unit;

enum { BUF_P, BUF_Q, BUF_T1, BUF_T2, BUF_T3, BUF_S, NBUF };

struct inception {
    param_table pt;
    unit *u;
    int nu, capu;
    int fc;                      // fc.weight's param index
    int Bmax;
    size_t need[NBUF];           // floats per image each role needs
    size_t scratch_n;            // im2col scratch for Bmax images
    float *buf[NBUF], *scratch, *resized, *pool;
};

typedef struct {
    inception *m;
    int run, k, B;               // mode, unit cursor, images in this pass
    float *spatial;              // run: where Mixed_6d's branch1x1 goes (B, 2023) or NULL
} ctx;

// A feature map (B, C, H, W) in buffer role `role` (pointer valid in run mode).
typedef struct { float *p; int role, C, H, W; } fmap;

static void need(inception *m, int role, size_t floats) {
    if (floats > m->need[role]) m->need[role] = floats;
}

static fmap fm(ctx *c, int role, int C, int H, int W) {
    need(c->m, role, (size_t)C * H * W);
    return (fmap){c->run ? c->m->buf[role] : NULL, role, C, H, W};
}

// BasicConv2d `name` on src into channels [off, off + OC) of dst (dst->C
// total; dst->H, W must be the conv's output size). Returns the OC.
static int bconv_act(ctx *c, const char *name, const fmap *src, fmap *dst, int off, int OC,
                     int kh, int kw, int stride, int ph, int pw, int relu) {
    inception *m = c->m;
    conv2d_cfg cfg = {c->run ? c->B : m->Bmax, src->C, src->H, src->W, OC, kh, kw, stride,
                      ph, ph, pw, pw};
    int OH = conv2d_out_h(&cfg), OW = conv2d_out_w(&cfg);
    CHECK(OH == dst->H && OW == dst->W && off + OC <= dst->C);
    int direct = off == 0 && OC == dst->C;   // the conv's output is the whole map
    if (!c->run) {
        if (m->nu == m->capu) {
            m->capu = m->capu ? 2 * m->capu : 64;
            m->u = realloc(m->u, sizeof(unit) * m->capu);
            CHECK(m->u);
        }
        unit *u = &m->u[m->nu++];
        *u = (unit){0};
        char p[PARAM_NAME_MAX];
        int64_t ws[4] = {OC, src->C, kh, kw}, vs[1] = {OC};
        snprintf(p, sizeof p, "%s.conv.weight", name);
        u->w = m->pt.count;
        param_add(&m->pt, p, 4, ws);
        static const char *bn[4] = {"weight", "bias", "running_mean", "running_var"};
        for (int i = 0; i < 4; i++) {
            snprintf(p, sizeof p, "%s.bn.%s", name, bn[i]);
            param_add(&m->pt, p, 1, vs);
        }
        u->g = u->w + 1; u->b = u->w + 2; u->mean = u->w + 3; u->var = u->w + 4;
        u->C = src->C; u->OC = OC; u->kh = kh; u->kw = kw; u->stride = stride;
        u->ph = ph; u->pw = pw;
        size_t s = conv2d_scratch_floats(&cfg);
        if (s > m->scratch_n) m->scratch_n = s;
        if (!direct) need(m, BUF_S, (size_t)OC * OH * OW);
        return OC;
    }
    unit *u = &m->u[c->k++];
    CHECK(u->C == src->C && u->OC == OC && u->kh == kh && u->kw == kw);
    size_t ohw = (size_t)OH * OW, n = (size_t)c->B * OC * ohw;
    float *o = direct ? dst->p : m->buf[BUF_S];
    conv2d_forward(o, src->p, u->fw, u->fb, m->scratch, &cfg);
    // ReLU, fused with the copy into the channel slice when there is one
    // (one pass over the output instead of two; relu_forward is vectorised).
    if (direct) {
        if (relu) relu_forward(o, o, (int64_t)n);
    } else
        for (int b = 0; b < c->B; b++)
            relu_forward(dst->p + ((size_t)b * dst->C + off) * ohw, o + (size_t)b * OC * ohw,
                         (int64_t)OC * ohw);
    return OC;
}

static int bconv(ctx *c, const char *name, const fmap *src, fmap *dst, int off, int OC, int kh,
                 int kw, int stride, int ph, int pw) {
    return bconv_act(c, name, src, dst, off, OC, kh, kw, stride, ph, pw, 1);
}

// The pool branch of blocks A, C and E_1: average pool 3x3 (stride 1, pad 1,
// padding not counted), then BasicConv2d 1x1 `name` into channels
// [off, off + OC) of dst. Computed in the other order, the 1x1 conv (BN
// folded, no ReLU yet) first and the pool after: both are linear and the
// pool's weights sum to 1, so pool(W x + b) = W pool(x) + b up to rounding,
// and the pool then runs over the branch's OC channels instead of x's
// (e.g. 192 instead of 768 in blocks C). The ReLU comes last, as before.
static void avgpool_conv(ctx *c, const char *name, const fmap *x, fmap *dst, int off, int OC) {
    fmap t = fm(c, BUF_T3, OC, x->H, x->W);
    bconv_act(c, name, x, &t, 0, OC, 1, 1, 1, 0, 0, 0);
    if (!c->run) return;
    size_t hw = (size_t)x->H * x->W;
    for (int b = 0; b < c->B; b++) {
        float *d = dst->p + ((size_t)b * dst->C + off) * hw;
        avgpool2d_forward(d, t.p + (size_t)b * OC * hw, 1, OC, x->H, x->W, 3, 1, 1, 0);
        relu_forward(d, d, (int64_t)OC * hw);
    }
}

// Convenience: a conv whose output is a whole new map in role `role`.
static fmap conv_to(ctx *c, const char *name, const fmap *src, int role, int OC, int kh, int kw,
                    int stride, int ph, int pw) {
    int OH = (src->H + 2 * ph - kh) / stride + 1, OW = (src->W + 2 * pw - kw) / stride + 1;
    fmap d = fm(c, role, OC, OH, OW);
    bconv(c, name, src, &d, 0, OC, kh, kw, stride, ph, pw);
    return d;
}

static fmap pool_to(ctx *c, const fmap *src, int role, int is_max, int k, int stride, int pad,
                    int count_pad) {
    int OH = pool2d_out_size(src->H, k, stride, pad), OW = pool2d_out_size(src->W, k, stride, pad);
    fmap d = fm(c, role, src->C, OH, OW);
    if (c->run) {
        if (is_max) maxpool2d_forward(d.p, src->p, c->B, src->C, src->H, src->W, k, stride, pad);
        else avgpool2d_forward(d.p, src->p, c->B, src->C, src->H, src->W, k, stride, pad, count_pad);
    }
    return d;
}

// Copies a pooled map's channels into dst at off (InceptionB/D's pool branch).
static void put(ctx *c, const fmap *src, fmap *dst, int off) {
    if (!c->run) return;
    size_t hw = (size_t)src->H * src->W;
    for (int b = 0; b < c->B; b++)
        memcpy(dst->p + ((size_t)b * dst->C + off) * hw, src->p + (size_t)b * src->C * hw,
               sizeof(float) * src->C * hw);
}

static void name(char *out, const char *block, const char *branch) {
    snprintf(out, PARAM_NAME_MAX, "%s.%s", block, branch);
}

// FIDInceptionA: 1x1 64 | 1x1 48, 5x5 64 | 1x1 64, 3x3 96, 3x3 96 |
// avgpool 3 (no pad count), 1x1 pf.
static fmap block_a(ctx *c, const char *b, const fmap *x, int out_role, int pf) {
    char n[PARAM_NAME_MAX];
    fmap y = fm(c, out_role, 64 + 64 + 96 + pf, x->H, x->W);
    int off = 0;
    name(n, b, "branch1x1"); off += bconv(c, n, x, &y, off, 64, 1, 1, 1, 0, 0);
    name(n, b, "branch5x5_1"); fmap t = conv_to(c, n, x, BUF_T1, 48, 1, 1, 1, 0, 0);
    name(n, b, "branch5x5_2"); off += bconv(c, n, &t, &y, off, 64, 5, 5, 1, 2, 2);
    name(n, b, "branch3x3dbl_1"); t = conv_to(c, n, x, BUF_T1, 64, 1, 1, 1, 0, 0);
    name(n, b, "branch3x3dbl_2"); fmap t2 = conv_to(c, n, &t, BUF_T2, 96, 3, 3, 1, 1, 1);
    name(n, b, "branch3x3dbl_3"); off += bconv(c, n, &t2, &y, off, 96, 3, 3, 1, 1, 1);
    name(n, b, "branch_pool"); avgpool_conv(c, n, x, &y, off, pf);
    return y;
}

// InceptionB (Mixed_6a): 3x3/2 384 | 1x1 64, 3x3 96, 3x3/2 96 | maxpool 3/2.
static fmap block_b(ctx *c, const char *b, const fmap *x, int out_role) {
    char n[PARAM_NAME_MAX];
    int OH = (x->H - 3) / 2 + 1, OW = (x->W - 3) / 2 + 1;
    fmap y = fm(c, out_role, 384 + 96 + x->C, OH, OW);
    name(n, b, "branch3x3"); bconv(c, n, x, &y, 0, 384, 3, 3, 2, 0, 0);
    name(n, b, "branch3x3dbl_1"); fmap t = conv_to(c, n, x, BUF_T1, 64, 1, 1, 1, 0, 0);
    name(n, b, "branch3x3dbl_2"); fmap t2 = conv_to(c, n, &t, BUF_T2, 96, 3, 3, 1, 1, 1);
    name(n, b, "branch3x3dbl_3"); bconv(c, n, &t2, &y, 384, 96, 3, 3, 2, 0, 0);
    fmap pl = pool_to(c, x, BUF_T3, 1, 3, 2, 0, 0);
    put(c, &pl, &y, 480);
    return y;
}

// FIDInceptionC: 1x1 192 | 1x1 c7, 1x7 c7, 7x1 192 | 1x1 c7, 7x1 c7, 1x7 c7,
// 7x1 c7, 1x7 192 | avgpool 3 (no pad count), 1x1 192. (1x7 = kh 1, kw 7.)
static fmap block_c(ctx *c, const char *b, const fmap *x, int out_role, int c7) {
    char n[PARAM_NAME_MAX];
    fmap y = fm(c, out_role, 768, x->H, x->W);
    name(n, b, "branch1x1");
    bconv(c, n, x, &y, 0, 192, 1, 1, 1, 0, 0);
    if (c->run && c->spatial && !strcmp(b, "Mixed_6d")) {
        // ADM's sFID map: channels 0..6 of this branch, (h, w, c) order.
        size_t hw = (size_t)y.H * y.W;
        CHECK(y.H == INCEPTION_SPATIAL_HW && y.W == INCEPTION_SPATIAL_HW);
        for (int i = 0; i < c->B; i++)
            for (size_t p = 0; p < hw; p++)
                for (int k = 0; k < INCEPTION_SPATIAL_CH; k++)
                    c->spatial[(size_t)i * INCEPTION_SPATIAL_DIM + p * INCEPTION_SPATIAL_CH + k] =
                        y.p[((size_t)i * y.C + k) * hw + p];
    }
    name(n, b, "branch7x7_1"); fmap t = conv_to(c, n, x, BUF_T1, c7, 1, 1, 1, 0, 0);
    name(n, b, "branch7x7_2"); fmap t2 = conv_to(c, n, &t, BUF_T2, c7, 1, 7, 1, 0, 3);
    name(n, b, "branch7x7_3"); bconv(c, n, &t2, &y, 192, 192, 7, 1, 1, 3, 0);
    name(n, b, "branch7x7dbl_1"); t = conv_to(c, n, x, BUF_T1, c7, 1, 1, 1, 0, 0);
    name(n, b, "branch7x7dbl_2"); t2 = conv_to(c, n, &t, BUF_T2, c7, 7, 1, 1, 3, 0);
    name(n, b, "branch7x7dbl_3"); t = conv_to(c, n, &t2, BUF_T1, c7, 1, 7, 1, 0, 3);
    name(n, b, "branch7x7dbl_4"); t2 = conv_to(c, n, &t, BUF_T2, c7, 7, 1, 1, 3, 0);
    name(n, b, "branch7x7dbl_5"); bconv(c, n, &t2, &y, 384, 192, 1, 7, 1, 0, 3);
    name(n, b, "branch_pool"); avgpool_conv(c, n, x, &y, 576, 192);
    return y;
}

// InceptionD (Mixed_7a): 1x1 192, 3x3/2 320 | 1x1 192, 1x7 192, 7x1 192,
// 3x3/2 192 | maxpool 3/2.
static fmap block_d(ctx *c, const char *b, const fmap *x, int out_role) {
    char n[PARAM_NAME_MAX];
    int OH = (x->H - 3) / 2 + 1, OW = (x->W - 3) / 2 + 1;
    fmap y = fm(c, out_role, 320 + 192 + x->C, OH, OW);
    name(n, b, "branch3x3_1"); fmap t = conv_to(c, n, x, BUF_T1, 192, 1, 1, 1, 0, 0);
    name(n, b, "branch3x3_2"); bconv(c, n, &t, &y, 0, 320, 3, 3, 2, 0, 0);
    name(n, b, "branch7x7x3_1"); t = conv_to(c, n, x, BUF_T1, 192, 1, 1, 1, 0, 0);
    name(n, b, "branch7x7x3_2"); fmap t2 = conv_to(c, n, &t, BUF_T2, 192, 1, 7, 1, 0, 3);
    name(n, b, "branch7x7x3_3"); t = conv_to(c, n, &t2, BUF_T1, 192, 7, 1, 1, 3, 0);
    name(n, b, "branch7x7x3_4"); bconv(c, n, &t, &y, 320, 192, 3, 3, 2, 0, 0);
    fmap pl = pool_to(c, x, BUF_T3, 1, 3, 2, 0, 0);
    put(c, &pl, &y, 512);
    return y;
}

// FIDInceptionE_1 (avg pool, no pad count) / _2 (max pool): 1x1 320 |
// 1x1 384 -> [1x3 384, 3x1 384] | 1x1 448, 3x3 384 -> [1x3 384, 3x1 384] |
// pool 3, 1x1 192.
static fmap block_e(ctx *c, const char *b, const fmap *x, int out_role, int max_pool) {
    char n[PARAM_NAME_MAX];
    fmap y = fm(c, out_role, 2048, x->H, x->W);
    name(n, b, "branch1x1"); bconv(c, n, x, &y, 0, 320, 1, 1, 1, 0, 0);
    name(n, b, "branch3x3_1"); fmap t = conv_to(c, n, x, BUF_T1, 384, 1, 1, 1, 0, 0);
    name(n, b, "branch3x3_2a"); bconv(c, n, &t, &y, 320, 384, 1, 3, 1, 0, 1);
    name(n, b, "branch3x3_2b"); bconv(c, n, &t, &y, 704, 384, 3, 1, 1, 1, 0);
    name(n, b, "branch3x3dbl_1"); t = conv_to(c, n, x, BUF_T1, 448, 1, 1, 1, 0, 0);
    name(n, b, "branch3x3dbl_2"); fmap t2 = conv_to(c, n, &t, BUF_T2, 384, 3, 3, 1, 1, 1);
    name(n, b, "branch3x3dbl_3a"); bconv(c, n, &t2, &y, 1088, 384, 1, 3, 1, 0, 1);
    name(n, b, "branch3x3dbl_3b"); bconv(c, n, &t2, &y, 1472, 384, 3, 1, 1, 1, 0);
    name(n, b, "branch_pool");
    if (max_pool) {   // max does not commute with the conv: pool first
        fmap pl = pool_to(c, x, BUF_T3, 1, 3, 1, 1, 0);
        bconv(c, n, &pl, &y, 1856, 192, 1, 1, 1, 0, 0);
    } else {
        avgpool_conv(c, n, x, &y, 1856, 192);
    }
    return y;
}

// The whole network from the (B, 3, 299, 299) input in m->resized to the
// Mixed_7c map; returns it.
static fmap network(ctx *c) {
    fmap x = {c->run ? c->m->resized : NULL, -1, 3, INCEPTION_SIZE, INCEPTION_SIZE};
    fmap a = conv_to(c, "Conv2d_1a_3x3", &x, BUF_P, 32, 3, 3, 2, 0, 0);
    fmap q = conv_to(c, "Conv2d_2a_3x3", &a, BUF_Q, 32, 3, 3, 1, 0, 0);
    a = conv_to(c, "Conv2d_2b_3x3", &q, BUF_P, 64, 3, 3, 1, 1, 1);
    q = pool_to(c, &a, BUF_Q, 1, 3, 2, 0, 0);
    a = conv_to(c, "Conv2d_3b_1x1", &q, BUF_P, 80, 1, 1, 1, 0, 0);
    q = conv_to(c, "Conv2d_4a_3x3", &a, BUF_Q, 192, 3, 3, 1, 0, 0);
    a = pool_to(c, &q, BUF_P, 1, 3, 2, 0, 0);
    q = block_a(c, "Mixed_5b", &a, BUF_Q, 32);
    a = block_a(c, "Mixed_5c", &q, BUF_P, 64);
    q = block_a(c, "Mixed_5d", &a, BUF_Q, 64);
    a = block_b(c, "Mixed_6a", &q, BUF_P);
    q = block_c(c, "Mixed_6b", &a, BUF_Q, 128);
    a = block_c(c, "Mixed_6c", &q, BUF_P, 160);
    q = block_c(c, "Mixed_6d", &a, BUF_Q, 160);
    a = block_c(c, "Mixed_6e", &q, BUF_P, 192);
    q = block_d(c, "Mixed_7a", &a, BUF_Q);
    a = block_e(c, "Mixed_7b", &q, BUF_P, 0);
    q = block_e(c, "Mixed_7c", &a, BUF_Q, 1);
    return q;
}

int inception_create(inception **out, int Bmax) {
    *out = NULL;
    if (Bmax < 1 || Bmax > 4096) return VEL_EINVAL;
    inception *m = calloc(1, sizeof *m);
    if (!m) return VEL_ENOMEM;
    m->Bmax = Bmax;
    param_table_init(&m->pt);
    ctx c = {m, 0, 0, Bmax, NULL};
    fmap y = network(&c);
    CHECK(y.C == INCEPTION_POOL_DIM && y.H == 8 && y.W == 8);
    m->fc = m->pt.count;
    param_add(&m->pt, "fc.weight", 2, (int64_t[]){INCEPTION_LOGITS, INCEPTION_POOL_DIM});
    param_add(&m->pt, "fc.bias", 1, (int64_t[]){INCEPTION_LOGITS});
    int rc = param_table_commit(&m->pt);
    size_t B = (size_t)Bmax;
    for (int r = 0; r < NBUF && !rc; r++)
        if (m->need[r] && !(m->buf[r] = malloc(sizeof(float) * B * m->need[r]))) rc = VEL_ENOMEM;
    if (!rc) {
        m->scratch = malloc(sizeof(float) * m->scratch_n);
        m->resized = malloc(sizeof(float) * B * 3 * INCEPTION_SIZE * INCEPTION_SIZE);
        m->pool = malloc(sizeof(float) * B * INCEPTION_POOL_DIM);
        if (!m->scratch || !m->resized || !m->pool) rc = VEL_ENOMEM;
    }
    for (int i = 0; i < m->nu && !rc; i++) {
        unit *u = &m->u[i];
        u->fw = malloc(sizeof(float) * (size_t)u->OC * u->C * u->kh * u->kw);
        u->fb = malloc(sizeof(float) * u->OC);
        if (!u->fw || !u->fb) rc = VEL_ENOMEM;
    }
    if (rc) { inception_destroy(&m); return rc; }
    inception_prepare(m);
    *out = m;
    return 0;
}

void inception_destroy(inception **pm) {
    if (!pm || !*pm) return;
    inception *m = *pm;
    for (int i = 0; i < m->nu; i++) { free(m->u[i].fw); free(m->u[i].fb); }
    free(m->u);
    for (int r = 0; r < NBUF; r++) free(m->buf[r]);
    free(m->scratch); free(m->resized); free(m->pool);
    param_table_free(&m->pt);
    free(m);
    *pm = NULL;
}

param_table *inception_params(inception *m) { return &m->pt; }

void inception_prepare(inception *m) {
    for (int i = 0; i < m->nu; i++) {
        unit *u = &m->u[i];
        const float *w = param_data(&m->pt, u->w), *g = param_data(&m->pt, u->g);
        const float *b = param_data(&m->pt, u->b), *mu = param_data(&m->pt, u->mean);
        const float *var = param_data(&m->pt, u->var);
        size_t per = (size_t)u->C * u->kh * u->kw;
        for (int o = 0; o < u->OC; o++) {
            double s = (double)g[o] / sqrt((double)var[o] + BN_EPS);
            for (size_t j = 0; j < per; j++) u->fw[o * per + j] = (float)(w[o * per + j] * s);
            u->fb[o] = (float)((double)b[o] - (double)mu[o] * s);
        }
    }
}

int inception_load(inception *m, const char *path) {
    int rc = st_load_params(path, &m->pt);
    if (rc) return rc;
    inception_prepare(m);
    return 0;
}

// The generator of tests/ref/fixture_inception.py (see its docstring).
static uint64_t splitmix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t fnv1a64(const char *s) {
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++) { h ^= (unsigned char)*s; h *= 1099511628211ull; }
    return h;
}

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}

void inception_random_weights(inception *m, uint64_t seed) {
    for (int i = 0; i < m->pt.count; i++) {
        const param_info *p = &m->pt.info[i];
        float *v = param_data(&m->pt, i);
        uint64_t base = seed ^ fnv1a64(p->name);
        int64_t fan_in = p->numel / p->shape[0];
        int kind = ends_with(p->name, "conv.weight") || !strcmp(p->name, "fc.weight") ? 0
                   : ends_with(p->name, "bn.weight")                                  ? 1
                   : ends_with(p->name, "bn.running_var")                             ? 2
                                                                                      : 3;
        double a = sqrt(6.0 / (double)fan_in);
        for (int64_t j = 0; j < p->numel; j++) {
            double u = (double)(splitmix64(base + (uint64_t)j) >> 40) * 0x1p-24;
            double x = kind == 0 ? (2.0 * u - 1.0) * a
                     : kind == 1 ? 1.0 + 0.2 * (2.0 * u - 1.0)
                     : kind == 2 ? 0.5 + u
                                 : 0.1 * (2.0 * u - 1.0);
            v[j] = (float)x;
        }
    }
    inception_prepare(m);
}

void inception_resize_bilinear(float *out, int OH, int OW, const float *inp, int C, int H, int W) {
    // out (C, OH, OW), inp (C, H, W). Index and weight math in float, as
    // PyTorch's CPU kernel (scale = in / out in float).
    float sh = (float)H / (float)OH, sw = (float)W / (float)OW;
    for (int oh = 0; oh < OH; oh++) {
        float fy = sh * ((float)oh + 0.5f) - 0.5f;
        if (fy < 0) fy = 0;
        int y0 = (int)fy;
        if (y0 > H - 1) y0 = H - 1;
        int y1 = y0 < H - 1 ? y0 + 1 : y0;
        float ly = fy - (float)y0, hy = 1.0f - ly;
        for (int ow = 0; ow < OW; ow++) {
            float fx = sw * ((float)ow + 0.5f) - 0.5f;
            if (fx < 0) fx = 0;
            int x0 = (int)fx;
            if (x0 > W - 1) x0 = W - 1;
            int x1 = x0 < W - 1 ? x0 + 1 : x0;
            float lx = fx - (float)x0, hx = 1.0f - lx;
            for (int ch = 0; ch < C; ch++) {
                const float *s = inp + (size_t)ch * H * W;
                out[((size_t)ch * OH + oh) * OW + ow] =
                    hy * (hx * s[y0 * W + x0] + lx * s[y0 * W + x1]) +
                    ly * (hx * s[y1 * W + x0] + lx * s[y1 * W + x1]);
            }
        }
    }
}

int inception_forward_u8(inception *m, const uint8_t *img, int B, int H, int W, float *pool3,
                         float *logits, float *spatial) {
    if (B < 1 || H < 1 || W < 1 || (int64_t)H * W > (1 << 26)) return VEL_EINVAL;
    size_t in_n = (size_t)3 * H * W, rs_n = (size_t)3 * INCEPTION_SIZE * INCEPTION_SIZE;
    float *x = malloc(sizeof(float) * in_n);
    if (!x) return VEL_ENOMEM;
    for (int b0 = 0; b0 < B; b0 += m->Bmax) {
        int nb = B - b0 < m->Bmax ? B - b0 : m->Bmax;
        for (int i = 0; i < nb; i++) {
            const uint8_t *src = img + (size_t)(b0 + i) * in_n;
            for (size_t j = 0; j < in_n; j++) x[j] = (float)src[j] / 255.0f;
            float *r = m->resized + (size_t)i * rs_n;
            inception_resize_bilinear(r, INCEPTION_SIZE, INCEPTION_SIZE, x, 3, H, W);
            for (size_t j = 0; j < rs_n; j++) r[j] = 2.0f * r[j] - 1.0f;
        }
        ctx c = {m, 1, 0, nb, spatial ? spatial + (size_t)b0 * INCEPTION_SPATIAL_DIM : NULL};
        fmap y = network(&c);
        CHECK(c.k == m->nu);
        pool_global_avg(m->pool, y.p, nb, y.C, y.H * y.W);
        if (pool3) memcpy(pool3 + (size_t)b0 * INCEPTION_POOL_DIM, m->pool,
                          sizeof(float) * nb * INCEPTION_POOL_DIM);
        if (logits)
            matmul_batched(1, 0, 1, nb, INCEPTION_LOGITS, INCEPTION_POOL_DIM, 1.0f, m->pool,
                           INCEPTION_POOL_DIM, 0, param_data(&m->pt, m->fc), INCEPTION_POOL_DIM,
                           0, 0.0f, logits + (size_t)b0 * INCEPTION_LOGITS, INCEPTION_LOGITS, 0);
    }
    free(x);
    return 0;
}
