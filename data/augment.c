// augment.c: see augment.h.
#include "data/augment.h"

#include <stdint.h>

void image_hflip(float *out, const float *inp, int B, int C, int H, int W) {
    // out, inp (B, C, H, W)
    int64_t rows = (int64_t)B * C * H;
    for (int64_t r = 0; r < rows; r++)
        for (int x = 0; x < W; x++) out[r * W + x] = inp[r * W + (W - 1 - x)];
}
