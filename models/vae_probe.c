// vae_probe.c: see vae_probe.h.
#include "models/vae_probe.h"

#include <math.h>
#include <stdlib.h>

#include "core/base.h"
#include "core/philox.h"
#include "models/vae.h"

void vae_latent_std(const float *mu, int64_t n, int zc, int hw, double *std_c) {
    for (int c = 0; c < zc; c++) {
        double s = 0, s2 = 0;
        for (int64_t i = 0; i < n; i++)
            for (int k = 0; k < hw; k++) {
                double v = mu[((size_t)i * zc + c) * hw + k];
                s += v;
                s2 += v * v;
            }
        double cnt = (double)n * hw, mean = s / cnt;
        std_c[c] = sqrt(fmax(s2 / cnt - mean * mean, 0.0));
    }
}

void vae_latent_mean_sigma(const float *logvar, int64_t n, int zc, int hw, double *sigma_c) {
    float *sg = xmalloc(sizeof(float) * (size_t)hw);
    for (int c = 0; c < zc; c++) {
        double s = 0;
        for (int64_t i = 0; i < n; i++) {
            vae_sigma(sg, logvar + ((size_t)i * zc + c) * hw, hw);
            for (int k = 0; k < hw; k++) s += sg[k];
        }
        sigma_c[c] = s / ((double)n * hw);
    }
    free(sg);
}

void vae_probe_latents(float *z, const float *mu, int B, int zc, int hw, double s, const double *std_c,
                       uint64_t seed, uint32_t stream, int64_t i0) {
    const int64_t per = (int64_t)zc * hw, nz = (int64_t)B * per;
    philox_normal(z, nz, seed, stream, (uint64_t)(i0 * per));
    for (int64_t j = 0; j < nz; j++) {
        int c = (int)((j / hw) % zc);
        z[j] = mu[j] + (float)(s * std_c[c]) * z[j];
    }
}
