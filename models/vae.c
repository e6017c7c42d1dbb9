// vae.c: the CompVis encoder/decoder layout on the tape, the presets, init
// and the tokenizer loss step. See vae.h.
#include "models/vae.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "core/philox.h"
#include "nn/shape_ops.h"

static void set_mult(vae_config *c, int n, const int *m) {
    c->nlevels = n;
    for (int i = 0; i < n; i++) c->ch_mult[i] = m[i];
}

int vae_config_preset(const char *name, int in_ch, vae_config *c) {
    memset(c, 0, sizeof *c);
    if (!name || (in_ch != 1 && in_ch != 3)) return VEL_EINVAL;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->in_ch = c->out_ch = in_ch;
    c->groups = 32;
    if (!strcmp(name, "f16d32") || !strcmp(name, "kl-f16")) {
        static const int m[5] = {1, 1, 2, 2, 4};
        set_mult(c, 5, m);
        c->resolution = 256;
        c->ch = 128;
        c->num_res_blocks = 2;
        c->attn_res[0] = 16;
        c->nattn = 1;
        c->z_channels = !strcmp(name, "f16d32") ? 32 : 16;
    } else if (!strcmp(name, "f4c4") || !strcmp(name, "f4c8") || !strcmp(name, "f8c4")) {
        static const int m3[3] = {1, 2, 2}, m4[4] = {1, 2, 2, 2};
        if (!strcmp(name, "f8c4")) set_mult(c, 4, m4);
        else set_mult(c, 3, m3);
        c->resolution = 32;
        c->ch = 32;
        c->num_res_blocks = 1;
        c->nattn = 0;
        c->z_channels = !strcmp(name, "f4c8") ? 8 : 4;
    } else {
        return VEL_EINVAL;
    }
    return vae_config_validate(c);
}

int vae_latent_side(const vae_config *c) { return c->resolution >> (c->nlevels - 1); }

int vae_config_validate(const vae_config *c) {
    if (c->nlevels < 1 || c->nlevels > VAE_MAX_LEVELS || c->ch <= 0 || c->groups <= 0 ||
        c->num_res_blocks < 0 || c->z_channels <= 0 || c->in_ch <= 0 || c->out_ch <= 0 ||
        c->nattn < 0 || c->nattn > VAE_MAX_ATTN)
        return VEL_EINVAL;
    if (c->resolution <= 0 || c->resolution % (1 << (c->nlevels - 1))) return VEL_EINVAL;
    for (int i = 0; i < c->nlevels; i++)
        if (c->ch_mult[i] <= 0 || (c->ch * c->ch_mult[i]) % c->groups) return VEL_EINVAL;
    return 0;
}

static int has_attn(const vae_config *c, int res) {
    for (int i = 0; i < c->nattn; i++)
        if (c->attn_res[i] == res) return 1;
    return 0;
}

// CompVis Encoder + quant_conv. Buffer 0: images.
static void build_encoder(vtape *t, const vae_config *c) {
    char p[PARAM_NAME_MAX];
    int G = c->groups;
    int x = vtape_buffer(t, c->in_ch, c->resolution, c->resolution);
    x = vtape_conv(t, "encoder.conv_in", x, c->ch, 3, 1, 1, 1, 1, 1);
    int res = c->resolution;
    for (int i = 0; i < c->nlevels; i++) {
        int oc = c->ch * c->ch_mult[i];
        for (int j = 0; j < c->num_res_blocks; j++) {
            snprintf(p, sizeof p, "encoder.down.%d.block.%d", i, j);
            x = vtape_resnet_block(t, p, x, oc, G);
            if (has_attn(c, res)) {
                snprintf(p, sizeof p, "encoder.down.%d.attn.%d", i, j);
                x = vtape_attn_block(t, p, x, G);
            }
        }
        if (i != c->nlevels - 1) {
            snprintf(p, sizeof p, "encoder.down.%d.downsample", i);
            x = vtape_downsample(t, p, x);
            res /= 2;
        }
    }
    int bc = t->bufs[x].C;
    x = vtape_resnet_block(t, "encoder.mid.block_1", x, bc, G);
    x = vtape_attn_block(t, "encoder.mid.attn_1", x, G);
    x = vtape_resnet_block(t, "encoder.mid.block_2", x, bc, G);
    x = vtape_groupnorm(t, "encoder.norm_out", x, G, 1e-6f);
    x = vtape_silu(t, x);
    x = vtape_conv(t, "encoder.conv_out", x, 2 * c->z_channels, 3, 1, 1, 1, 1, 1);
    vtape_conv(t, "quant_conv", x, 2 * c->z_channels, 1, 1, 0, 0, 0, 0);
}

