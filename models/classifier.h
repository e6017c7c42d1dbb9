// classifier.h: the project's own Fashion-MNIST classifier, whose features
// stand in for Inception's where no Inception weights apply (Fashion-MNIST):
// every number computed from them is labelled "classifier features, not
// Inception". A small pre-activation ResNet from the VAE's blocks
// (models/vae_blocks.h; GroupNorm with 8 groups, SiLU):
//   conv_in 1->32 (32x32), down.0 (stride-2 conv, 16x16), block.0 32->32,
//   down.1 (8x8), block.1 32->64, block.2 64->64, norm_out + swish,
//   global average pool -> 64 features, head (1x1 conv = linear) -> 10 logits.
// Uses, as Inception's in ADM's evaluator: the pooled 64 features (the
// penultimate layer) for Frechet distance and precision/recall, the logits
// for the Inception Score, and block.0's output (16x16, a mid-level map as
// Mixed_6d is) for the spatial Frechet distance: its first
// CLASSIFIER_SPATIAL_CH channels flattened in (H, W, C) order.
// About 16M multiply-adds per image forward. Measured: `train --model
// classifier` with its defaults (10000 steps of 32, Adam 2e-3 warmup +
// cosine, no flips, 5.3 epochs) reaches 0.9159 test accuracy in 2751 s on
// one thread of the shared 2-core machine (0.9035 after 6000 steps; the
// previous 2-block net: 0.7256). Fine-tuning those weights with random
// translations (`--init CKPT --shift N`, 1 thread, loaded machine): --shift 2
// --lr 5e-4 4000 steps 0.9118; --shift 1 --lr 3e-4 --warmup 100 3000 steps
// --seed 2: 0.9168; from that, --shift 1 --lr 2e-4 --warmup 100 4000 steps
// --seed 3: 0.9182; then --lr 1e-4 3000 steps --seed 5: 0.9189; then the
// same with --ema 0.999 --seed 7: raw weights 0.9217, EMA weights 0.9221.
// Those EMA weights ship as weights/fmnist-classifier.safetensors, the
// default feature network (weights/README.md: the full chain of commands
// and the file's hashes).
// Not here: training loop (stages/train/image_classifier.c).
#ifndef MODELS_CLASSIFIER_H
#define MODELS_CLASSIFIER_H

#include <stdint.h>

#include "models/vae_blocks.h"
#include "nn/params.h"

#define CLASSIFIER_FEAT_DIM 64
#define CLASSIFIER_CLASSES 10
#define CLASSIFIER_SPATIAL_CH 7
#define CLASSIFIER_SPATIAL_HW 16
#define CLASSIFIER_SPATIAL_DIM (CLASSIFIER_SPATIAL_CH * CLASSIFIER_SPATIAL_HW * CLASSIFIER_SPATIAL_HW)

typedef struct {
    param_table pt;
    vtape t;
    int Bmax, train;
    int feat;           // buffer id of the pooled features (B, 64, 1, 1)
    int spatial;        // buffer id of block.0's output (B, 32, 16, 16)
    float *dlogits;     // (Bmax, 10) scratch
    // Label smoothing eps of classifier_loss_backward (0 after create: plain
    // cross-entropy). The target is (1 - eps) one-hot + eps / 10, as
    // torch.nn.CrossEntropyLoss(label_smoothing=eps).
    double label_smoothing;
} classifier;

int classifier_create(classifier **out, int Bmax, int train);
void classifier_destroy(classifier **c);
void classifier_init_params(classifier *c, uint64_t seed);
// x (B, 1, 32, 32) in [-1, 1] -> logits (B, 10), owned by c until the next call.
const float *classifier_forward(classifier *c, const float *x, int B);
// Features (B, 64) of the last forward, owned by c.
const float *classifier_features(const classifier *c);
// Spatial features (B, CLASSIFIER_SPATIAL_DIM) of the last forward into out:
// channels 0..6 of block.0's output, (h, w, c) order as ADM's sFID.
void classifier_spatial(const classifier *c, float *out, int B);
// Mean softmax cross-entropy of the last forward against labels (B), its
// backward (parameter gradients +=), and *correct = argmax hits (may be NULL).
// With label smoothing eps and q_k = (1-eps)[k = y] + eps/10:
//   loss = logsumexp(l) - sum_k q_k l_k,   dloss/dl_k = softmax(l)_k - q_k
// (each divided by B for the mean).
double classifier_loss_backward(classifier *c, const int32_t *labels, int B, int *correct);

#endif
