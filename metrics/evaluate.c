// evaluate.c: see evaluate.h.
#include "metrics/evaluate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "metrics/frechet.h"
#include "metrics/inception_score.h"
#include "metrics/precision_recall.h"

// mu (d), sigma (d, d) newly allocated from x (n, d).
static int stats(double **mu, double **sigma, const float *x, int64_t n, int d) {
    *mu = malloc(sizeof(double) * d);
    *sigma = malloc(sizeof(double) * (size_t)d * d);
    if (!*mu || !*sigma) return VEL_ENOMEM;
    return frechet_stats_f32(*mu, *sigma, x, n, d);
}

int refstats_from_features(refstats **out, const char *net, const char *hash, const float *pool,
                           int64_t n, int D, const float *spatial, int Ds, int64_t keep_feats) {
    *out = NULL;
    if (!net || !hash || strlen(net) >= REFSTATS_NET_MAX || strlen(hash) != 16 || !pool ||
        n < 2 || D < 1 || Ds < 0 || (Ds > 0 && !spatial) || keep_feats < 0)
        return VEL_EINVAL;
    refstats *r = calloc(1, sizeof *r);
    if (!r) return VEL_ENOMEM;
    snprintf(r->net, sizeof r->net, "%s", net);
    snprintf(r->net_hash, sizeof r->net_hash, "%s", hash);
    r->count = n;
    r->D = D;
    int rc = stats(&r->mu, &r->sigma, pool, n, D);
    if (!rc && Ds > 0 && spatial) {
        r->Ds = Ds;
        rc = stats(&r->mu_s, &r->sigma_s, spatial, n, Ds);
    }
    if (!rc && keep_feats > 0) {
        r->nfeats = keep_feats < n ? keep_feats : n;
        r->feats = malloc(sizeof(float) * (size_t)r->nfeats * D);
        if (!r->feats) rc = VEL_ENOMEM;
        else memcpy(r->feats, pool, sizeof(float) * (size_t)r->nfeats * D);
    }
    if (rc) { refstats_destroy(&r); return rc; }
    *out = r;
    return 0;
}

int evaluate_features(image_scores *out, const refstats *ref, const float *pool, int64_t n,
                      int D, const float *logits, int K, const float *spatial, int Ds) {
    if (!out || !ref || !pool || n < 2 || D != ref->D || (spatial && Ds != ref->Ds) ||
        (logits && K < 2))
        return VEL_EINVAL;
    *out = (image_scores){n, NAN, NAN, NAN, NAN, NAN, NAN, NAN};
    double *mu = NULL, *sigma = NULL;
    int rc = stats(&mu, &sigma, pool, n, D);
    if (!rc) rc = frechet_distance(&out->fid, mu, sigma, ref->mu, ref->sigma, D, &out->fid_neg_eig);
    free(mu); free(sigma);
    mu = sigma = NULL;
    if (!rc && spatial && ref->Ds > 0) {
        rc = stats(&mu, &sigma, spatial, n, Ds);
        if (!rc) rc = frechet_distance(&out->sfid, mu, sigma, ref->mu_s, ref->sigma_s, Ds, NULL);
        free(mu); free(sigma);
    }
    if (!rc && logits) rc = inception_score(&out->is, &out->is_std, logits, n, K, IS_SPLIT_ADM);
    if (!rc && ref->nfeats > PR_K_ADM && n > PR_K_ADM)
        rc = precision_recall(&out->precision, &out->recall, ref->feats, ref->nfeats, pool, n, D,
                              PR_K_ADM);
    return rc;
}