// post_quant_conv + CompVis Decoder. Buffer 0: z. Parameters are declared in
// execution order (up.L-1 first), not CompVis's registration order (up.0
// first); checkpoints match by name, so the order does not matter.
static void build_decoder(vtape *t, const vae_config *c) {
    char p[PARAM_NAME_MAX];
    int G = c->groups, L = c->nlevels;
    int zs = vae_latent_side(c);
    int x = vtape_buffer(t, c->z_channels, zs, zs);
    x = vtape_conv(t, "post_quant_conv", x, c->z_channels, 1, 1, 0, 0, 0, 0);
    int bc = c->ch * c->ch_mult[L - 1];
    x = vtape_conv(t, "decoder.conv_in", x, bc, 3, 1, 1, 1, 1, 1);
    x = vtape_resnet_block(t, "decoder.mid.block_1", x, bc, G);
    x = vtape_attn_block(t, "decoder.mid.attn_1", x, G);
    x = vtape_resnet_block(t, "decoder.mid.block_2", x, bc, G);
    int res = zs;
    for (int i = L - 1; i >= 0; i--) {
        int oc = c->ch * c->ch_mult[i];
        for (int j = 0; j < c->num_res_blocks + 1; j++) {
            snprintf(p, sizeof p, "decoder.up.%d.block.%d", i, j);
            x = vtape_resnet_block(t, p, x, oc, G);
            if (has_attn(c, res)) {
                snprintf(p, sizeof p, "decoder.up.%d.attn.%d", i, j);
                x = vtape_attn_block(t, p, x, G);
            }
        }
        if (i != 0) {
            snprintf(p, sizeof p, "decoder.up.%d.upsample", i);
            x = vtape_upsample_block(t, p, x);
            res *= 2;
        }
    }
    x = vtape_groupnorm(t, "decoder.norm_out", x, G, 1e-6f);
    x = vtape_silu(t, x);
    vtape_conv(t, "decoder.conv_out", x, c->out_ch, 3, 1, 1, 1, 1, 1);
}

int vae_create(vae **out, const vae_config *cfg, int Bmax, int train) {
    *out = NULL;
    if (vae_config_validate(cfg) || Bmax < 1) return VEL_EINVAL;
    vae *m = calloc(1, sizeof *m);
    if (!m) return VEL_ENOMEM;
    m->cfg = *cfg;
    m->Bmax = Bmax;
    m->train = train;
    m->zside = vae_latent_side(cfg);
    param_table_init(&m->pt);
    vtape_init(&m->enc, &m->pt);
    vtape_init(&m->dec, &m->pt);
    build_encoder(&m->enc, cfg);
    build_decoder(&m->dec, cfg);
    int64_t zn = (int64_t)Bmax * cfg->z_channels * m->zside * m->zside;
    int rc = param_table_commit(&m->pt);
    if (!rc) rc = vtape_alloc(&m->enc, Bmax, train);
    if (!rc) rc = vtape_alloc(&m->dec, Bmax, train);
    if (!rc) {
        m->mu = calloc((size_t)zn, sizeof(float));
        m->logvar = calloc((size_t)zn, sizeof(float));
        m->dmoments = calloc((size_t)(2 * zn), sizeof(float));
        m->zeros = calloc((size_t)zn, sizeof(float));
        if (!m->mu || !m->logvar || !m->dmoments || !m->zeros) rc = VEL_ENOMEM;
    }
    if (!rc && train) {
        int64_t nx = (int64_t)Bmax * cfg->out_ch * cfg->resolution * cfg->resolution;
        m->z = calloc((size_t)zn, sizeof(float));
        m->dz = calloc((size_t)zn, sizeof(float));
        m->dmu = calloc((size_t)zn, sizeof(float));
        m->dlv = calloc((size_t)zn, sizeof(float));
        m->dx = calloc((size_t)nx, sizeof(float));
        if (!m->z || !m->dz || !m->dmu || !m->dlv || !m->dx) rc = VEL_ENOMEM;
    }
    if (rc) { vae_destroy(&m); return rc; }
    *out = m;
    return 0;
}

void vae_destroy(vae **pm) {
    if (!pm || !*pm) return;
    vae *m = *pm;
    vtape_free(&m->enc);
    vtape_free(&m->dec);
    param_table_free(&m->pt);
    free(m->mu);
    free(m->logvar);
    free(m->dmoments);
    free(m->zeros);
    free(m->z); free(m->dz); free(m->dmu); free(m->dlv); free(m->dx);
    free(m);
    *pm = NULL;
}

void vae_init_params(vae *m, uint64_t seed) { vtape_init_params(&m->pt, seed); }

