// test_image_metrics.c: PSNR and SSIM of metrics/image.c against
// the scipy reference (tests/ref/gen_vae_metrics.py) and closed forms
// (identical images: SSIM 1, PSNR capped; a constant offset: known MSE).
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "data/image_io.h"
#include "metrics/image.h"
#include "tests/util.h"

Test(vae_metrics, matches_scipy_reference) {
    for (int i = 0; i < 3; i++) {
        char k[64];
        int64_t n, ns, nr;
        snprintf(k, sizeof k, "m%d_x", i);
        float *x = ref_f32("vae_metrics", k, &n);
        snprintf(k, sizeof k, "m%d_y", i);
        float *y = ref_f32("vae_metrics", k, &n);
        snprintf(k, sizeof k, "m%d_shape", i);
        float *sh = ref_f32("vae_metrics", k, &ns);
        snprintf(k, sizeof k, "m%d_psnr_ssim", i);
        double *r = ref_f64("vae_metrics", k, &nr);
        int C = (int)sh[0], H = (int)sh[1], W = (int)sh[2];
        double got[2] = {image_psnr(x, y, C, H, W), image_ssim(x, y, C, H, W)};
        // Both in double from the same uint8 values: agreement to rounding.
        expect_close_f64("psnr, ssim vs scipy", got, r, 2, 1e-10, 1e-10);
        free(x); free(y); free(sh); free(r);
    }
}

Test(vae_metrics, closed_forms) {
    enum { C = 3, H = 16, W = 12, N = C * H * W };
    float x[N], y[N];
    fill_uniform(x, N, 5, -0.8f, 0.8f);
    cr_assert_float_eq(image_ssim(x, x, C, H, W), 1.0, 1e-12);
    cr_assert_float_eq(image_psnr(x, x, C, H, W), METRIC_PSNR_MAX, 0);
    // Shift every uint8 value by exactly 4: MSE 16, PSNR 10 log10(255^2/16).
    for (int i = 0; i < N; i++) {
        uint8_t v = image_f32_to_u8(x[i]);
        x[i] = image_u8_to_f32(v);
        y[i] = image_u8_to_f32((uint8_t)(v + 4));
    }
    cr_assert_float_eq(image_psnr(x, y, C, H, W), 10 * log10(255.0 * 255.0 / 16.0), 1e-12);
    // A constant shift keeps the structure: SSIM's contrast/structure terms
    // are exactly 1 and only the luminance term drops below 1.
    double s = image_ssim(x, y, C, H, W);
    cr_assert(s < 1.0 && s > 0.99, "ssim %f", s);
    cr_assert(isnan(image_ssim(x, y, C, 10, 10)));
}

// Colour images (the RGB photo tokenizer's eval): SSIM is the mean of the
// per-channel SSIMs, PSNR uses the MSE over all C*H*W values, i.e.
// 10 log10(255^2 / mean of the per-channel MSEs).
Test(vae_metrics, colour_is_channel_mean) {
    enum { C = 3, H = 32, W = 32, P = H * W, N = C * P };
    static float x[N], y[N];
    fill_uniform(x, N, 11, -1.0f, 1.0f);
    fill_uniform(y, N, 12, -0.2f, 0.2f);
    for (int i = 0; i < N; i++) y[i] = fminf(fmaxf(x[i] + y[i] * (float)(1 + i / P), -1.0f), 1.0f);
    double s = 0, mse = 0;
    for (int c = 0; c < C; c++) {
        s += image_ssim(x + c * P, y + c * P, 1, H, W) / C;
        mse += pow(10.0, -image_psnr(x + c * P, y + c * P, 1, H, W) / 10.0) * 255.0 * 255.0 / C;
    }
    cr_assert_float_eq(image_ssim(x, y, C, H, W), s, 1e-12);
    cr_assert_float_eq(image_psnr(x, y, C, H, W), 10 * log10(255.0 * 255.0 / mse), 1e-9);
}
