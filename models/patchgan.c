// patchgan.c: the PatchGAN discriminator (see patchgan.h).
#include "models/patchgan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/activation.h"
#include "core/base.h"
#include "nn/batchnorm.h"
#include "core/philox.h"

#define LRELU 0.2f
#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

static int declare(patchgan *d) {
    // Declares every parameter (sizes only) and fills the layer table; returns
    // VEL_EINVAL if the input is too small for the stack.
    const patchgan_config *c = &d->cfg;
    int C = c->in_ch, H = d->H, W = d->W, mod = 0;
    char nm[PARAM_NAME_MAX];
    d->nl = c->n_layers + 2;
    int mult = 1;
    for (int l = 0; l < d->nl; l++) {
        patchgan_layer *L = &d->L[l];
        int last = l == d->nl - 1, first = l == 0;
        int OC, stride = (l < c->n_layers) ? 2 : 1;
        if (first) OC = c->ndf;
        else if (last) OC = 1;
        else {
            mult = 1 << (l < 3 ? l : 3);
            OC = c->ndf * mult;
        }
        L->conv = conv2d_make(1, C, H, W, OC, 4, stride, 1);
        if (conv2d_validate(&L->conv)) return VEL_EINVAL;
        int has_bias = first || last, has_bn = !first && !last;
        snprintf(nm, sizeof nm, "main.%d.weight", mod);
        param_add(&d->pt, nm, 4, (int64_t[]){OC, C, 4, 4});
        L->pw = d->pt.count - 1;
        L->pb = -1;
        if (has_bias) {
            snprintf(nm, sizeof nm, "main.%d.bias", mod);
            param_add(&d->pt, nm, 1, (int64_t[]){OC});
            L->pb = d->pt.count - 1;
        }
        mod++;
        L->bw = L->bb = L->rm = L->rv = -1;
        if (has_bn) {
            static const char *bn_names[4] = {"weight", "bias", "running_mean", "running_var"};
            int *ids[4] = {&L->bw, &L->bb, &L->rm, &L->rv};
            for (int k = 0; k < 4; k++) {
                snprintf(nm, sizeof nm, "main.%d.%s", mod, bn_names[k]);
                param_add(&d->pt, nm, 1, (int64_t[]){OC});
                *ids[k] = d->pt.count - 1;
            }
            mod++;
        }
        L->act = !last;
        if (L->act) mod++;
        L->in_per = (int64_t)C * H * W;
        H = conv2d_out_h(&L->conv);
        W = conv2d_out_w(&L->conv);
        C = OC;
        L->y_per = (int64_t)C * H * W;
    }
    d->out_c = C;
    d->out_h = H;
    d->out_w = W;
    return 0;
}

int patchgan_create(patchgan **out, const patchgan_config *cfg, int Bmax, int H, int W) {
    *out = NULL;
    if (!cfg || cfg->in_ch < 1 || cfg->ndf < 1 || cfg->n_layers < 1 ||
        cfg->n_layers > PATCHGAN_MAX_LAYERS - 2 || Bmax < 1 || H < 1 || W < 1)
        return VEL_EINVAL;
    patchgan *d = calloc(1, sizeof *d);
    if (!d) return VEL_ENOMEM;
    d->cfg = *cfg;
    d->Bmax = Bmax;
    d->H = H;
    d->W = W;
    param_table_init(&d->pt);
    int rc = declare(d);
    if (!rc) rc = param_table_commit(&d->pt);
    if (rc) { patchgan_destroy(&d); return rc; }
    // One block: input copy, then per layer y, dy (+ n, dn, mean, rstd) (+ a, da).
    int64_t tot = (int64_t)Bmax * d->L[0].in_per;
    size_t scratch = 0;
    for (int l = 0; l < d->nl; l++) {
        patchgan_layer *L = &d->L[l];
        int64_t y = (int64_t)Bmax * L->y_per;
        tot += 2 * y;
        if (L->bw >= 0) tot += 2 * y + 2 * L->conv.OC;
        if (L->act) tot += 2 * y;
        conv2d_cfg cc = L->conv;
        cc.B = Bmax;
        size_t s = conv2d_scratch_floats(&cc);
        if (s > scratch) scratch = s;
    }
    d->mem = calloc((size_t)tot, sizeof(float));
    d->scratch = calloc(scratch ? scratch : 1, sizeof(float));
    if (!d->mem || !d->scratch) { patchgan_destroy(&d); return VEL_ENOMEM; }
    float *p = d->mem;
    d->x = p; p += (int64_t)Bmax * d->L[0].in_per;
    for (int l = 0; l < d->nl; l++) {
        patchgan_layer *L = &d->L[l];
        int64_t y = (int64_t)Bmax * L->y_per;
        L->y = p; p += y;
        L->dy = p; p += y;
        if (L->bw >= 0) {
            L->n = p; p += y;
            L->dn = p; p += y;
            L->mean = p; p += L->conv.OC;
            L->rstd = p; p += L->conv.OC;
        }
        if (L->act) {
            L->a = p; p += y;
            L->da = p; p += y;
        }
    }
    *out = d;
    return 0;
}

