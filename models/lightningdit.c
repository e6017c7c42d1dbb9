// lightningdit.c: LightningDiT forward/backward on the CPU ops (see
// models/lightningdit.h). Layout of the work: one carve() describes every
// activation and scratch buffer; it runs once measuring and once carving
// (nn/arena.h). Tokens are (B, T, D) rows, N = B*T.
#include "models/lightningdit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/activation.h"
#include "nn/attention.h"
#include "core/base.h"
#include "core/error.h"
#include "nn/backend.h"
#include "nn/device.h"
#include "nn/elementwise.h"
#include "nn/embed.h"
#include "nn/linear.h"
#include "nn/modulate.h"
#include "nn/norm.h"
#include "core/philox.h"
#include "nn/rope.h"
#include "nn/rows.h"
#include "nn/shape_ops.h"
#include "nn/swiglu.h"

#define FREQ_DIM 256          // TimestepEmbedder frequency_embedding_size
#define MAX_PERIOD 10000.0
#define NORM_EPS 1e-6f        // LightningDiT RMSNorm eps
#define ROPE_THETA 10000.0

// Parameter indices of one block (-1: absent).
typedef struct {
    int norm1, qkv_w, qkv_b, qn, kn, proj_w, proj_b, norm2, w12_w, w12_b, w3_w, w3_b,
        ada_w, ada_b;
} blk_params;

// Saved activations of one block.
typedef struct {
    float *x_in, *rstd1, *xn1, *xm1, *qkv, *qraw, *kraw, *rstd_q, *rstd_k, *att, *lse,
          *ya, *x_mid, *rstd2, *xn2, *xm2, *x12, *hh, *ym, *ada;
} blk_acts;

struct ldit_acts {
    int xe_w, xe_b, t0_w, t0_b, t2_w, t2_b, ytab, nf_w, fl_w, fl_b, fa_w, fa_b;
    blk_params *bp;          // depth
    blk_acts *ba;            // depth
    // forward, outside the blocks
    float *xtok, *x_out, *temb_in, *t1, *t1s, *temb, *yemb, *c, *sc;
    float *rstd_f, *xnf, *xmf, *ada_f, *otok;
    int32_t *y;
    uint8_t *drop;
    float *qn_tmp;
    float *io_x, *io_t, *io_v;   // on the GPU only: host inputs/outputs staged here
    // backward scratch
    float *dres, *dy, *dxm, *dxn, *dqkv, *datt, *dx12, *dh, *dtmp, *dada,
          *dsc, *dc, *dt1s, *dt1, *dotok, *dxtok;
};

// ---- configuration ------------------------------------------------------

int ldit_mlp_hidden(const ldit_config *c) { return (int)(2.0 / 3.0 * 4 * c->hidden); }
int ldit_tokens(const ldit_config *c) {
    const int s = c->input_size / c->patch;
    return s * s;
}

int ldit_config_preset(const char *name, ldit_config *out) {
    static const struct { const char *n; int depth, hidden, heads; } tab[] = {
        {"S", 12, 384, 6}, {"B", 12, 768, 12}, {"L", 24, 1024, 16}, {"XL", 28, 1152, 16}};
    memset(out, 0, sizeof *out);
    if (name && !strcmp(name, "tiny")) {
        *out = (ldit_config){.depth = 2, .hidden = 64, .heads = 4, .patch = 1,
                             .in_channels = 4, .input_size = 8, .num_classes = 10};
        return 0;
    }
    for (size_t i = 0; name && i < sizeof tab / sizeof tab[0]; i++)
        if (!strcmp(name, tab[i].n)) {
            *out = (ldit_config){.depth = tab[i].depth, .hidden = tab[i].hidden,
                                 .heads = tab[i].heads, .patch = 1, .in_channels = 32,
                                 .input_size = 16, .num_classes = 1000};
            return 0;
        }
    return LDIT_ECONFIG;
}

