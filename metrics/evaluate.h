// evaluate.h: the image-generation metrics of `eval --model images` from
// feature arrays, as ADM's evaluator reports them:
//   FID       Frechet distance of pooled features vs the reference mu/sigma
//   sFID      the same on the spatial features (reference mu_s/sigma_s)
//   IS        Inception Score of the sample logits, splits of 5000
//   precision, recall   k-NN manifolds (k = 3) against the reference
//             features kept in the statistics file
// With the project's Fashion-MNIST classifier as the feature network these
// are NOT Inception metrics: callers print featnet_label() beside them.
// A metric whose inputs are missing (no spatial statistics, no reference
// features, no logits, fewer than 4 samples) is NAN, never a made-up value.
#ifndef METRICS_EVALUATE_H
#define METRICS_EVALUATE_H

#include <stddef.h>
#include <stdint.h>

#include "metrics/refstats.h"

typedef struct {
    int64_t n;                  // samples scored
    double fid, sfid, is, is_std, precision, recall;
    double fid_neg_eig;         // frechet_distance's conditioning diagnostic
} image_scores;

// Reference statistics from real-image features: pool (n, D) -> mu, sigma;
// spatial (n, Ds) or NULL -> mu_s, sigma_s; the first keep_feats rows of
// pool kept for precision/recall (0: none). net and hash name the feature
// network. *out owned by the caller (refstats_destroy). Returns 0,
// VEL_EINVAL or VEL_ENOMEM.
int refstats_from_features(refstats **out, const char *net, const char *hash, const float *pool,
                           int64_t n, int D, const float *spatial, int Ds, int64_t keep_feats);

// Scores sample features against ref (same network: the caller loaded ref
// with refstats_load naming it). pool (n, D) required; logits (n, K) and
// spatial (n, ref->Ds) may be NULL. Returns 0, VEL_EINVAL (sizes disagree
// with ref), VEL_ENOMEM or VEL_ERANGE (LAPACK failed).
int evaluate_features(image_scores *out, const refstats *ref, const float *pool, int64_t n,
                      int D, const float *logits, int K, const float *spatial, int Ds);

#endif
