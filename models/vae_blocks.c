// vae_blocks.c: the conv-net tape (see vae_blocks.h). The attention core is
// written here with batched matmuls (nn/matmul.h) on (C, T) = (C, H*W)
// slices rather than through nn/attention.h because the VAE's AttnBlock is
// single-head with head dim C up to 512 (f16d32's mid block), above
// ATTN_HD_MAX, and T = H*W is small (<= 256), so the T x T probabilities are
// cheap to keep for backward.
#include "models/vae_blocks.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/activation.h"
#include "core/base.h"
#include "nn/elementwise.h"
#include "nn/matmul.h"
#include "nn/norm.h"
#include "core/philox.h"
#include "nn/shape_ops.h"

void vtape_init(vtape *t, param_table *pt) {
    memset(t, 0, sizeof *t);
    t->pt = pt;
}

int vtape_buffer(vtape *t, int C, int H, int W) {
    if (t->nbufs == t->capbufs) {
        t->capbufs = t->capbufs ? 2 * t->capbufs : 64;
        t->bufs = realloc(t->bufs, sizeof(vtape_buf) * (size_t)t->capbufs);
        CHECK(t->bufs);
    }
    vtape_buf *b = &t->bufs[t->nbufs];
    memset(b, 0, sizeof *b);
    b->C = C; b->H = H; b->W = W;
    b->per = (int64_t)C * H * W;
    return t->nbufs++;
}

static vtape_op *push_op(vtape *t, vtape_kind kind, int in) {
    if (t->nops == t->capops) {
        t->capops = t->capops ? 2 * t->capops : 64;
        t->ops = realloc(t->ops, sizeof(vtape_op) * (size_t)t->capops);
        CHECK(t->ops);
    }
    vtape_op *o = &t->ops[t->nops++];
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->in = in;
    o->in2 = o->in3 = o->aux = o->aux2 = o->pw = o->pb = -1;
    CHECK(in >= 0 && in < t->nbufs);
    o->C = t->bufs[in].C; o->H = t->bufs[in].H; o->W = t->bufs[in].W;
    return o;
}

static int add_param(vtape *t, const char *prefix, const char *leaf, int ndim,
                     const int64_t *shape) {
    char name[PARAM_NAME_MAX];
    int k = snprintf(name, sizeof name, "%s.%s", prefix, leaf);
    CHECK(k > 0 && k < (int)sizeof name);
    param_add(t->pt, name, ndim, shape);
    return t->pt->count - 1;
}

int vtape_conv(vtape *t, const char *prefix, int x, int OC, int k, int stride,
               int pt, int pb, int pl, int pr) {
    vtape_op *o = push_op(t, VT_CONV, x);
    o->OC = OC; o->k = k; o->stride = stride;
    o->pt = pt; o->pbm = pb; o->pl = pl; o->pr = pr;
    int64_t ws[4] = {OC, o->C, k, k}, bs[1] = {OC};
    int C = o->C, H = o->H, W = o->W;
    o->pw = add_param(t, prefix, "weight", 4, ws);
    o->pb = add_param(t, prefix, "bias", 1, bs);
    int OH = (H + pt + pb - k) / stride + 1, OW = (W + pl + pr - k) / stride + 1;
    CHECK(OH >= 1 && OW >= 1 && C > 0);
    int out = vtape_buffer(t, OC, OH, OW);
    o->out = out;   // o stays valid: only push_op moves the ops array
    return out;
}

int vtape_groupnorm(vtape *t, const char *prefix, int x, int G, float eps) {
    vtape_op *o = push_op(t, VT_GN, x);
    CHECK(o->C % G == 0);
    o->G = G; o->eps = eps;
    int64_t s[1] = {o->C};
    o->pw = add_param(t, prefix, "weight", 1, s);
    o->pb = add_param(t, prefix, "bias", 1, s);
    int C = o->C, H = o->H, W = o->W;
    int aux = vtape_buffer(t, G, 1, 1), aux2 = vtape_buffer(t, G, 1, 1);
    int out = vtape_buffer(t, C, H, W);
    o = &t->ops[t->nops - 1];
    o->aux = aux; o->aux2 = aux2; o->out = out;
    return out;
}

