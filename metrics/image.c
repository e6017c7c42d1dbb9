// metrics_image.c: PSNR and SSIM (see metrics_image.h). Everything in double;
// the Gaussian window is separable, so local means are two 1-D passes.
#include "metrics/image.h"

#include <math.h>
#include <stdlib.h>

#include "data/image_io.h"

#define SSIM_WIN 11

double image_psnr(const float *x, const float *y, int C, int H, int W) {
    int64_t n = (int64_t)C * H * W;
    double se = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)image_f32_to_u8(x[i]) - (double)image_f32_to_u8(y[i]);
        se += d * d;
    }
    if (se == 0) return METRIC_PSNR_MAX;
    double p = 10.0 * log10(255.0 * 255.0 / (se / (double)n));
    return p < METRIC_PSNR_MAX ? p : METRIC_PSNR_MAX;
}

// out (OH, OW) = valid correlation of in (H, W) with g (x) g.
static void blur_valid(double *out, const double *in, double *tmp, const double *g, int H, int W) {
    int OH = H - SSIM_WIN + 1, OW = W - SSIM_WIN + 1;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < OW; x++) {
            double s = 0;
            for (int k = 0; k < SSIM_WIN; k++) s += g[k] * in[y * W + x + k];
            tmp[y * OW + x] = s;
        }
    for (int y = 0; y < OH; y++)
        for (int x = 0; x < OW; x++) {
            double s = 0;
            for (int k = 0; k < SSIM_WIN; k++) s += g[k] * tmp[(y + k) * OW + x];
            out[y * OW + x] = s;
        }
}

double image_ssim(const float *x, const float *y, int C, int H, int W) {
    if (H < SSIM_WIN || W < SSIM_WIN) return NAN;
    double g[SSIM_WIN], gs = 0;
    for (int k = 0; k < SSIM_WIN; k++) {
        double d = k - (SSIM_WIN - 1) / 2.0;
        g[k] = exp(-d * d / (2.0 * 1.5 * 1.5));
        gs += g[k];
    }
    for (int k = 0; k < SSIM_WIN; k++) g[k] /= gs;
    const double C1 = (0.01 * 255) * (0.01 * 255), C2 = (0.03 * 255) * (0.03 * 255);
    int OH = H - SSIM_WIN + 1, OW = W - SSIM_WIN + 1;
    size_t hw = (size_t)H * W, ohw = (size_t)OH * OW;
    double *a = malloc(sizeof(double) * hw * 5), *tmp = malloc(sizeof(double) * hw);
    double *m = malloc(sizeof(double) * ohw * 5);
    if (!a || !tmp || !m) { free(a); free(tmp); free(m); return NAN; }
    double total = 0;
    for (int c = 0; c < C; c++) {
        // a: x, y, x^2, y^2, xy
        for (size_t i = 0; i < hw; i++) {
            double u = image_f32_to_u8(x[c * hw + i]), v = image_f32_to_u8(y[c * hw + i]);
            a[i] = u; a[hw + i] = v; a[2 * hw + i] = u * u; a[3 * hw + i] = v * v;
            a[4 * hw + i] = u * v;
        }
        for (int k = 0; k < 5; k++) blur_valid(m + k * ohw, a + k * hw, tmp, g, H, W);
        double s = 0;
        for (size_t i = 0; i < ohw; i++) {
            double mx = m[i], my = m[ohw + i];
            double vx = m[2 * ohw + i] - mx * mx, vy = m[3 * ohw + i] - my * my;
            double cxy = m[4 * ohw + i] - mx * my;
            s += ((2 * mx * my + C1) * (2 * cxy + C2)) / ((mx * mx + my * my + C1) * (vx + vy + C2));
        }
        total += s / (double)ohw;
    }
    free(a); free(tmp); free(m);
    return total / C;
}
