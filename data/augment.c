// augment.c: see augment.h.
#include "data/augment.h"

#include <stddef.h>
#include <stdint.h>

void image_hflip(float *out, const float *inp, int B, int C, int H, int W) {
    // out, inp (B, C, H, W)
    int64_t rows = (int64_t)B * C * H;
    for (int64_t r = 0; r < rows; r++)
        for (int x = 0; x < W; x++) out[r * W + x] = inp[r * W + (W - 1 - x)];
}

void image_shift(float *out, const float *inp, int C, int H, int W, int dy, int dx, float fill) {
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int ys = y - dy, xs = x - dx;
                out[((size_t)c * H + y) * W + x] =
                    ys >= 0 && ys < H && xs >= 0 && xs < W ? inp[((size_t)c * H + ys) * W + xs] : fill;
            }
}
