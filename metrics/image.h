// metrics_image.h: reconstruction metrics of SPEC section 5 on images in the
// model's float layout (C, H, W) in [-1, 1]: both images are first mapped to
// uint8 with SPEC's clamp(127.5*x + 128, 0, 255) (data/image_io.h), so the
// numbers are those of the saved PNGs.
// - PSNR = 10 log10(255^2 / MSE) over all C*H*W values; identical images
//   give METRIC_PSNR_MAX (a cap instead of infinity, so averages stay finite).
// - SSIM (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5, normalised;
//   K1 0.01, K2 0.03, L 255; the map over "valid" window positions (as the
//   authors' MATLAB filter2(..., 'valid')), averaged, then averaged over C.
// Not here: Frechet distance (metrics/frechet.h), feature networks.
#ifndef METRICS_IMAGE_H
#define METRICS_IMAGE_H

#define METRIC_PSNR_MAX 100.0

double image_psnr(const float *x, const float *y, int C, int H, int W);
// H, W >= 11. Returns NAN when smaller.
double image_ssim(const float *x, const float *y, int C, int H, int W);

#endif
