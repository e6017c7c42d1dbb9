// inception_score.c: see inception_score.h.
#include "metrics/inception_score.h"

#include <math.h>
#include <stdlib.h>

#include "core/base.h"

// logp (K) = log softmax(l).
static void log_softmax(double *logp, const float *l, int K) {
    double mx = l[0], s = 0;
    for (int k = 1; k < K; k++) if (l[k] > mx) mx = l[k];
    for (int k = 0; k < K; k++) s += exp((double)l[k] - mx);
    double lse = mx + log(s);
    for (int k = 0; k < K; k++) logp[k] = (double)l[k] - lse;
}

int inception_score(double *score, double *std, const float *logits, int64_t N, int K,
                    int64_t split_size) {
    if (!score || !logits || N < 1 || K < 2 || split_size < 1) return VEL_EINVAL;
    double *logp = malloc(sizeof(double) * K), *marg = malloc(sizeof(double) * K);
    int64_t nsplit = (N + split_size - 1) / split_size;
    double *is = malloc(sizeof(double) * nsplit);
    if (!logp || !marg || !is) { free(logp); free(marg); free(is); return VEL_ENOMEM; }
    for (int64_t s = 0; s < nsplit; s++) {
        int64_t i0 = s * split_size, n = N - i0 < split_size ? N - i0 : split_size;
        // Two passes over the split: the marginal first, then the KL terms.
        for (int k = 0; k < K; k++) marg[k] = 0;
        for (int64_t i = i0; i < i0 + n; i++) {
            log_softmax(logp, logits + i * K, K);
            for (int k = 0; k < K; k++) marg[k] += exp(logp[k]);
        }
        for (int k = 0; k < K; k++) marg[k] = log(marg[k] / (double)n);
        double kl = 0;
        for (int64_t i = i0; i < i0 + n; i++) {
            log_softmax(logp, logits + i * K, K);
            double r = 0;
            for (int k = 0; k < K; k++) {
                double p = exp(logp[k]);   // p == 0 (underflow) adds nothing, not 0 * inf
                if (p > 0) r += p * (logp[k] - marg[k]);
            }
            kl += r;
        }
        is[s] = exp(kl / (double)n);
    }
    double m = 0, v = 0;
    for (int64_t s = 0; s < nsplit; s++) m += is[s];
    m /= (double)nsplit;
    for (int64_t s = 0; s < nsplit; s++) v += (is[s] - m) * (is[s] - m);
    *score = m;
    if (std) *std = sqrt(v / (double)nsplit);
    free(logp); free(marg); free(is);
    return 0;
}