void vae_encode(vae *m, const float *x, int B) {
    CHECK(B >= 1 && B <= m->Bmax);
    vtape *t = &m->enc;
    memcpy(t->bufs[0].v, x, sizeof(float) * (size_t)(t->bufs[0].per * B));
    vtape_forward(t, B);
    int zc = m->cfg.z_channels, hw = m->zside * m->zside;
    split_channels_forward(m->mu, m->logvar, t->bufs[vtape_output(t)].v, B, zc, zc, hw);
}

const float *vae_decode(vae *m, const float *z, int B) {
    CHECK(B >= 1 && B <= m->Bmax);
    vtape *t = &m->dec;
    memcpy(t->bufs[0].v, z, sizeof(float) * (size_t)(t->bufs[0].per * B));
    vtape_forward(t, B);
    return t->bufs[vtape_output(t)].v;
}

void vae_decoder_backward(vae *m, float *dz, const float *dxrec, int B) {
    vtape *t = &m->dec;
    vtape_backward(t, dxrec, B);
    if (dz) {
        int64_t n = t->bufs[0].per * B;
        for (int64_t i = 0; i < n; i++) dz[i] += t->bufs[0].g[i];
    }
}

void vae_encoder_backward(vae *m, const float *dmu, const float *dlogvar, int B) {
    int zc = m->cfg.z_channels, hw = m->zside * m->zside;
    int64_t n = (int64_t)B * zc * hw;
    if (!dmu) dmu = m->zeros;
    if (!dlogvar) dlogvar = m->zeros;
    memset(m->dmoments, 0, sizeof(float) * 2 * (size_t)n);
    split_channels_backward(m->dmoments, dmu, dlogvar, B, zc, zc, hw);
    vtape_backward(&m->enc, m->dmoments, B);
}

int vae_train_step(vae *m, const float *x, const float *eps, int B, const vae_loss_cfg *lc,
                   vae_loss_parts *parts, float *xrec_out) {
    if (!m->train || B < 1 || B > m->Bmax || !lc) return VEL_EINVAL;
    const vae_config *c = &m->cfg;
    int zc = c->z_channels, zs = m->zside;
    int64_t nz = (int64_t)B * zc * zs * zs;
    int64_t nx = (int64_t)B * c->out_ch * c->resolution * c->resolution;
    vae_encode(m, x, B);
    float *z = m->z, *dz = m->dz, *dmu = m->dmu, *dlv = m->dlv, *dx = m->dx;
    memset(dz, 0, sizeof(float) * (size_t)nz);
    memset(dmu, 0, sizeof(float) * (size_t)nz);
    memset(dlv, 0, sizeof(float) * (size_t)nz);
    memset(dx, 0, sizeof(float) * (size_t)nx);
    reparam_forward(z, m->mu, m->logvar, eps, nz);
    const float *xrec = vae_decode(m, z, B);
    if (xrec_out) memcpy(xrec_out, xrec, sizeof(float) * (size_t)nx);
    vae_loss_parts lp;
    vae_loss(lc, x, xrec, m->mu, m->logvar, B, nx / B, zc, zs * zs, dx, dmu, dlv, &lp);
    double ss = 0;
    for (int64_t i = 0; i < nz; i++) {
        float lv = m->logvar[i];
        lv = lv < LOGVAR_MIN ? LOGVAR_MIN : lv > LOGVAR_MAX ? LOGVAR_MAX : lv;
        ss += exp(0.5 * lv);
    }
    lp.mean_sigma = ss / (double)nz;
    vae_decoder_backward(m, dz, dx, B);
    reparam_backward(dmu, dlv, dz, m->logvar, eps, nz);
    vae_encoder_backward(m, dmu, dlv, B);
    if (parts) *parts = lp;
    return 0;
}

static double tape_flops(const vtape *t, int B) {
    double f = 0;
    for (int i = 0; i < t->nops; i++) {
        const vtape_op *o = &t->ops[i];
        const vtape_buf *ob = &t->bufs[o->out];
        if (o->kind == VT_CONV)
            f += 2.0 * B * (double)o->OC * o->C * o->k * o->k * ob->H * ob->W;
        else if (o->kind == VT_ATTN) {
            double T = (double)o->H * o->W;
            f += 2.0 * 2.0 * B * o->C * T * T;
        }
    }
    return f;
}

double vae_forward_flops(const vae *m, int B) {
    return tape_flops(&m->enc, B) + tape_flops(&m->dec, B);
}

void vae_sigma(float *sigma, const float *logvar, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float l = logvar[i];
        l = l < LOGVAR_MIN ? LOGVAR_MIN : l > LOGVAR_MAX ? LOGVAR_MAX : l;
        sigma[i] = expf(0.5f * l);
    }
}