void patchgan_destroy(patchgan **pd) {
    if (!pd || !*pd) return;
    patchgan *d = *pd;
    param_table_free(&d->pt);
    free(d->mem);
    free(d->scratch);
    free(d);
    *pd = NULL;
}

void patchgan_init_params(patchgan *d, uint64_t seed) {
    for (int l = 0; l < d->nl; l++) {
        patchgan_layer *L = &d->L[l];
        const param_info *w = &d->pt.info[L->pw];
        float *wv = param_data(&d->pt, L->pw);
        philox_normal(wv, w->numel, seed, 100u + (uint32_t)L->pw, 0);
        for (int64_t i = 0; i < w->numel; i++) wv[i] *= 0.02f;
        if (L->pb >= 0) memset(param_data(&d->pt, L->pb), 0, sizeof(float) * (size_t)L->conv.OC);
        if (L->bw >= 0) {
            int OC = L->conv.OC;
            float *g = param_data(&d->pt, L->bw);
            philox_normal(g, OC, seed, 100u + (uint32_t)L->bw, 0);
            for (int i = 0; i < OC; i++) g[i] = 1.0f + 0.02f * g[i];
            memset(param_data(&d->pt, L->bb), 0, sizeof(float) * (size_t)OC);
            memset(param_data(&d->pt, L->rm), 0, sizeof(float) * (size_t)OC);
            float *rv = param_data(&d->pt, L->rv);
            for (int i = 0; i < OC; i++) rv[i] = 1.0f;
        }
    }
}

int64_t patchgan_out_per(const patchgan *d) { return (int64_t)d->out_c * d->out_h * d->out_w; }

static float *layer_out(patchgan_layer *L) { return L->act ? L->a : L->bw >= 0 ? L->n : L->y; }
static float *layer_dout(patchgan_layer *L) { return L->act ? L->da : L->bw >= 0 ? L->dn : L->dy; }

const float *patchgan_forward(patchgan *d, const float *x, int B, int update_running) {
    CHECK(B >= 1 && B <= d->Bmax);
    memcpy(d->x, x, sizeof(float) * (size_t)(B * d->L[0].in_per));
    const float *in = d->x;
    param_table *pt = &d->pt;
    for (int l = 0; l < d->nl; l++) {
        patchgan_layer *L = &d->L[l];
        conv2d_cfg cc = L->conv;
        cc.B = B;
        int64_t n = (int64_t)B * L->y_per;
        int OC = cc.OC, HW = (int)(L->y_per / OC);
        conv2d_forward(L->y, in, param_data(pt, L->pw), L->pb >= 0 ? param_data(pt, L->pb) : NULL,
                       d->scratch, &cc);
        const float *cur = L->y;
        if (L->bw >= 0) {
            batchnorm_forward_train(L->n, L->mean, L->rstd,
                                    update_running ? param_data(pt, L->rm) : NULL,
                                    update_running ? param_data(pt, L->rv) : NULL, L->y,
                                    param_data(pt, L->bw), param_data(pt, L->bb), B, OC, HW,
                                    BN_EPS, BN_MOMENTUM);
            cur = L->n;
        }
        if (L->act) {
            leaky_relu_forward(L->a, cur, n, LRELU);
            cur = L->a;
        }
        in = cur;
    }
    return in;
}

