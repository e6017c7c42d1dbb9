// test_vae_classifier.c: the feature classifier (models/classifier.h): shapes,
// the cross-entropy gradient against central finite differences (which also
// covers the tape's average-pool op), and that Adam steps fit a small batch.
#include <cblas.h>
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "models/classifier.h"
#include "core/base.h"
#include "nn/optim.h"
#include "tests/util.h"

// Small tensors: single thread (see test_vae.c for the measured reason).
static void one_thread(void) {
    omp_set_num_threads(1);
    openblas_set_num_threads(1);
}

static double loss_at(classifier *c, const float *x, const int32_t *lab, int B) {
    param_zero_grads(&c->pt);
    classifier_forward(c, x, B);
    return classifier_loss_backward(c, lab, B, NULL);
}

Test(vae_classifier, gradients_match_finite_differences, .init = one_thread) {
    classifier *c = NULL;
    cr_assert_eq(classifier_create(&c, 3, 1), 0);
    classifier_init_params(c, 5);
    float x[3 * 1024];
    int32_t lab[3] = {2, 7, 0};
    fill_uniform(x, 3 * 1024, 4, -1, 1);
    loss_at(c, x, lab, 3);
    float *g = malloc(sizeof(float) * c->pt.total);
    memcpy(g, c->pt.grads, sizeof(float) * c->pt.total);
    double worst = 0;
    const float h = 1e-2f;
    for (int i = 0; i < c->pt.count; i++) {
        float *v = param_data(&c->pt, i);
        for (int r = 0; r < 2; r++) {
            int64_t j = (int64_t)((r * 7919u + 31u * i) % (uint64_t)c->pt.info[i].numel);
            float v0 = v[j];
            v[j] = v0 + h;
            double lp = loss_at(c, x, lab, 3);
            v[j] = v0 - h;
            double lm = loss_at(c, x, lab, 3);
            v[j] = v0;
            double fd = (lp - lm) / (2 * h), an = g[c->pt.info[i].offset + j];
            double err = fabs(fd - an);
            if (err > worst) worst = err;
            // Float forward, smooth loss: measured max abs error 4e-6; 1e-3 abs + 1e-2 rel.
            cr_assert(err <= 1e-3 + 1e-2 * fabs(fd), "%s[%lld]: analytic %.6g FD %.6g",
                      c->pt.info[i].name, (long long)j, an, fd);
        }
    }
    cr_log_info("classifier FD max abs err %.3g", worst);
    const float *f = classifier_features(c);
    for (int k = 0; k < 3 * CLASSIFIER_FEAT_DIM; k++) cr_assert(isfinite(f[k]));
    free(g);
    classifier_destroy(&c);
    cr_assert_null(c);
}

Test(vae_classifier, fits_a_small_batch, .init = one_thread) {
    classifier *c = NULL;
    cr_assert_eq(classifier_create(&c, 8, 1), 0);
    classifier_init_params(c, 1);
    optim_config oc = optim_defaults(OPTIM_ADAM);
    optim *o = NULL;
    cr_assert_eq(optim_create(&o, &c->pt, &oc), 0);
    float x[8 * 1024];
    int32_t lab[8];
    fill_uniform(x, 8 * 1024, 9, -1, 1);
    for (int b = 0; b < 8; b++) lab[b] = b % 10;
    double first = loss_at(c, x, lab, 8), last = first;
    for (int s = 0; s < 30; s++) {
        last = loss_at(c, x, lab, 8);
        optim_step(o, &c->pt, 3e-3);
    }
    cr_log_info("classifier: loss %.4f -> %.4f in 30 steps", first, last);
    cr_assert(last < 0.3 * first, "did not fit: %f -> %f", first, last);
    optim_destroy(&o);
    classifier_destroy(&c);
}