int vtape_silu(vtape *t, int x) {
    vtape_op *o = push_op(t, VT_SILU, x);
    int out = vtape_buffer(t, o->C, o->H, o->W);
    t->ops[t->nops - 1].out = out;
    return out;
}

int vtape_add(vtape *t, int a, int b) {
    CHECK(t->bufs[a].per == t->bufs[b].per);
    vtape_op *o = push_op(t, VT_ADD, a);
    o->in2 = b;
    int out = vtape_buffer(t, o->C, o->H, o->W);
    t->ops[t->nops - 1].out = out;
    return out;
}

int vtape_upsample(vtape *t, int x) {
    vtape_op *o = push_op(t, VT_UP, x);
    int out = vtape_buffer(t, o->C, 2 * o->H, 2 * o->W);
    t->ops[t->nops - 1].out = out;
    return out;
}

int vtape_avgpool(vtape *t, int x) {
    vtape_op *o = push_op(t, VT_POOL, x);
    int out = vtape_buffer(t, o->C, 1, 1);
    t->ops[t->nops - 1].out = out;
    return out;
}

int vtape_resnet_block(vtape *t, const char *prefix, int x, int OC, int G) {
    char p[PARAM_NAME_MAX];
    int C = t->bufs[x].C;
    snprintf(p, sizeof p, "%s.norm1", prefix);
    int h = vtape_groupnorm(t, p, x, G, 1e-6f);
    h = vtape_silu(t, h);
    snprintf(p, sizeof p, "%s.conv1", prefix);
    h = vtape_conv(t, p, h, OC, 3, 1, 1, 1, 1, 1);
    snprintf(p, sizeof p, "%s.norm2", prefix);
    h = vtape_groupnorm(t, p, h, G, 1e-6f);
    h = vtape_silu(t, h);
    snprintf(p, sizeof p, "%s.conv2", prefix);
    h = vtape_conv(t, p, h, OC, 3, 1, 1, 1, 1, 1);
    int s = x;
    if (C != OC) {
        snprintf(p, sizeof p, "%s.nin_shortcut", prefix);
        s = vtape_conv(t, p, x, OC, 1, 1, 0, 0, 0, 0);
    }
    return vtape_add(t, s, h);
}

int vtape_attn_block(vtape *t, const char *prefix, int x, int G) {
    char p[PARAM_NAME_MAX];
    int C = t->bufs[x].C, H = t->bufs[x].H, W = t->bufs[x].W, T = H * W;
    snprintf(p, sizeof p, "%s.norm", prefix);
    int h = vtape_groupnorm(t, p, x, G, 1e-6f);
    snprintf(p, sizeof p, "%s.q", prefix);
    int q = vtape_conv(t, p, h, C, 1, 1, 0, 0, 0, 0);
    snprintf(p, sizeof p, "%s.k", prefix);
    int k = vtape_conv(t, p, h, C, 1, 1, 0, 0, 0, 0);
    snprintf(p, sizeof p, "%s.v", prefix);
    int v = vtape_conv(t, p, h, C, 1, 1, 0, 0, 0, 0);
    vtape_op *o = push_op(t, VT_ATTN, q);
    o->in2 = k; o->in3 = v;
    int S = vtape_buffer(t, T, T, 1), P = vtape_buffer(t, T, T, 1);
    int out = vtape_buffer(t, C, H, W);
    o = &t->ops[t->nops - 1];
    o->aux = S; o->aux2 = P; o->out = out;
    snprintf(p, sizeof p, "%s.proj_out", prefix);
    int pr = vtape_conv(t, p, out, C, 1, 1, 0, 0, 0, 0);
    return vtape_add(t, x, pr);
}

int vtape_downsample(vtape *t, const char *prefix, int x) {
    char p[PARAM_NAME_MAX];
    snprintf(p, sizeof p, "%s.conv", prefix);
    // torch.nn.functional.pad(x, (0, 1, 0, 1)) then conv3x3 stride 2, pad 0.
    return vtape_conv(t, p, x, t->bufs[x].C, 3, 2, 0, 1, 0, 1);
}

