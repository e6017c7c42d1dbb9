// normalise.c: THE latent normalisation (HACKING.md: one pair of functions,
// constants only in the cache's meta). zn = (z - mean_c) / std_c.
// Not here: computing the stats (stats.c).
#include "core/base.h"
#include "store/internal.h"

static int stats_ok(const store_meta *m) {
    if (!m->has_stats)
        return vel_fail(STORE_ENOSTATS, "cache meta has no per-channel mean/std (run "
                          "store_compute_stats + store_set_stats after encoding)");
    return 0;
}

int store_normalise(float *zn, const float *z, const store_meta *m, int64_t B) {
    // zn (B,C,H,W), z (B,C,H,W); zn may equal z
    int rc = stats_ok(m);
    if (rc) return rc;
    const int64_t C = m->shape[0], HW = m->shape[1] * m->shape[2];
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++) {
            // A true division (not * 1/std): bit-for-bit the SPEC formula.
            const float mc = m->mean[c], sc = m->std[c];
            const float *src = z + (b * C + c) * HW;
            float *dst = zn + (b * C + c) * HW;
            for (int64_t j = 0; j < HW; j++) dst[j] = (src[j] - mc) / sc;
        }
    return 0;
}

int store_denormalise(float *z, const float *zn, const store_meta *m, int64_t B) {
    // z (B,C,H,W), zn (B,C,H,W); z may equal zn
    int rc = stats_ok(m);
    if (rc) return rc;
    const int64_t C = m->shape[0], HW = m->shape[1] * m->shape[2];
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++) {
            const float mc = m->mean[c], sc = m->std[c];
            const float *src = zn + (b * C + c) * HW;
            float *dst = z + (b * C + c) * HW;
            for (int64_t j = 0; j < HW; j++) dst[j] = src[j] * sc + mc;
        }
    return 0;
}
