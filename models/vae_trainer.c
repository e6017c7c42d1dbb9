// vae_trainer.c: see vae_trainer.h.
#include "models/vae_trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/base.h"
#include "core/error.h"
#include "core/philox.h"
#include "nn/checkpoint.h"

int vae_trainer_create(vae_trainer **out, const vae_config *vc, int B, const vae_trainer_cfg *cfg) {
    *out = NULL;
    if (B < 1) return VEL_EINVAL;
    vae_trainer *t = calloc(1, sizeof *t);
    if (!t) return VEL_ENOMEM;
    t->cfg = *cfg;
    t->B = B;
    int zs = vae_latent_side(vc);
    t->nz = (int64_t)B * vc->z_channels * zs * zs;
    t->eps = malloc(sizeof(float) * (size_t)t->nz);
    int e = t->eps ? vae_create(&t->m, vc, B, 1) : VEL_ENOMEM;
    if (e) goto fail;
    vae_init_params(t->m, cfg->seed);
    optim_config oc = optim_defaults(OPTIM_ADAM);
    oc.beta1 = 0.5;
    oc.beta2 = 0.9;
    if ((e = optim_create(&t->opt, &t->m->pt, &oc))) goto fail;
    if (cfg->disc_weight > 0) {
        patchgan_config dc = {.in_ch = vc->in_ch, .ndf = cfg->disc_ndf, .n_layers = cfg->disc_layers};
        if ((e = patchgan_create(&t->disc, &dc, B, vc->resolution, vc->resolution)) ||
            (e = optim_create(&t->dopt, &t->disc->pt, &oc)))
            goto fail;
        patchgan_init_params(t->disc, cfg->seed);
        if ((e = vae_gan_create(&t->vg, t->m, t->disc))) goto fail;
    }
    *out = t;
    return 0;
fail:
    vae_trainer_destroy(&t);
    return e;
}

void vae_trainer_destroy(vae_trainer **tp) {
    if (!tp || !*tp) return;
    vae_trainer *t = *tp;
    optim_destroy(&t->opt);
    optim_destroy(&t->dopt);
    vae_gan_destroy(&t->vg);
    patchgan_destroy(&t->disc);
    vae_destroy(&t->m);
    free(t->eps);
    free(t);
    *tp = NULL;
}

int vae_trainer_step(vae_trainer *t, const float *x, int64_t s, vae_loss_parts *lp, vae_gan_parts *gp,
                     int *gan_now) {
    const vae_trainer_cfg *c = &t->cfg;
    philox_normal(t->eps, t->nz, c->seed, VAE_TRAINER_EPS_STREAM, (uint64_t)s * (uint64_t)t->nz);
    *gan_now = t->disc && s >= c->disc_start;
    if (*gan_now) {
        vae_gan_generator_step(t->vg, x, t->eps, t->B, &c->loss, c->disc_weight, lp, gp);
    } else {
        param_zero_grads(&t->m->pt);
        vae_train_step(t->m, x, t->eps, t->B, &c->loss, lp, NULL);
    }
    if (!isfinite(lp->total)) return VEL_ERANGE;
    optim_step(t->opt, &t->m->pt, c->lr);
    if (*gan_now) {
        vae_gan_discriminator_step(t->vg, x, t->B, gp);
        optim_step(t->dopt, &t->disc->pt, c->disc_lr > 0 ? c->disc_lr : c->lr);
        lp->total += gp->d_weight * gp->g_loss;
    }
    return 0;
}

// Re-records the latest failure as "WHAT PATH: message (detail)".
static int fail_on(int e, const char *what, const char *path) {
    char detail[1100];
    snprintf(detail, sizeof detail, "%s", vel_error_detail());   // vel_fail overwrites it
    return vel_fail(e, "%s %s: %s (%s)", what, path, vel_strerror(e), detail);
}

int vae_trainer_save(const vae_trainer *t, const char *prefix, const char *dprefix, int64_t step,
                     const st_kv *meta, int nmeta) {
    ckpt_state st = {.step = (uint64_t)step, .rng_seed = t->cfg.seed, .rng_offset = (uint64_t)step};
    int e = ckpt_save(prefix, &t->m->pt, t->opt, NULL, &st, meta, nmeta);
    if (!e && t->disc) {
        st_kv dmeta[1] = {{"model", "patchgan"}};
        e = ckpt_save(dprefix, &t->disc->pt, t->dopt, NULL, &st, dmeta, 1);
    }
    return e ? fail_on(e, "saving", prefix) : 0;
}

int vae_trainer_load(vae_trainer *t, const char *prefix, const char *dprefix, int64_t *step) {
    ckpt_state st;
    int e = ckpt_load(prefix, &t->m->pt, t->opt, NULL, &st);
    if (e) return fail_on(e, "--resume:", prefix);
    if (st.rng_seed != t->cfg.seed)
        return vel_fail(VEL_EINVAL, "--resume: checkpoint seed %llu differs from --seed %llu",
                        (unsigned long long)st.rng_seed, (unsigned long long)t->cfg.seed);
    if (t->disc) {
        ckpt_state ds;
        if ((e = ckpt_load(dprefix, &t->disc->pt, t->dopt, NULL, &ds)))
            return fail_on(e, "--resume with --disc-weight:", dprefix);
        if (ds.step != st.step)
            return vel_fail(VEL_EFORMAT, "--resume: discriminator at step %llu, autoencoder at %llu",
                            (unsigned long long)ds.step, (unsigned long long)st.step);
    }
    *step = (int64_t)st.step;
    return 0;
}

double vae_trainer_step_flops(const vae_trainer *t, int gan) {
    double f = 3.0 * vae_forward_flops(t->m, t->B);
    return gan && t->disc ? f + vae_gan_extra_flops(t->m, t->disc, t->B) : f;
}
