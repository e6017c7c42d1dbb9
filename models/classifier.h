// classifier.h: the project's own Fashion-MNIST classifier, whose pooled
// features stand in for Inception's in the Frechet distance of image
// reconstructions (SPEC 5: label such numbers as classifier features, not
// FID). A small conv net from the VAE's blocks (models/vae_blocks.h):
//   conv_in 1->32 (32x32), down.0 (stride-2 conv, 16x16), block.0 32->64,
//   down.1 (8x8), block.1 64->64, norm_out + swish, global average pool
//   -> 64 features, head (1x1 conv = linear) -> 10 logits.
// Not here: training loop (stages/train/image_classifier.c).
#ifndef MODELS_CLASSIFIER_H
#define MODELS_CLASSIFIER_H

#include <stdint.h>

#include "models/vae_blocks.h"
#include "nn/params.h"

#define CLASSIFIER_FEAT_DIM 64
#define CLASSIFIER_CLASSES 10

typedef struct {
    param_table pt;
    vtape t;
    int Bmax, train;
    int feat;           // buffer id of the pooled features (B, 64, 1, 1)
    float *dlogits;     // (Bmax, 10) scratch
} classifier;

int classifier_create(classifier **out, int Bmax, int train);
void classifier_destroy(classifier **c);
void classifier_init_params(classifier *c, uint64_t seed);
// x (B, 1, 32, 32) in [-1, 1] -> logits (B, 10), owned by c until the next call.
const float *classifier_forward(classifier *c, const float *x, int B);
// Features (B, 64) of the last forward, owned by c.
const float *classifier_features(const classifier *c);
// Mean softmax cross-entropy of the last forward against labels (B), its
// backward (parameter gradients +=), and *correct = argmax hits (may be NULL).
double classifier_loss_backward(classifier *c, const int32_t *labels, int B, int *correct);

#endif
