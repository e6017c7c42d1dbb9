// launch_fixture.h: what the generation-graph tests need, made in a folder:
// a random tiny DiT (DIR/dit.safetensors, no EMA sibling), a random 1-channel
// f4c4 tokenizer (DIR/tok.safetensors, with its vae.config metadata), a
// latent cache with per-channel statistics (DIR/store, 4 x 8 x 8, the DiT's
// latent shape); free tcp ports come from test_free_ports. Random weights
// are enough: the tests check plumbing and bytes, not image quality.
// Header-only (static) because each tests/**/test_*.c is its own binary.
#ifndef TESTS_PIPELINES_LAUNCH_FIXTURE_H
#define TESTS_PIPELINES_LAUNCH_FIXTURE_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/base.h"
#include "models/lightningdit.h"
#include "models/vae.h"
#include "nn/safetensors.h"
#include "store/store.h"
#include "tests/util.h"

static inline void lfx_make(const char *dir) {
    char p[700];
    ldit_config c;
    cr_assert_eq(ldit_config_preset("tiny", &c), 0);
    ldit *m;
    cr_assert_eq(ldit_create(&m, &c, 1), 0);
    fill_normal(m->pt.values, m->pt.total, 11, 0.05f);
    char v[8][16];
    int x[8] = {c.depth, c.hidden, c.heads, c.patch, c.in_channels, c.input_size, c.num_classes, c.qk_norm};
    for (int i = 0; i < 8; i++) snprintf(v[i], sizeof v[i], "%d", x[i]);
    st_kv kv[] = {{"dit.depth", v[0]}, {"dit.hidden", v[1]}, {"dit.heads", v[2]}, {"dit.patch", v[3]},
                  {"dit.in_channels", v[4]}, {"dit.input_size", v[5]}, {"dit.num_classes", v[6]},
                  {"dit.qk_norm", v[7]}, {"dit.preset", "tiny"}};
    snprintf(p, sizeof p, "%s/dit.safetensors", dir);
    cr_assert_eq(st_save_params(p, &m->pt, DT_F32, kv, 9), 0, "%s", vel_error_detail());
    ldit_destroy(&m);

    vae_config vc;
    cr_assert_eq(vae_config_preset("f4c4", 1, &vc), 0);
    vae *t = NULL;
    cr_assert_eq(vae_create(&t, &vc, 1, 0), 0);
    vae_init_params(t, 3);
    // GroupNorm affine parameters away from 1 / 0, so that a decoder that
    // skipped them would not agree by accident.
    for (int i = 0; i < t->pt.count; i++)
        if (strstr(t->pt.info[i].name, "norm")) {
            float *d = param_data(&t->pt, i);
            int is_w = strstr(t->pt.info[i].name, ".weight") != NULL;
            for (int64_t k = 0; k < t->pt.info[i].numel; k++) d[k] += (is_w ? 0.3f : 0.1f) * sinf(1.7f * (float)k + (float)i);
        }
    snprintf(p, sizeof p, "%s/tok.safetensors", dir);
    st_kv meta[2] = {{"vae.config", "f4c4"}, {"vae.in_ch", "1"}};
    cr_assert_eq(st_save_params(p, &t->pt, DT_F32, meta, 2), 0, "%s", vel_error_detail());
    vae_destroy(&t);

    snprintf(p, sizeof p, "%s/store", dir);
    store_meta sm;
    cr_assert_eq(store_meta_init(&sm, "launch-test", 4, 8, 8, false, "fashion-mnist", 1, "test"), 0);
    store *st = NULL;
    cr_assert_eq(store_create(&st, p, &sm, NULL), 0);
    float mean[4] = {0.1f, -0.2f, 0.3f, 0.0f}, sd[4] = {0.9f, 1.1f, 0.7f, 1.3f};
    cr_assert_eq(store_set_stats(st, mean, sd), 0);
    store_close(&st);
}

#endif
