// embed.c: CPU timestep / label / 2D position embeddings (see nn/embed.h).
#include "nn/cpu/ops.h"

#include <math.h>
#include <string.h>

#include "core/base.h"

void timestep_embedding_cpu(float *out, const float *t, int B, int dim, double max_period) {
    // out (B, dim), t (B)
    CHECK(dim > 0 && dim % 2 == 0 && max_period > 1.0);
    const int half = dim / 2;
    for (int b = 0; b < B; b++)
        for (int k = 0; k < half; k++) {
            const double a = (double)t[b] * exp(-log(max_period) * k / half);
            out[(size_t)b * dim + k] = (float)cos(a);
            out[(size_t)b * dim + half + k] = (float)sin(a);
        }
}

static int label_row(const int32_t *y, const uint8_t *drop, int b, int num_classes) {
    return (drop && drop[b]) ? num_classes : y[b];
}

int label_embed_forward_cpu(float *out, const float *table, const int32_t *y,
                        const uint8_t *drop, int B, int D, int num_classes) {
    // out (B, D), table (num_classes+1, D), y (B), drop (B) or NULL
    CHECK(B >= 0 && D > 0 && num_classes > 0);
    for (int b = 0; b < B; b++) {
        const int r = label_row(y, drop, b, num_classes);
        if (r < 0 || r > num_classes) return VEL_ERANGE;
    }
    for (int b = 0; b < B; b++)
        memcpy(out + (size_t)b * D, table + (size_t)label_row(y, drop, b, num_classes) * D,
               sizeof(float) * D);
    return 0;
}

void label_embed_backward_cpu(float *dtable, const float *dout, const int32_t *y,
                          const uint8_t *drop, int B, int D, int num_classes) {
    // dtable (num_classes+1, D), dout (B, D), y (B), drop (B) or NULL
    for (int b = 0; b < B; b++) {
        const int r = label_row(y, drop, b, num_classes);
        CHECK(r >= 0 && r <= num_classes);
        float *d = dtable + (size_t)r * D;
        const float *g = dout + (size_t)b * D;
        for (int c = 0; c < D; c++) d[c] += g[c];
    }
}

void pos_embed_2d_cpu(float *out, int H, int W, int D) {
    // out (H*W, D)
    CHECK(H > 0 && W > 0 && D > 0 && D % 4 == 0);
    const int q = D / 4;
    for (int i = 0; i < H; i++)
        for (int j = 0; j < W; j++) {
            float *o = out + ((size_t)i * W + j) * D;
            for (int k = 0; k < q; k++) {
                const double omega = 1.0 / pow(10000.0, (double)k / q);
                o[k] = (float)sin(j * omega);              // column half first
                o[q + k] = (float)cos(j * omega);
                o[2 * q + k] = (float)sin(i * omega);      // then the row
                o[3 * q + k] = (float)cos(i * omega);
            }
        }
}