int vtape_upsample_block(vtape *t, const char *prefix, int x) {
    char p[PARAM_NAME_MAX];
    snprintf(p, sizeof p, "%s.conv", prefix);
    int u = vtape_upsample(t, x);
    return vtape_conv(t, p, u, t->bufs[x].C, 3, 1, 1, 1, 1, 1);
}

static conv2d_cfg op_conv_cfg(const vtape_op *o, int B) {
    conv2d_cfg c = {.B = B, .C = o->C, .H = o->H, .W = o->W, .OC = o->OC, .KH = o->k,
                    .KW = o->k, .stride = o->stride, .pad_top = o->pt,
                    .pad_bottom = o->pbm, .pad_left = o->pl, .pad_right = o->pr};
    return c;
}

// The buffers whose gradients op o's backward writes (accumulates into, or
// for ATTN's dP sets); returns how many (at most 5).
static int grad_targets(const vtape_op *o, int *b) {
    int n = 0;
    b[n++] = o->in;
    if (o->kind == VT_ADD) b[n++] = o->in2;
    if (o->kind == VT_ATTN) { b[n++] = o->in2; b[n++] = o->in3; b[n++] = o->aux; b[n++] = o->aux2; }
    return n;
}

// gfirst[b]: the last op (in forward order) whose backward writes b's
// gradient, i.e. the first one to run in backward; -1 when none does (the
// output's gradient is set from dout; others are zeroed up front).
static int plan_grad_zeroing(vtape *t) {
    t->gfirst = malloc(sizeof(int) * (size_t)t->nbufs);
    if (!t->gfirst) return VEL_ENOMEM;
    for (int i = 0; i < t->nbufs; i++) t->gfirst[i] = -1;
    for (int i = 0; i < t->nops; i++) {
        int b[5], n = grad_targets(&t->ops[i], b);
        for (int k = 0; k < n; k++) t->gfirst[b[k]] = i;
    }
    return 0;
}

int vtape_alloc(vtape *t, int Bmax, int train) {
    t->Bmax = Bmax;
    t->train = train;
    int64_t total = 0;
    for (int i = 0; i < t->nbufs; i++) total += t->bufs[i].per * Bmax * (train ? 2 : 1);
    size_t scratch = 0;
    for (int i = 0; i < t->nops; i++)
        if (t->ops[i].kind == VT_CONV) {
            conv2d_cfg c = op_conv_cfg(&t->ops[i], Bmax);
            size_t s = conv2d_scratch_floats(&c);
            if (s > scratch) scratch = s;
        }
    t->mem = malloc(sizeof(float) * (size_t)total);
    t->scratch = malloc(sizeof(float) * (scratch ? scratch : 1));
    if (!t->mem || !t->scratch) {
        free(t->mem); free(t->scratch);
        t->mem = t->scratch = NULL;
        return VEL_ENOMEM;
    }
    if (train && plan_grad_zeroing(t)) {
        free(t->mem); free(t->scratch);
        t->mem = t->scratch = NULL;
        return VEL_ENOMEM;
    }
    memset(t->mem, 0, sizeof(float) * (size_t)total);
    float *p = t->mem;
    for (int i = 0; i < t->nbufs; i++) {
        t->bufs[i].v = p;
        p += t->bufs[i].per * Bmax;
        if (train) { t->bufs[i].g = p; p += t->bufs[i].per * Bmax; }
    }
    return 0;
}

void vtape_free(vtape *t) {
    free(t->gfirst);
    free(t->ops);
    free(t->bufs);
    free(t->mem);
    free(t->scratch);
    param_table *pt = t->pt;
    memset(t, 0, sizeof *t);
    t->pt = pt;
}

int vtape_output(const vtape *t) { return t->ops[t->nops - 1].out; }