void patchgan_backward(patchgan *d, float *dx, const float *dlogits, int B, int param_grads) {
    CHECK(B >= 1 && B <= d->Bmax);
    param_table *pt = &d->pt;
    for (int l = d->nl - 1; l >= 0; l--) {
        patchgan_layer *L = &d->L[l];
        int64_t n = (int64_t)B * L->y_per;
        int OC = L->conv.OC, HW = (int)(L->y_per / OC);
        const float *g = (l == d->nl - 1) ? dlogits : layer_dout(L);
        // Gradient flows act -> BN -> conv; each stage's gradient buffer is
        // zeroed before it accumulates.
        if (L->act) {
            const float *pre = L->bw >= 0 ? L->n : L->y;
            float *dpre = L->bw >= 0 ? L->dn : L->dy;
            memset(dpre, 0, sizeof(float) * (size_t)n);
            leaky_relu_backward(dpre, g, pre, n, LRELU);
            g = dpre;
        }
        if (L->bw >= 0) {
            memset(L->dy, 0, sizeof(float) * (size_t)n);
            batchnorm_backward(L->dy, param_grads ? param_grad(pt, L->bw) : NULL,
                               param_grads ? param_grad(pt, L->bb) : NULL, g, L->y,
                               param_data(pt, L->bw), L->mean, L->rstd, B, OC, HW);
            g = L->dy;
        }
        float *din = NULL;
        const float *in = d->x;
        if (l > 0) {
            patchgan_layer *P = &d->L[l - 1];
            in = layer_out(P);
            din = layer_dout(P);
            memset(din, 0, sizeof(float) * (size_t)((int64_t)B * P->y_per));
        } else {
            din = dx;
        }
        conv2d_cfg cc = L->conv;
        cc.B = B;
        if (din || param_grads)
            conv2d_backward(din, param_grads ? param_grad(pt, L->pw) : NULL,
                            (param_grads && L->pb >= 0) ? param_grad(pt, L->pb) : NULL, g, in,
                            param_data(pt, L->pw), d->scratch, &cc);
    }
}

double hinge_d_loss_part(float *dlogits, const float *logits, int64_t n, int real) {
    double s = 0;
    float gs = (float)(0.5 / (double)n);
    for (int64_t i = 0; i < n; i++) {
        double h = real ? 1.0 - logits[i] : 1.0 + logits[i];
        if (h > 0) {
            s += h;
            if (dlogits) dlogits[i] += real ? -gs : gs;
        }
    }
    return 0.5 * s / (double)n;
}

double hinge_d_loss(float *dreal, float *dfake, const float *real, const float *fake, int64_t n) {
    double sr = 0, sf = 0;
    float gs = (float)(0.5 / (double)n);
    for (int64_t i = 0; i < n; i++) {
        double r = 1.0 - real[i], f = 1.0 + fake[i];
        if (r > 0) { sr += r; if (dreal) dreal[i] -= gs; }
        if (f > 0) { sf += f; if (dfake) dfake[i] += gs; }
    }
    return 0.5 * (sr / (double)n + sf / (double)n);
}

double gan_g_loss(float *dfake, const float *fake, int64_t n, float scale) {
    double s = 0;
    float g = (float)(-(double)scale / (double)n);
    for (int64_t i = 0; i < n; i++) {
        s += fake[i];
        if (dfake) dfake[i] += g;
    }
    return -s / (double)n;
}

double gan_adaptive_weight(const float *g_rec, const float *g_gan, int64_t n, double disc_weight) {
    double a = 0, b = 0;
    for (int64_t i = 0; i < n; i++) {
        a += (double)g_rec[i] * g_rec[i];
        b += (double)g_gan[i] * g_gan[i];
    }
    double w = sqrt(a) / (sqrt(b) + 1e-4);
    if (!(w >= 0)) w = 0;
    if (w > 1e4) w = 1e4;
    return w * disc_weight;
}
