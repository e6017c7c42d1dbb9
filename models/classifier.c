// classifier.c: see classifier.h.
#include "models/classifier.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"

int classifier_create(classifier **out, int Bmax, int train) {
    *out = NULL;
    if (Bmax < 1) return VEL_EINVAL;
    classifier *c = calloc(1, sizeof *c);
    if (!c) return VEL_ENOMEM;
    c->Bmax = Bmax;
    c->train = train;
    param_table_init(&c->pt);
    vtape_init(&c->t, &c->pt);
    vtape *t = &c->t;
    int x = vtape_buffer(t, 1, 32, 32);
    x = vtape_conv(t, "conv_in", x, 32, 3, 1, 1, 1, 1, 1);
    x = vtape_downsample(t, "down.0", x);
    // GroupNorm with 8 groups: 32 groups on 32 channels would be instance
    // norm, which discards each image's overall brightness and contrast.
    x = vtape_resnet_block(t, "block.0", x, 32, 8);
    c->spatial = x;
    x = vtape_downsample(t, "down.1", x);
    x = vtape_resnet_block(t, "block.1", x, 64, 8);
    x = vtape_resnet_block(t, "block.2", x, 64, 8);
    x = vtape_groupnorm(t, "norm_out", x, 8, 1e-6f);
    x = vtape_silu(t, x);
    c->feat = vtape_avgpool(t, x);
    vtape_conv(t, "head", c->feat, CLASSIFIER_CLASSES, 1, 1, 0, 0, 0, 0);
    int rc = param_table_commit(&c->pt);
    if (!rc) rc = vtape_alloc(t, Bmax, train);
    if (!rc) {
        c->dlogits = calloc((size_t)Bmax * CLASSIFIER_CLASSES, sizeof(float));
        if (!c->dlogits) rc = VEL_ENOMEM;
    }
    if (rc) { classifier_destroy(&c); return rc; }
    *out = c;
    return 0;
}

void classifier_destroy(classifier **pc) {
    if (!pc || !*pc) return;
    vtape_free(&(*pc)->t);
    param_table_free(&(*pc)->pt);
    free((*pc)->dlogits);
    free(*pc);
    *pc = NULL;
}

void classifier_init_params(classifier *c, uint64_t seed) { vtape_init_params(&c->pt, seed); }

const float *classifier_forward(classifier *c, const float *x, int B) {
    CHECK(B >= 1 && B <= c->Bmax);
    memcpy(c->t.bufs[0].v, x, sizeof(float) * (size_t)B * 1024);
    vtape_forward(&c->t, B);
    return c->t.bufs[vtape_output(&c->t)].v;
}

const float *classifier_features(const classifier *c) { return c->t.bufs[c->feat].v; }

void classifier_spatial(const classifier *c, float *out, int B) {
    CHECK(B >= 1 && B <= c->Bmax);
    const vtape_buf *sb = &c->t.bufs[c->spatial];
    CHECK(sb->H == CLASSIFIER_SPATIAL_HW && sb->W == CLASSIFIER_SPATIAL_HW &&
          sb->C >= CLASSIFIER_SPATIAL_CH);
    enum { HW = CLASSIFIER_SPATIAL_HW * CLASSIFIER_SPATIAL_HW, K = CLASSIFIER_SPATIAL_CH };
    for (int b = 0; b < B; b++) {
        const float *src = sb->v + (size_t)b * sb->per;
        float *dst = out + (size_t)b * CLASSIFIER_SPATIAL_DIM;
        for (int p = 0; p < HW; p++)
            for (int k = 0; k < K; k++) dst[p * K + k] = src[(size_t)k * HW + p];
    }
}

double classifier_loss_backward(classifier *c, const int32_t *labels, int B, int *correct) {
    CHECK(c->train && B >= 1 && B <= c->Bmax);
    const float *lg = c->t.bufs[vtape_output(&c->t)].v;   // (B, 10)
    double loss = 0;
    int hits = 0;
    for (int b = 0; b < B; b++) {
        const float *l = lg + b * CLASSIFIER_CLASSES;
        float *d = c->dlogits + b * CLASSIFIER_CLASSES;
        int arg = 0;
        double mx = l[0];
        for (int k = 1; k < CLASSIFIER_CLASSES; k++)
            if (l[k] > mx) { mx = l[k]; arg = k; }
        double s = 0;
        for (int k = 0; k < CLASSIFIER_CLASSES; k++) s += exp(l[k] - mx);
        const double eps = c->label_smoothing;
        double ql = 0;   // sum_k q_k l_k
        for (int k = 0; k < CLASSIFIER_CLASSES; k++) {
            double q = (1.0 - eps) * (k == labels[b]) + eps / CLASSIFIER_CLASSES;
            ql += q * l[k];
            d[k] = (float)((exp(l[k] - mx) / s - q) / B);
        }
        loss += log(s) + mx - ql;
        hits += arg == labels[b];
    }
    vtape_backward(&c->t, c->dlogits, B);
    if (correct) *correct = hits;
    return loss / B;
}