// The B images' products run as batched matmuls (nn/matmul.h: one image per
// task, each product one single-threaded GEMM, so the bits do not depend on
// the thread count) and the softmax over all B*T rows at once.
static void attn_forward(vtape *t, const vtape_op *o, int B) {
    const int C = o->C, T = o->H * o->W;
    const int64_t ct = (int64_t)C * T, tt = (int64_t)T * T;
    const float scale = 1.0f / sqrtf((float)C);
    // q, k, v, out (C, T) per image; S, P (T, T)
    const float *q = t->bufs[o->in].v, *k = t->bufs[o->in2].v, *v = t->bufs[o->in3].v;
    float *S = t->bufs[o->aux].v, *P = t->bufs[o->aux2].v, *out = t->bufs[o->out].v;
    // S = s q^T k; P = softmax(S) by rows; out = v P^T
    matmul_batched(B, 1, 0, T, T, C, scale, q, T, ct, k, T, ct, 0.0f, S, T, tt);
    softmax_forward(P, S, B * T, T);
    matmul_batched(B, 0, 1, C, T, T, 1.0f, v, T, ct, P, T, tt, 0.0f, out, T, ct);
}

static void attn_backward(vtape *t, const vtape_op *o, int B) {
    const int C = o->C, T = o->H * o->W;
    const int64_t ct = (int64_t)C * T, tt = (int64_t)T * T;
    const float scale = 1.0f / sqrtf((float)C);
    const float *q = t->bufs[o->in].v, *k = t->bufs[o->in2].v;
    const float *v = t->bufs[o->in3].v, *P = t->bufs[o->aux2].v;
    const float *dO = t->bufs[o->out].g;
    float *dq = t->bufs[o->in].g, *dk = t->bufs[o->in2].g, *dv = t->bufs[o->in3].g;
    float *dP = t->bufs[o->aux2].g, *dS = t->bufs[o->aux].g;
    // dV += dO P; dP = dO^T V; dS += softmax'(dP); dQ += s K dS^T; dK += s Q dS
    matmul_batched(B, 0, 0, C, T, T, 1.0f, dO, T, ct, P, T, tt, 1.0f, dv, T, ct);
    matmul_batched(B, 1, 0, T, T, C, 1.0f, dO, T, ct, v, T, ct, 0.0f, dP, T, tt);
    softmax_backward(dS, dP, P, B * T, T);
    matmul_batched(B, 0, 1, C, T, T, scale, k, T, ct, dS, T, tt, 1.0f, dq, T, ct);
    matmul_batched(B, 0, 0, C, T, T, scale, q, T, ct, dS, T, tt, 1.0f, dk, T, ct);
}

void vtape_forward(vtape *t, int B) {
    CHECK(B >= 1 && B <= t->Bmax && t->mem);
    for (int i = 0; i < t->nops; i++) {
        const vtape_op *o = &t->ops[i];
        float *in = t->bufs[o->in].v, *out = t->bufs[o->out].v;
        int64_t n = t->bufs[o->in].per * B;
        switch (o->kind) {
        case VT_CONV: {
            conv2d_cfg c = op_conv_cfg(o, B);
            conv2d_forward(out, in, param_data(t->pt, o->pw), param_data(t->pt, o->pb),
                           t->scratch, &c);
            break;
        }
        case VT_GN:
            groupnorm_forward(out, t->bufs[o->aux].v, t->bufs[o->aux2].v, in,
                              param_data(t->pt, o->pw), param_data(t->pt, o->pb), B, o->C,
                              o->H * o->W, o->G, o->eps);
            break;
        case VT_SILU: silu_forward(out, in, n); break;
        case VT_ADD: add_forward(out, in, t->bufs[o->in2].v, n); break;
        case VT_UP: upsample2x_forward(out, in, B, o->C, o->H, o->W); break;
        case VT_ATTN: attn_forward(t, o, B); break;
        case VT_POOL: {
            int hw = o->H * o->W;
            for (int64_t r = 0; r < (int64_t)B * o->C; r++) {
                double s = 0;
                for (int k = 0; k < hw; k++) s += in[r * hw + k];
                out[r] = (float)(s / hw);
            }
            break;
        }
        }
    }
}

// n floats set to zero, in chunks over the OpenMP pool.
#define ZERO_CHUNK 16384
static void zero_floats(float *x, int64_t n) {
    const int64_t nc = (n + ZERO_CHUNK - 1) / ZERO_CHUNK;
    #pragma omp parallel for schedule(static) if (nc > 2)
    for (int64_t c = 0; c < nc; c++) {
        int64_t o = c * ZERO_CHUNK, m = n - o < ZERO_CHUNK ? n - o : ZERO_CHUNK;
        memset(x + o, 0, sizeof(float) * (size_t)m);
    }
}

