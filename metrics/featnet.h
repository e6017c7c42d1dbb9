// featnet.h: the feature networks of image evaluation behind one interface,
// so `eval --model images` and `--ref-stats` treat them alike:
//   FEATNET_INCEPTION  Inception-v3, FID variant (models/inception.h): pool3
//                      2048, logits 1008, Mixed_6d spatial 2023; any RGB (or
//                      gray, replicated) uint8 image size, resized to 299.
//   FEATNET_CLASSIFIER the project's Fashion-MNIST classifier
//                      (models/classifier.h): penultimate 64, logits 10,
//                      block.0 spatial 1792; uint8 (1, 32, 32) images only.
//                      Every number from it must carry featnet_label():
//                      "classifier features, not Inception".
// Each network has a name and a weight hash (metrics/refstats.h) that
// reference statistics must match.
// Not here: the metrics themselves (metrics/evaluate.h).
#ifndef METRICS_FEATNET_H
#define METRICS_FEATNET_H

#include <stddef.h>
#include <stdint.h>

typedef enum { FEATNET_INCEPTION, FEATNET_CLASSIFIER } featnet_kind;

#define FEATNET_CLASSIFIER_NAME "fmnist-classifier"

typedef struct featnet featnet;

// Loads the weights file (inception: scripts/convert_inception.py output;
// classifier: `train --model classifier`'s classifier.safetensors) for batches
// of up to `batch` images. Returns 0, VEL_EINVAL, VEL_ENOMEM or a checkpoint
// code (detail in vel_error_detail()).
int featnet_open(featnet **out, featnet_kind kind, const char *weights, int batch);
// The same with weights already in place: inception with seeded random
// weights (tests only), classifier with its current parameters copied.
int featnet_open_random_inception(featnet **out, uint64_t seed, int batch);
void featnet_close(featnet **f);

const char *featnet_name(const featnet *f);
const char *featnet_hash_str(const featnet *f);   // 16 hex digits
// How the numbers must be labelled in reports.
const char *featnet_label(const featnet *f);
// Feature sizes: pooled D, logits K, spatial Ds.
void featnet_dims(const featnet *f, int *D, int *K, int *Ds);
// Image channels the network is made for: 1 (classifier) or 3 (Inception).
int featnet_channels(const featnet *f);

// img uint8 (B, C, H, W); outputs (each may be NULL) pool (B, D), logits
// (B, K), spatial (B, Ds). Inception: C 3 or 1 (replicated), any H, W.
// Classifier: C 1, H = W = 32. Returns 0, VEL_EINVAL (wrong image shape)
// or VEL_ENOMEM.
int featnet_run(featnet *f, const uint8_t *img, int B, int C, int H, int W, float *pool,
                float *logits, float *spatial);

#endif
