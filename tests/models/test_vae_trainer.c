// test_vae_trainer.c: models/vae_trainer.h in process, on a tiny VAE with
// the PatchGAN on from step 1: 3 steps straight equal 2 steps, a save, a
// fresh trainer loading it and a 3rd step (weights and both optimizers'
// files byte-identical); loading with another seed is VEL_EINVAL; a
// discriminator checkpoint of another step is refused.
#include <criterion/criterion.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "core/error.h"
#include "models/vae_trainer.h"
#include "tests/util.h"

static vae_config tiny(void) {
    vae_config c;
    cr_assert_eq(vae_config_preset("f8c4", 1, &c), 0);
    c.ch = 32;
    c.ch_mult[0] = c.ch_mult[1] = c.ch_mult[2] = c.ch_mult[3] = 1;
    c.num_res_blocks = 1;
    c.nattn = 0;
    cr_assert_eq(vae_config_validate(&c), 0);
    return c;
}

static void steps(vae_trainer *t, const float *x, int64_t from, int64_t to) {
    for (int64_t s = from; s < to; s++) {
        vae_loss_parts lp;
        vae_gan_parts gp;
        int gan;
        cr_assert_eq(vae_trainer_step(t, x, s, &lp, &gp, &gan), 0);
        cr_assert_eq(gan, s >= 1);
    }
}

Test(vae_trainer, resume_is_bit_exact, .timeout = 120) {
    omp_set_num_threads(1);
    char *dir = test_tmpdir("vae_trainer");
    vae_config vc = tiny();
    vae_trainer_cfg cfg = {.loss = {.reg = VAE_REG_KL, .beta = 1e-6f}, .lr = 1e-4, .disc_weight = 0.5,
                           .disc_start = 1, .disc_ndf = 8, .disc_layers = 2, .seed = 3};
    float x[2 * 1024];
    fill_uniform(x, 2 * 1024, 9, -1.0f, 1.0f);
    char a[600], da[600], b[600], db[600], f1[700], f2[700];
    snprintf(a, sizeof a, "%s/a", dir), snprintf(da, sizeof da, "%s/da", dir);
    snprintf(b, sizeof b, "%s/b", dir), snprintf(db, sizeof db, "%s/db", dir);
    vae_trainer *t = NULL;
    cr_assert_eq(vae_trainer_create(&t, &vc, 2, &cfg), 0);
    steps(t, x, 0, 3);
    cr_assert_eq(vae_trainer_save(t, a, da, 3, NULL, 0), 0, "%s", vel_error_detail());
    vae_trainer_destroy(&t);
    cr_assert_eq(vae_trainer_create(&t, &vc, 2, &cfg), 0);
    steps(t, x, 0, 2);
    cr_assert_eq(vae_trainer_save(t, b, db, 2, NULL, 0), 0, "%s", vel_error_detail());
    char c[600], dc[600];
    snprintf(c, sizeof c, "%s/c", dir), snprintf(dc, sizeof dc, "%s/dc", dir);
    cr_assert_eq(vae_trainer_save(t, c, dc, 2, NULL, 0), 0, "%s", vel_error_detail());
    vae_trainer_destroy(&t);
    cr_assert_eq(vae_trainer_create(&t, &vc, 2, &cfg), 0);
    int64_t at = -1;
    cr_assert_eq(vae_trainer_load(t, b, db, &at), 0, "%s", vel_error_detail());
    cr_assert_eq(at, 2);
    steps(t, x, 2, 3);
    cr_assert_eq(vae_trainer_save(t, b, db, 3, NULL, 0), 0, "%s", vel_error_detail());
    vae_trainer_destroy(&t);
    const char *sfx[] = {".safetensors", ".optim.safetensors"};
    for (int k = 0; k < 2; k++) {
        snprintf(f1, sizeof f1, "%s%s", a, sfx[k]), snprintf(f2, sizeof f2, "%s%s", b, sfx[k]);
        cr_assert(test_files_equal(f1, f2), "%s differs after resume", sfx[k]);
        snprintf(f1, sizeof f1, "%s%s", da, sfx[k]), snprintf(f2, sizeof f2, "%s%s", db, sfx[k]);
        cr_assert(test_files_equal(f1, f2), "discriminator %s differs after resume", sfx[k]);
    }
    vae_trainer_cfg other = cfg;
    other.seed = 4;
    cr_assert_eq(vae_trainer_create(&t, &vc, 2, &other), 0);
    cr_assert_eq(vae_trainer_load(t, a, da, &at), VEL_EINVAL);
    cr_assert(strstr(vel_error_detail(), "seed") != NULL, "%s", vel_error_detail());
    vae_trainer_destroy(&t);
    // A discriminator from another step: refused.
    cr_assert_eq(vae_trainer_create(&t, &vc, 2, &cfg), 0);
    cr_assert_eq(vae_trainer_load(t, a, dc, &at), VEL_EFORMAT);   // step 3 with a step-2 D
    cr_assert(strstr(vel_error_detail(), "discriminator at step 2") != NULL, "%s", vel_error_detail());
    vae_trainer_destroy(&t);
    rm_rf(dir);
    free(dir);
}
