// stats.c: per-channel latent statistics over a fixed, seeded subset of the
// cache (docs/FORMULAS.md section on DiT latents). Computed here because only the
// store knows which records exist; written to the meta by store_set_stats.
// Not here: applying them (normalise.c).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "store/internal.h"

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int store_compute_stats(store *s, float *mean, float *std, size_t n_subset, uint64_t seed) {
    uint64_t *idx = NULL;
    size_t n = 0;
    int rc = store_list_indices(s, &idx, &n);
    if (rc) return rc;
    if (n == 0) { free(idx); return vel_fail(STORE_ENOKEY, "%s: no records to compute stats from", s->path); }
    if (n_subset > 0 && n_subset < n) {
        // Partial Fisher-Yates: the first n_subset slots become a uniform
        // sample; the seed fixes it. Sorting restores a fixed sum order.
        for (size_t i = 0; i < n_subset; i++) {
            size_t j = i + (size_t)(splitmix64(&seed) % (n - i));
            uint64_t t = idx[i]; idx[i] = idx[j]; idx[j] = t;
        }
        n = n_subset;
        qsort(idx, n, sizeof *idx, cmp_u64);
    }
    const int64_t C = s->meta.shape[0], HW = s->meta.shape[1] * s->meta.shape[2];
    double *sum = calloc((size_t)C * 3, sizeof(double));
    float *mu = malloc((size_t)(C * HW) * sizeof(float)), *sg = malloc((size_t)(C * HW) * sizeof(float));
    if (!sum || !mu || !sg) {
        free(sum); free(mu); free(sg); free(idx);
        return vel_fail(VEL_ENOMEM, "stats buffers");
    }
    double *sq = sum + C, *s2 = sum + 2 * C;
    store_txn *t = NULL;
    rc = store_txn_begin(s, &t);
    // Two passes in one snapshot: the mean first, then squared deviations,
    // which avoids the cancellation of E[x^2] - E[x]^2.
    for (int pass = 0; pass < 2 && !rc; pass++) {
        for (size_t i = 0; i < n && !rc; i++) {
            rc = store_txn_read_batch(t, mu, sg, NULL, &idx[i], NULL, 1);
            for (int64_t c = 0; c < C && !rc; c++) {
                const float *m = mu + c * HW, *g = sg + c * HW;
                if (pass == 0) {
                    for (int64_t j = 0; j < HW; j++) sum[c] += m[j];
                } else {
                    double mc = sum[c];
                    for (int64_t j = 0; j < HW; j++) {
                        double d = m[j] - mc;
                        sq[c] += d * d;
                        s2[c] += (double)g[j] * g[j];
                    }
                }
            }
        }
        if (pass == 0)
            for (int64_t c = 0; c < C; c++) sum[c] /= (double)n * (double)HW;
    }
    store_txn_end(&t);
    if (!rc) {
        double cnt = (double)n * (double)HW;
        for (int64_t c = 0; c < C; c++) {
            mean[c] = (float)sum[c];
            std[c] = (float)sqrt(sq[c] / cnt + s2[c] / cnt);
            if (!(std[c] > 0) || !isfinite(std[c]) || !isfinite(mean[c])) {
                rc = vel_fail(VEL_ERANGE, "%s: channel %lld has mean %g std %g: cannot normalise",
                                s->path, (long long)c, mean[c], std[c]);
                break;
            }
        }
    }
    free(sum); free(mu); free(sg); free(idx);
    return rc;
}
