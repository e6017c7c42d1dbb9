// inception_score.h: the Inception Score from logits, with ADM's evaluator
// conventions (guided-diffusion evaluations/evaluator.py, after
// improved-gan): p = softmax(logits) per row; the rows are cut into splits
// of split_size in order (the last split may be shorter and still counts);
// per split, IS_s = exp(mean_i sum_k p_ik (log p_ik - log mean_i' p_i'k));
// the score is the mean of IS_s over splits (ADM reports no spread; *std, if
// not NULL, gets the population std over splits as improved-gan's code did).
// ADM's logits are Inception's pool3 times the 2048 x 1008 softmax weights
// without the bias; on Fashion-MNIST they are the project classifier's
// logits, and the number must be labelled "classifier features, not
// Inception".
// Everything in double; log p from a log-sum-exp, so no log(0).
#ifndef METRICS_INCEPTION_SCORE_H
#define METRICS_INCEPTION_SCORE_H

#include <stdint.h>

#define IS_SPLIT_ADM 5000

// logits (N, K). N >= 1, K >= 2, split_size >= 1. Returns 0, VEL_EINVAL or
// VEL_ENOMEM.
int inception_score(double *score, double *std, const float *logits, int64_t N, int K,
                    int64_t split_size);

#endif
