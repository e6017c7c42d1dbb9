// test_vae_loss.c: the tokenizer loss (models/vae_loss.c) against a numpy
// transcription of LDM's contperceptual loss on a fixed batch
// (tests/ref/gen_vae_loss.py): with --recon-reduction sum (the default) the
// loss and its gradients must be LDM's, so beta = 1e-6 means what it does
// there; mean must be the old per-pixel convention; the VE arm under sum must
// be exactly C*H*W times the mean one (lambda_ve keeps its meaning).
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/vae.h"
#include "tests/util.h"

enum { B = 3, PX = 3 * 8 * 8, ZC = 4, ZHW = 2 * 2, NX = B * PX, NZ = B * ZC * ZHW };

typedef struct {
    float x[NX], xrec[NX], mu[NZ], lv[NZ];
    double loss, nll, kl, beta;
    float dxrec[NX], dmu[NZ], dlv[NZ];
} ldm_batch;

static void load_f32(const char *name, float *dst, int64_t n) {
    int64_t got = 0;
    float *v = ref_f32("vae_loss", name, &got);
    cr_assert_eq(got, n, "%s: %lld values, expected %lld", name, (long long)got, (long long)n);
    memcpy(dst, v, sizeof(float) * (size_t)n);
    free(v);
}

static double load_scalar(const char *name) {
    int64_t n = 0;
    double *v = ref_f64("vae_loss", name, &n);
    cr_assert_eq(n, 1);
    double r = v[0];
    free(v);
    return r;
}

static void load(ldm_batch *b) {
    load_f32("x", b->x, NX);
    load_f32("xrec", b->xrec, NX);
    load_f32("mu", b->mu, NZ);
    load_f32("logvar", b->lv, NZ);
    load_f32("dxrec", b->dxrec, NX);
    load_f32("dmu", b->dmu, NZ);
    load_f32("dlogvar", b->dlv, NZ);
    b->loss = load_scalar("loss");
    b->nll = load_scalar("nll");
    b->kl = load_scalar("kl");
    b->beta = load_scalar("kl_weight");
}

typedef struct {
    float dx[NX], dmu[NZ], dlv[NZ];
    vae_loss_parts p;
} result;

static void run(const vae_loss_cfg *lc, const ldm_batch *b, result *r) {
    memset(r, 0, sizeof *r);
    vae_loss(lc, b->x, b->xrec, b->mu, b->lv, B, PX, ZC, ZHW, r->dx, r->dmu, r->dlv, &r->p);
}

Test(vae_loss, kl_sum_is_ldm_contperceptual) {
    static ldm_batch b;
    static result r;
    load(&b);
    vae_loss_cfg lc = {.reg = VAE_REG_KL, .beta = (float)b.beta};   // recon left at its default
    cr_assert_eq(lc.recon, VAE_RECON_SUM, "the zero default must be LDM's reduction");
    run(&lc, &b, &r);
    cr_log_info("LDM loss %.9g (nll %.9g, kl %.9g); ours %.9g", b.loss, b.nll, b.kl, r.p.total);
    cr_assert(fabs(r.p.total - b.loss) <= 1e-6 * fabs(b.loss), "loss %.9g, LDM %.9g", r.p.total, b.loss);
    cr_assert(fabs(r.p.kl - b.kl) <= 1e-6 * fabs(b.kl), "kl %.9g, LDM %.9g", r.p.kl, b.kl);
    cr_assert(fabs(r.p.rec_l1 * PX - b.nll) <= 1e-6 * b.nll, "rec_l1 is the per-pixel mean");
    expect_close_f32("dL/dxrec", r.dx, b.dxrec, NX, 0, 1e-6);
    expect_close_f32("dL/dmu", r.dmu, b.dmu, NZ, 1e-14, 1e-5);
    expect_close_f32("dL/dlogvar", r.dlv, b.dlv, NZ, 1e-14, 1e-5);
    cr_assert_eq(r.dlv[0], 0.0f, "logvar below the clamp gets no gradient");
}

// The old convention: L1 mean over every pixel, KL as LDM's.
Test(vae_loss, kl_mean_is_per_pixel) {
    static ldm_batch b;
    static result r;
    load(&b);
    vae_loss_cfg lc = {.reg = VAE_REG_KL, .beta = (float)b.beta, .recon = VAE_RECON_MEAN};
    run(&lc, &b, &r);
    double want = b.nll / PX + (double)(float)b.beta * b.kl;
    cr_assert(fabs(r.p.total - want) <= 1e-6 * want, "loss %.9g, want %.9g", r.p.total, want);
    for (int i = 0; i < NX; i++) b.dxrec[i] /= PX;
    expect_close_f32("dL/dxrec", r.dx, b.dxrec, NX, 0, 1e-6);
    expect_close_f32("dL/dmu", r.dmu, b.dmu, NZ, 1e-14, 1e-5);
}

// VE arm: the sum reduction scales the whole loss by C*H*W, so lambda_ve and
// lambda_reg weigh the same against the per-pixel L1 under both.
static void ve_scaling(vae_mag mag) {
    static ldm_batch b;
    static result s, m;
    load(&b);
    vae_loss_cfg lc = {.reg = VAE_REG_VE, .ve = VE_INV_VAR, .lambda_ve = 0.3f, .delta = 1e-2f,
                       .mag = mag, .lambda_reg = 0.7f, .tau = 1.0f, .recon = VAE_RECON_SUM};
    run(&lc, &b, &s);
    lc.recon = VAE_RECON_MEAN;
    run(&lc, &b, &m);
    cr_assert(m.p.ve > 0 && m.p.mag > 0, "the batch must exercise both terms");
    cr_assert(fabs(s.p.total - PX * m.p.total) <= 1e-6 * s.p.total, "sum %.9g vs %d * mean %.9g",
              s.p.total, PX, m.p.total);
    cr_assert(fabs(m.p.total - (m.p.rec_l1 + 0.3 * m.p.ve + 0.7 * m.p.mag)) <= 1e-6 * m.p.total);
    for (int i = 0; i < NX; i++) m.dx[i] *= PX;
    for (int i = 0; i < NZ; i++) { m.dmu[i] *= PX; m.dlv[i] *= PX; }
    expect_close_f32("VE dL/dxrec", s.dx, m.dx, NX, 0, 1e-6);
    expect_close_f32("VE dL/dmu", s.dmu, m.dmu, NZ, 1e-12, 1e-5);
    expect_close_f32("VE dL/dlogvar", s.dlv, m.dlv, NZ, 1e-12, 1e-5);
}

Test(vae_loss, ve_sum_is_pixels_times_mean_global) { ve_scaling(VAE_MAG_GLOBAL); }
Test(vae_loss, ve_sum_is_pixels_times_mean_elem) { ve_scaling(VAE_MAG_ELEM); }
