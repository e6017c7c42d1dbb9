// recon_grid.c: see recon_grid.h.
#include "stages/common/recon_grid.h"

#include <stdint.h>
#include <string.h>

#include "core/base.h"
#include "data/image_io.h"
#include "stages/common/plot_lines.h"
#include "stages/common/plot_toy.h"

enum { S = 3, SIDE = 32 * S, PAD = 4, LBL = 96, TOP = 24, MAX_B = 256 };

static void put_image(toy_canvas *c, const float *im, int C, int x0, int y0) {
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
            uint8_t *p = c->pix + 3 * ((size_t)(y0 + y) * c->w + x0 + x);
            for (int k = 0; k < 3; k++) {
                int ch = C == 3 ? k : 0;
                p[k] = image_f32_to_u8(im[((size_t)ch * 32 + y / S) * 32 + x / S]);
            }
        }
}

int recon_grid_png(const char *path, const float *orig, const float *rec, int B, int C, const char *title) {
    if (B < 1 || B > MAX_B || (C != 1 && C != 3)) return VEL_EINVAL;
    toy_canvas c;
    int rc = toy_canvas_new(&c, LBL + B * (SIDE + PAD) + PAD, TOP + 2 * (SIDE + PAD) + PAD, 0, 1, 0, 1);
    if (rc) return rc;
    const uint8_t black[3] = {0, 0, 0};
    const char *rows[2] = {"INPUT", "RECON (MU)"};
    const float *src[2] = {orig, rec};
    for (int r = 0; r < 2; r++) {
        int y0 = TOP + PAD + r * (SIDE + PAD);
        plot_text(&c, 4, y0 + SIDE / 2 - 5, rows[r], 2, black);
        for (int b = 0; b < B; b++) put_image(&c, src[r] + (size_t)b * C * 1024, C, LBL + PAD + b * (SIDE + PAD), y0);
    }
    if (title) plot_text(&c, 4, 6, title, 2, black);
    rc = toy_canvas_write(&c, path);
    toy_canvas_free(&c);
    return rc;
}