void vtape_backward(vtape *t, const float *dout, int B) {
    CHECK(t->train && B >= 1 && B <= t->Bmax);
    int last = vtape_output(t);
    for (int i = 0; i < t->nbufs; i++)
        if (t->gfirst[i] < 0 && i != last)
            zero_floats(t->bufs[i].g, t->bufs[i].per * B);
    memcpy(t->bufs[last].g, dout, sizeof(float) * (size_t)(t->bufs[last].per * B));
    for (int i = t->nops - 1; i >= 0; i--) {
        const vtape_op *o = &t->ops[i];
        // a SiLU or conv whose input gradient starts here writes it (no
        // zeroing; the conv's filter and bias gradients still accumulate)
        const int set = (o->kind == VT_SILU || o->kind == VT_CONV) && t->gfirst[o->in] == i &&
                        o->in != last;
        int zb[5], nz = set ? 0 : grad_targets(o, zb);
        for (int k = 0; k < nz; k++)
            if (t->gfirst[zb[k]] == i && zb[k] != last)
                zero_floats(t->bufs[zb[k]].g, t->bufs[zb[k]].per * B);
        float *in = t->bufs[o->in].v, *din = t->bufs[o->in].g, *dout_i = t->bufs[o->out].g;
        int64_t n = t->bufs[o->in].per * B;
        switch (o->kind) {
        case VT_CONV: {
            conv2d_cfg c = op_conv_cfg(o, B);
            (set ? conv2d_backward_set : conv2d_backward)(
                din, param_grad(t->pt, o->pw), param_grad(t->pt, o->pb), dout_i, in,
                param_data(t->pt, o->pw), t->scratch, &c);
            break;
        }
        case VT_GN:
            groupnorm_backward(din, param_grad(t->pt, o->pw), param_grad(t->pt, o->pb), dout_i,
                               in, param_data(t->pt, o->pw), t->bufs[o->aux].v,
                               t->bufs[o->aux2].v, B, o->C, o->H * o->W, o->G);
            break;
        case VT_SILU:
            if (set) silu_backward_set(din, dout_i, in, n);
            else silu_backward(din, dout_i, in, n);
            break;
        case VT_ADD: add_backward(din, t->bufs[o->in2].g, dout_i, n); break;
        case VT_UP: upsample2x_backward(din, dout_i, B, o->C, o->H, o->W); break;
        case VT_ATTN: attn_backward(t, o, B); break;
        case VT_POOL: {
            int hw = o->H * o->W;
            for (int64_t r = 0; r < (int64_t)B * o->C; r++)
                for (int k = 0; k < hw; k++) din[r * hw + k] += dout_i[r] / (float)hw;
            break;
        }
        }
    }
}

void vtape_init_params(param_table *pt, uint64_t seed) {
    for (int i = 0; i < pt->count; i++) {
        const param_info *pi = &pt->info[i];
        float *v = param_data(pt, i);
        size_t len = strlen(pi->name);
        if (strstr(pi->name, "norm") != NULL && pi->ndim == 1) {
            float fill = (len > 7 && !strcmp(pi->name + len - 7, ".weight")) ? 1.0f : 0.0f;
            for (int64_t k = 0; k < pi->numel; k++) v[k] = fill;
            continue;
        }
        int64_t fan_in;
        if (pi->ndim == 4) {
            fan_in = pi->shape[1] * pi->shape[2] * pi->shape[3];
        } else {
            CHECK(i > 0 && pt->info[i - 1].ndim == 4);
            const param_info *w = &pt->info[i - 1];
            fan_in = w->shape[1] * w->shape[2] * w->shape[3];
        }
        float bound = 1.0f / sqrtf((float)fan_in);
        philox_uniform(v, pi->numel, seed, (uint32_t)i, 0);
        for (int64_t k = 0; k < pi->numel; k++) v[k] = (2.0f * v[k] - 1.0f) * bound;
    }
}
