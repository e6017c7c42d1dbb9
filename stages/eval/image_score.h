// image_score.h: feature-network scoring for `eval --model images`:
// features of uint8 NHWC image sets through a featnet (metrics/featnet.h),
// the cached reference statistics of real data (`--ref-stats FILE --data
// fashion-mnist` or `--data DIR` for an image folder), and the metrics of a sample set against them
// (metrics/evaluate.h). With the Fashion-MNIST classifier every number is
// "classifier features, not Inception" (featnet_label).
#ifndef STAGES_EVAL_IMAGE_SCORE_H
#define STAGES_EVAL_IMAGE_SCORE_H

#include <stdint.h>

#include "metrics/evaluate.h"
#include "metrics/featnet.h"

// u8 (n, H, W, C) -> pool (n, D), logits (n, K), spatial (n, Ds) (each may
// be NULL), in batches. 0, VEL_EINVAL (a shape the network refuses) or
// VEL_ENOMEM.
int image_features(featnet *f, const uint8_t *u8, int64_t n, int H, int W, int C, float *pool,
                   float *logits, float *spatial);
// Reference statistics of the first n_ref (0: all) Fashion-MNIST training
// images in data_dir (NULL: the default), written to path. keep_feats
// features are kept for precision/recall.
int image_refstats_fmnist(featnet *f, const char *data_dir, int64_t n_ref, int64_t keep_feats,
                          const char *path);
// The same for an image folder (data/image_folder.h: class folders of PNG or
// JPEG), each image ADM-centre-cropped to side x side, gray for the
// classifier and RGB for Inception; the first n_ref (0: all) in the folder's
// order. A corrupt image is an error naming the file.
int image_refstats_folder(featnet *f, const char *root, int side, int64_t n_ref, int64_t keep_feats,
                          const char *path);
// Scores u8 (n, H, W, C) against ref.
int image_score(image_scores *out, featnet *f, const refstats *ref, const uint8_t *u8, int64_t n,
                int H, int W, int C);

#endif