int ldit_config_validate(const ldit_config *c) {
    const char *why = NULL;
    char buf[160];
    if (c->depth < 1 || c->depth > 256) why = "depth must be in 1..256";
    else if (c->hidden < 4 || c->heads < 1 || c->hidden % c->heads) why = "hidden must be a positive multiple of heads";
    else if ((c->hidden / c->heads) % 4)
        why = "head dim (hidden/heads) must be divisible by 4 (2D RoPE pairs per axis)";
    else if (c->hidden / c->heads > ATTN_HD_MAX) {
        snprintf(buf, sizeof buf, "head dim must be <= %d", ATTN_HD_MAX);
        why = buf;
    } else if (c->hidden % 4) why = "hidden must be divisible by 4 (2D sin-cos position embedding)";
    else if (c->patch < 1 || c->input_size < 1 || c->input_size % c->patch)
        why = "input_size must be a positive multiple of patch";
    else if (c->in_channels < 1) why = "in_channels must be positive";
    else if (c->num_classes < 1) why = "num_classes must be positive";
    else if ((int64_t)ldit_tokens(c) * c->hidden > (1LL << 30)) why = "tokens x hidden too large";
    return why ? vel_fail(LDIT_ECONFIG, "%s", why) : 0;
}

// ---- parameters ---------------------------------------------------------

static int add(param_table *pt, const char *name, int ndim, int64_t a, int64_t b,
               int64_t c, int64_t d) {
    const int64_t shape[4] = {a, b, c, d};
    param_add(pt, name, ndim, shape);
    return pt->count - 1;
}

static void declare(param_table *pt, const ldit_config *c, struct ldit_acts *A) {
    const int64_t D = c->hidden, HD = c->hidden / c->heads, H = ldit_mlp_hidden(c);
    const int64_t p = c->patch, C = c->in_channels;
    char n[PARAM_NAME_MAX];
    A->xe_w = add(pt, "x_embedder.proj.weight", 4, D, C, p, p);
    A->xe_b = add(pt, "x_embedder.proj.bias", 1, D, 0, 0, 0);
    A->t0_w = add(pt, "t_embedder.mlp.0.weight", 2, D, FREQ_DIM, 0, 0);
    A->t0_b = add(pt, "t_embedder.mlp.0.bias", 1, D, 0, 0, 0);
    A->t2_w = add(pt, "t_embedder.mlp.2.weight", 2, D, D, 0, 0);
    A->t2_b = add(pt, "t_embedder.mlp.2.bias", 1, D, 0, 0, 0);
    A->ytab = add(pt, "y_embedder.embedding_table.weight", 2, c->num_classes + 1, D, 0, 0);
    pt->info[A->ytab].no_decay = 1;   // an embedding: no weight decay, not Muon
    for (int l = 0; l < c->depth; l++) {
        blk_params *b = &A->bp[l];
#define ADD(field, suffix, nd, s0, s1)                                   \
    snprintf(n, sizeof n, "blocks.%d.%s", l, suffix);                    \
    b->field = add(pt, n, nd, s0, s1, 0, 0)
        ADD(norm1, "norm1.weight", 1, D, 0);
        ADD(qkv_w, "attn.qkv.weight", 2, 3 * D, D);
        ADD(qkv_b, "attn.qkv.bias", 1, 3 * D, 0);
        b->qn = b->kn = -1;
        if (c->qk_norm) {
            ADD(qn, "attn.q_norm.weight", 1, HD, 0);
            ADD(kn, "attn.k_norm.weight", 1, HD, 0);
        }
        ADD(proj_w, "attn.proj.weight", 2, D, D);
        ADD(proj_b, "attn.proj.bias", 1, D, 0);
        ADD(norm2, "norm2.weight", 1, D, 0);
        ADD(w12_w, "mlp.w12.weight", 2, 2 * H, D);
        ADD(w12_b, "mlp.w12.bias", 1, 2 * H, 0);
        ADD(w3_w, "mlp.w3.weight", 2, D, H);
        ADD(w3_b, "mlp.w3.bias", 1, D, 0);
        ADD(ada_w, "adaLN_modulation.1.weight", 2, 6 * D, D);
        ADD(ada_b, "adaLN_modulation.1.bias", 1, 6 * D, 0);
#undef ADD
    }
    A->nf_w = add(pt, "final_layer.norm_final.weight", 1, D, 0, 0, 0);
    A->fl_w = add(pt, "final_layer.linear.weight", 2, p * p * C, D, 0, 0);
    A->fl_b = add(pt, "final_layer.linear.bias", 1, p * p * C, 0, 0, 0);
    A->fa_w = add(pt, "final_layer.adaLN_modulation.1.weight", 2, 2 * D, D, 0, 0);
    A->fa_b = add(pt, "final_layer.adaLN_modulation.1.bias", 1, 2 * D, 0, 0, 0);
}

int64_t ldit_param_count(const ldit_config *c) {
    if (ldit_config_validate(c)) return -1;
    struct ldit_acts A;
    A.bp = xcalloc(c->depth, sizeof *A.bp);
    param_table pt;
    param_table_init(&pt);
    declare(&pt, c, &A);
    int64_t n = 0;   // pt.total would include the per-parameter alignment padding
    for (int i = 0; i < pt.count; i++) n += pt.info[i].numel;
    param_table_free(&pt);
    free(A.bp);
    return n;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

void ldit_init_params(ldit *m, uint64_t seed) {
    param_table *pt = &m->pt;
    for (int i = 0; i < pt->count; i++) {
        const param_info *pi = &pt->info[i];
        float *w = param_data(pt, i);
        const char *nm = pi->name;
        if (ends_with(nm, "norm1.weight") || ends_with(nm, "norm2.weight") ||
            ends_with(nm, "q_norm.weight") || ends_with(nm, "k_norm.weight") ||
            ends_with(nm, "norm_final.weight")) {
            for (int64_t k = 0; k < pi->numel; k++) w[k] = 1.0f;
        } else if (ends_with(nm, ".bias") || strstr(nm, "adaLN_modulation.1.") ||
                   !strcmp(nm, "final_layer.linear.weight")) {
            memset(w, 0, sizeof(float) * pi->numel);          // adaLN-Zero, zero biases
        } else if (!strcmp(nm, "y_embedder.embedding_table.weight") ||
                   !strncmp(nm, "t_embedder.mlp.", 15)) {
            philox_normal(w, pi->numel, seed, (uint32_t)i, 0);
            for (int64_t k = 0; k < pi->numel; k++) w[k] *= 0.02f;
        } else {
            // xavier_uniform on the (shape[0], rest) view: U(-a, a), a = sqrt(6/(fi+fo))
            const double fo = (double)pi->shape[0], fi = (double)pi->numel / fo;
            const float a = (float)sqrt(6.0 / (fi + fo));
            philox_uniform(w, pi->numel, seed, (uint32_t)i, 0);
            for (int64_t k = 0; k < pi->numel; k++) w[k] = (2.0f * w[k] - 1.0f) * a;
        }
    }
}

// ---- activations ----------------------------------------------------------

static void carve(arena *ar, ldit *m) {
    const ldit_config *c = &m->cfg;
    struct ldit_acts *A = m->a;
    const size_t B = m->Bmax, T = m->T, N = B * T, D = c->hidden, H = m->H;
    const size_t P = (size_t)c->patch * c->patch * c->in_channels, NH = c->heads;
    const size_t HD = D / NH;
    m->pos_embed = arena_floats(ar, T * D);
    m->rope_cos = arena_floats(ar, T * HD);
    m->rope_sin = arena_floats(ar, T * HD);
    A->xtok = arena_floats(ar, N * P);
    A->temb_in = arena_floats(ar, B * FREQ_DIM);
    A->t1 = arena_floats(ar, B * D);
    A->t1s = arena_floats(ar, B * D);
    A->temb = arena_floats(ar, B * D);
    A->yemb = arena_floats(ar, B * D);
    A->c = arena_floats(ar, B * D);
    A->sc = arena_floats(ar, B * D);
    A->y = arena_alloc(ar, B * sizeof(int32_t));
    A->drop = arena_alloc(ar, B);
    for (int l = 0; l < c->depth; l++) {
        blk_acts *a = &A->ba[l];
        a->x_in = arena_floats(ar, N * D);
        a->rstd1 = arena_floats(ar, N);
        a->xn1 = arena_floats(ar, N * D);
        a->xm1 = arena_floats(ar, N * D);
        a->qkv = arena_floats(ar, N * 3 * D);
        a->qraw = c->qk_norm ? arena_floats(ar, N * D) : NULL;
        a->kraw = c->qk_norm ? arena_floats(ar, N * D) : NULL;
        a->rstd_q = c->qk_norm ? arena_floats(ar, N * NH) : NULL;
        a->rstd_k = c->qk_norm ? arena_floats(ar, N * NH) : NULL;
        a->att = arena_floats(ar, N * D);
        a->lse = arena_floats(ar, N * NH);
        a->ya = arena_floats(ar, N * D);
        a->x_mid = arena_floats(ar, N * D);
        a->rstd2 = arena_floats(ar, N);
        a->xn2 = arena_floats(ar, N * D);
        a->xm2 = arena_floats(ar, N * D);
        a->x12 = arena_floats(ar, N * 2 * H);
        a->hh = arena_floats(ar, N * H);
        a->ym = arena_floats(ar, N * D);
        a->ada = arena_floats(ar, B * 6 * D);
    }
    A->x_out = arena_floats(ar, N * D);
    A->rstd_f = arena_floats(ar, N);
    A->xnf = arena_floats(ar, N * D);
    A->xmf = arena_floats(ar, N * D);
    A->ada_f = arena_floats(ar, B * 2 * D);
    A->otok = arena_floats(ar, N * P);
    A->qn_tmp = c->qk_norm ? arena_floats(ar, N * D) : NULL;
    const int staged = m->dev == DEVICE_CUDA;   // the CPU layout is unchanged
    const size_t X = B * (size_t)c->in_channels * c->input_size * c->input_size;
    A->io_x = staged ? arena_floats(ar, X) : NULL;
    A->io_t = staged ? arena_floats(ar, B) : NULL;
    A->io_v = staged ? arena_floats(ar, X) : NULL;
    // backward scratch, shared by all blocks
    A->dres = arena_floats(ar, N * D);
    A->dy = arena_floats(ar, N * D);
    A->dxm = arena_floats(ar, N * D);
    A->dxn = arena_floats(ar, N * D);
    A->dqkv = arena_floats(ar, N * 3 * D);
    A->datt = arena_floats(ar, N * D);
    A->dx12 = arena_floats(ar, N * 2 * H);
    A->dh = arena_floats(ar, N * H);
    A->dtmp = arena_floats(ar, 2 * N * D);   // qknorm_rope_backward's GPU scratch
    A->dada = arena_floats(ar, B * 6 * D);
    A->dsc = arena_floats(ar, B * D);
    A->dc = arena_floats(ar, B * D);
    A->dt1s = arena_floats(ar, B * D);
    A->dt1 = arena_floats(ar, B * D);
    A->dotok = arena_floats(ar, N * P);
    A->dxtok = arena_floats(ar, N * P);
}

int ldit_create(ldit **out, const ldit_config *cfg, int Bmax) {
    *out = NULL;
    if (ldit_config_validate(cfg)) return LDIT_ECONFIG;
    if (Bmax < 1) return vel_fail(LDIT_EBATCH, "Bmax %d", Bmax);
    ldit *m = xcalloc(1, sizeof *m);
    m->cfg = *cfg;
    m->Bmax = Bmax;
    m->T = ldit_tokens(cfg);
    m->H = ldit_mlp_hidden(cfg);
    m->drop_host = xcalloc((size_t)Bmax, 1);
    m->a = xcalloc(1, sizeof *m->a);
    m->a->bp = xcalloc(cfg->depth, sizeof *m->a->bp);
    m->a->ba = xcalloc(cfg->depth, sizeof *m->a->ba);
    param_table_init(&m->pt);
    declare(&m->pt, cfg, m->a);
    int rc = param_table_commit(&m->pt);
    if (!rc) {
        arena_measure(&m->act);
        carve(&m->act, m);
        rc = arena_commit(&m->act);
    }
    if (rc) { ldit_destroy(&m); return rc; }
    m->act_bytes = m->act.size;
    carve(&m->act, m);
    const int S = cfg->input_size / cfg->patch;
    pos_embed_2d(m->pos_embed, S, S, cfg->hidden);
    rope2d_tables(m->rope_cos, m->rope_sin, S, S, cfg->hidden / cfg->heads, ROPE_THETA);
    *out = m;
    return 0;
}

// The fixed tables, computed on the host and copied to wherever the arena is.
static int upload_tables(ldit *m) {
    const ldit_config *c = &m->cfg;
    const int S = c->input_size / c->patch, HD = c->hidden / c->heads;
    const size_t npe = (size_t)m->T * c->hidden, nr = (size_t)m->T * HD;
    float *pe = malloc(sizeof(float) * npe), *rc = malloc(sizeof(float) * nr), *rs = malloc(sizeof(float) * nr);
    int e = VEL_ENOMEM;
    if (pe && rc && rs) {
        pos_embed_2d(pe, S, S, c->hidden);
        rope2d_tables(rc, rs, S, S, HD, ROPE_THETA);
        e = device_copy(m->pos_embed, pe, sizeof(float) * npe);
        if (!e) e = device_copy(m->rope_cos, rc, sizeof(float) * nr);
        if (!e) e = device_copy(m->rope_sin, rs, sizeof(float) * nr);
    } else {
        vel_fail(e, "lightningdit tables");
    }
    free(pe); free(rc); free(rs);
    return e;
}

static void carve_model(void *m, arena *ar) { carve(ar, m); }
static int upload_model_tables(void *m) { return upload_tables(m); }

int ldit_to_device(ldit *m, device_kind kind) {
    if (kind == m->dev) return 0;
    // carve() reads m->dev: on the GPU it lays out the staging buffers
    int e = param_move_with_arena(&m->pt, &m->act, &m->dev, kind, carve_model, upload_model_tables, m);
    if (e) return e;   // as it was
    m->act_bytes = m->act.size;
    m->lastB = 0;
    return 0;
}

void ldit_destroy(ldit **pm) {
    ldit *m = *pm;
    if (!m) return;
    param_table_free(&m->pt);
    arena_free(&m->act);
    free(m->drop_host);
    if (m->a) { free(m->a->bp); free(m->a->ba); free(m->a); }
    free(m);
    *pm = NULL;
}

// ---- forward --------------------------------------------------------------

#define PV(i) param_data(&m->pt, (i))
#define PG(i) param_grad(&m->pt, (i))

// A contiguous (N, D) buffer into the D-wide slot s (0 q, 1 k, 2 v) of
// packed qkv rows (nn/rows.h, so it runs where the model lives).
static void slot_put(float *qkv, const float *src, int N, int D, int s) {
    rows_copy_forward(qkv + (size_t)s * D, src, N, D, 3 * D, D);
}

// Copies and fills inside a step go where the memory lives (nn/device.h);
// a failure becomes the op API's sticky error, read by the caller's nn_sync
// like any op's (nn/backend.h), so a step never half-reports.
static void copy(void *dst, const void *src, size_t bytes) {
    int e = device_copy(dst, src, bytes);
    if (e) nn_fail(e, "lightningdit", vel_error_detail());
}
static void zero(float *p, size_t n) {
    int e = device_zero(p, n * sizeof(float));
    if (e) nn_fail(e, "lightningdit", vel_error_detail());
}

static void block_forward(ldit *m, int l, int B, float *x_next) {
    const ldit_config *c = &m->cfg;
    const blk_params *p = &m->a->bp[l];
    blk_acts *a = &m->a->ba[l];
    const int T = m->T, N = B * T, D = c->hidden, NH = c->heads, HD = D / NH, H = m->H;
    linear_forward(a->ada, m->a->sc, PV(p->ada_w), PV(p->ada_b), B, D, 6 * D);
    // attention branch
    rmsnorm_forward(a->xn1, a->rstd1, a->x_in, PV(p->norm1), N, D, NORM_EPS);
    modulate_forward(a->xm1, a->xn1, a->ada, a->ada + D, B, T, D, 6 * D);
    linear_forward(a->qkv, a->xm1, PV(p->qkv_w), PV(p->qkv_b), N, D, 3 * D);
    if (c->qk_norm)   // q/k RMSNorm + RoPE in one pass (raw q/k and rstd kept)
        qknorm_rope_forward(a->qkv, a->qraw, a->kraw, a->rstd_q, a->rstd_k, PV(p->qn), PV(p->kn),
                            m->rope_cos, m->rope_sin, m->a->qn_tmp, B, T, NH, HD, NORM_EPS);
    else
        for (int s = 0; s < 2; s++) {
            float *slot = a->qkv + (size_t)s * D;
            rope_forward(slot, slot, m->rope_cos, m->rope_sin, B, T, NH, HD, 3 * D, 3 * D);
        }
    attention_forward(a->att, a->lse, a->qkv, B, T, NH, HD);
    linear_forward(a->ya, a->att, PV(p->proj_w), PV(p->proj_b), N, D, D);
    gate_residual_forward(a->x_mid, a->x_in, a->ya, a->ada + 2 * D, B, T, D, 6 * D);
    // MLP branch
    rmsnorm_forward(a->xn2, a->rstd2, a->x_mid, PV(p->norm2), N, D, NORM_EPS);
    modulate_forward(a->xm2, a->xn2, a->ada + 3 * D, a->ada + 4 * D, B, T, D, 6 * D);
    linear_forward(a->x12, a->xm2, PV(p->w12_w), PV(p->w12_b), N, D, 2 * H);
    swiglu_forward(a->hh, a->x12, N, H);
    linear_forward(a->ym, a->hh, PV(p->w3_w), PV(p->w3_b), N, H, D);
    gate_residual_forward(x_next, a->x_mid, a->ym, a->ada + 5 * D, B, T, D, 6 * D);
}

int ldit_forward(ldit *m, float *v, const float *x, const float *t,
                 const int32_t *y, const uint8_t *drop, int B) {
    const ldit_config *c = &m->cfg;
    struct ldit_acts *A = m->a;
    m->lastB = 0;   // a failed forward leaves nothing for ldit_backward to use
    if (B < 1 || B > m->Bmax) return LDIT_EBATCH;
    const int T = m->T, N = B * T, D = c->hidden, S = c->input_size, p = c->patch;
    const int C = c->in_channels, P = p * p * C;
    // Labels arrive on the host: checked here, before anything is written,
    // then copied next to the model (the device op cannot check them).
    for (int b = 0; b < B; b++) {
        const int r = (drop && drop[b]) ? c->num_classes : y[b];
        if (r < 0 || r > c->num_classes) return LDIT_ELABEL;
        m->drop_host[b] = drop ? (drop[b] != 0) : 0;
    }
    copy(A->y, y, sizeof(int32_t) * B);
    copy(A->drop, m->drop_host, (size_t)B);
    label_embed_forward(A->yemb, PV(A->ytab), A->y, A->drop, B, D, c->num_classes);
    // Host x, t, v of a model on the GPU go through its staging buffers.
    const size_t X = (size_t)B * C * S * S;
    float *vout = v;
    if (m->dev == DEVICE_CUDA) {
        if (!nn_on_device(x)) { copy(A->io_x, x, sizeof(float) * X); x = A->io_x; }
        if (!nn_on_device(t)) { copy(A->io_t, t, sizeof(float) * B); t = A->io_t; }
        if (!nn_on_device(v)) vout = A->io_v;
    }
    // conditioning c = t_emb + y_emb, and SiLU(c) for every adaLN Linear
    timestep_embedding(A->temb_in, t, B, FREQ_DIM, MAX_PERIOD);
    linear_forward(A->t1, A->temb_in, PV(A->t0_w), PV(A->t0_b), B, FREQ_DIM, D);
    silu_forward(A->t1s, A->t1, (int64_t)B * D);
    linear_forward(A->temb, A->t1s, PV(A->t2_w), PV(A->t2_b), B, D, D);
    add_forward(A->c, A->temb, A->yemb, (int64_t)B * D);
    silu_forward(A->sc, A->c, (int64_t)B * D);
    // patch embedding (conv k = s = p == linear on CPQ patches) + position
    patchify_forward(A->xtok, x, B, C, S, S, p, PATCH_CPQ);
    float *x0 = A->ba[0].x_in;
    linear_forward(x0, A->xtok, PV(A->xe_w), PV(A->xe_b), N, P, D);
    // + pos_embed (T, D), the same row for every image: a (B, T*D) bias
    add_channel_bias_forward(x0, x0, m->pos_embed, B, T * D, 1);
    for (int l = 0; l < c->depth; l++)
        block_forward(m, l, B, l + 1 < c->depth ? A->ba[l + 1].x_in : A->x_out);
    // final layer: (shift, scale) = Linear(SiLU(c)); Linear(modulate(RMSNorm(x)))
    linear_forward(A->ada_f, A->sc, PV(A->fa_w), PV(A->fa_b), B, D, 2 * D);
    rmsnorm_forward(A->xnf, A->rstd_f, A->x_out, PV(A->nf_w), N, D, NORM_EPS);
    modulate_forward(A->xmf, A->xnf, A->ada_f, A->ada_f + D, B, T, D, 2 * D);
    linear_forward(A->otok, A->xmf, PV(A->fl_w), PV(A->fl_b), N, D, P);
    unpatchify_forward(vout, A->otok, B, C, S, S, p, PATCH_PQC);
    if (vout != v) copy(v, vout, sizeof(float) * X);
    m->lastB = B;
    return 0;
}

// ---- backward -------------------------------------------------------------

// On entry A->dres = d(block output); on exit d(block input).
static void block_backward(ldit *m, int l, int B) {
    const ldit_config *c = &m->cfg;
    struct ldit_acts *A = m->a;
    const blk_params *p = &A->bp[l];
    const blk_acts *a = &A->ba[l];
    const int T = m->T, N = B * T, D = c->hidden, NH = c->heads, HD = D / NH, H = m->H;
    zero(A->dada, (size_t)B * 6 * D);
    // The first op to write each activation gradient of the block SETS it
    // (the _set ops) instead of adding to a zeroed buffer: no zeroing passes.
    // MLP branch: x_next = x_mid + gate2 * ym
    gate_residual_backward_set(NULL, A->dy, A->dada + 5 * D, A->dres, a->ym, a->ada + 5 * D, B, T, D, 6 * D);
    linear_backward_set(A->dh, PG(p->w3_w), PG(p->w3_b), A->dy, a->hh, PV(p->w3_w), N, H, D);
    swiglu_backward_set(A->dx12, A->dh, a->x12, N, H);
    linear_backward_set(A->dxm, PG(p->w12_w), PG(p->w12_b), A->dx12, a->xm2, PV(p->w12_w), N, D, 2 * H);
    modulate_backward_set(A->dxn, A->dada + 3 * D, A->dada + 4 * D, A->dxm, a->xn2, a->ada + 4 * D, B, T, D, 6 * D);
    rmsnorm_backward(A->dres, PG(p->norm2), A->dxn, a->x_mid, PV(p->norm2), a->rstd2, N, D);
    // attention branch: x_mid = x_in + gate1 * ya
    gate_residual_backward_set(NULL, A->dy, A->dada + 2 * D, A->dres, a->ya, a->ada + 2 * D, B, T, D, 6 * D);
    linear_backward_set(A->datt, PG(p->proj_w), PG(p->proj_b), A->dy, a->att, PV(p->proj_w), N, D, D);
    attention_backward_set(A->dqkv, A->datt, a->qkv, a->att, a->lse, B, T, NH, HD);
    if (c->qk_norm)   // in place on dqkv's q and k parts
        qknorm_rope_backward(A->dqkv, PG(p->qn), PG(p->kn), a->qraw, a->kraw, a->rstd_q, a->rstd_k,
                             PV(p->qn), PV(p->kn), m->rope_cos, m->rope_sin, A->dtmp, B, T, NH, HD);
    else
        for (int s = 0; s < 2; s++) {
            rope_backward_set(A->dtmp, A->dqkv + (size_t)s * D, m->rope_cos, m->rope_sin, B, T, NH, HD, D, 3 * D);
            slot_put(A->dqkv, A->dtmp, N, D, s);
        }
    linear_backward_set(A->dxm, PG(p->qkv_w), PG(p->qkv_b), A->dqkv, a->xm1, PV(p->qkv_w), N, D, 3 * D);
    modulate_backward_set(A->dxn, A->dada, A->dada + D, A->dxm, a->xn1, a->ada + D, B, T, D, 6 * D);
    rmsnorm_backward(A->dres, PG(p->norm1), A->dxn, a->x_in, PV(p->norm1), a->rstd1, N, D);
    // adaLN Linear
    linear_backward(A->dsc, PG(p->ada_w), PG(p->ada_b), A->dada, A->sc, PV(p->ada_w), B, D, 6 * D);
}

void ldit_backward(ldit *m, float *dx, const float *dv) {
    const ldit_config *c = &m->cfg;
    struct ldit_acts *A = m->a;
    const int B = m->lastB;
    CHECK(B >= 1);
    const int T = m->T, N = B * T, D = c->hidden, S = c->input_size, p = c->patch;
    const int C = c->in_channels, P = p * p * C;
    const size_t X = (size_t)B * C * S * S;
    float *dxs = dx;   // host dv / dx of a model on the GPU: staged like the forward's
    if (m->dev == DEVICE_CUDA) {
        if (!nn_on_device(dv)) { copy(A->io_v, dv, sizeof(float) * X); dv = A->io_v; }
        if (dx && !nn_on_device(dx)) { copy(A->io_x, dx, sizeof(float) * X); dxs = A->io_x; }
    }
    // final layer
    zero(A->dotok, (size_t)N * P);
    unpatchify_backward(A->dotok, dv, B, C, S, S, p, PATCH_PQC);
    linear_backward_set(A->dxm, PG(A->fl_w), PG(A->fl_b), A->dotok, A->xmf, PV(A->fl_w), N, D, P);
    zero(A->dada, (size_t)B * 2 * D);
    modulate_backward_set(A->dxn, A->dada, A->dada + D, A->dxm, A->xnf, A->ada_f + D, B, T, D, 2 * D);
    rmsnorm_backward_set(A->dres, PG(A->nf_w), A->dxn, A->x_out, PV(A->nf_w), A->rstd_f, N, D);
    zero(A->dsc, (size_t)B * D);
    linear_backward(A->dsc, PG(A->fa_w), PG(A->fa_b), A->dada, A->sc, PV(A->fa_w), B, D, 2 * D);
    for (int l = c->depth - 1; l >= 0; l--) block_backward(m, l, B);
    // patch embedding (pos_embed is fixed)
    if (dx) zero(A->dxtok, (size_t)N * P);
    linear_backward(dx ? A->dxtok : NULL, PG(A->xe_w), PG(A->xe_b), A->dres, A->xtok,
                    PV(A->xe_w), N, P, D);
    if (dx) patchify_backward(dxs, A->dxtok, B, C, S, S, p, PATCH_CPQ);
    if (dxs != dx) copy(dx, dxs, sizeof(float) * X);
    // conditioning
    zero(A->dc, (size_t)B * D);
    silu_backward(A->dc, A->dsc, A->c, (int64_t)B * D);
    label_embed_backward(PG(A->ytab), A->dc, A->y, A->drop, B, D, c->num_classes);
    zero(A->dt1s, (size_t)B * D);
    linear_backward(A->dt1s, PG(A->t2_w), PG(A->t2_b), A->dc, A->t1s, PV(A->t2_w), B, D, D);
    zero(A->dt1, (size_t)B * D);
    silu_backward(A->dt1, A->dt1s, A->t1, (int64_t)B * D);
    linear_backward(NULL, PG(A->t0_w), PG(A->t0_b), A->dt1, A->temb_in, PV(A->t0_w), B, FREQ_DIM, D);
}

// ---- one block alone ------------------------------------------------------

int ldit_block_forward(ldit *m, int l, float *x_out, const float *x_in, const float *sc, int B) {
    CHECK(l >= 0 && l < m->cfg.depth);
    m->lastB = 0;   // the model's forward state is no longer valid
    if (B < 1 || B > m->Bmax) return LDIT_EBATCH;
    const size_t D = m->cfg.hidden;
    copy(m->a->ba[l].x_in, x_in, sizeof(float) * B * m->T * D);
    copy(m->a->sc, sc, sizeof(float) * B * D);
    block_forward(m, l, B, x_out);
    return 0;
}

void ldit_block_backward(ldit *m, int l, float *dx_in, float *dsc, const float *dx_out, int B) {
    CHECK(l >= 0 && l < m->cfg.depth && B >= 1 && B <= m->Bmax);
    struct ldit_acts *A = m->a;
    const size_t D = m->cfg.hidden, ND = (size_t)B * m->T * D;
    copy(A->dres, dx_out, sizeof(float) * ND);
    zero(A->dsc, (size_t)B * D);
    block_backward(m, l, B);
    if (dx_in) add_inplace(dx_in, A->dres, (int64_t)ND);
    if (dsc) add_inplace(dsc, A->dsc, (int64_t)B * D);
}
