// plot_toy_frame.c: toy_canvas_write_labelled (plot_toy.h). A toy figure
// without a title, axes and a legend cannot be read on its own (issue 14):
// the panel is copied unchanged into a larger white canvas and the labels
// are drawn around it.
#include "stages/common/plot_toy.h"

#include <stdio.h>
#include <string.h>

#include "core/base.h"
#include "stages/common/plot_lines.h"

enum { ML = 56, MR = 16, MT = 30, MB = 42, KEY_H = 16, TICKS = 5 };

static const uint8_t BLACK[3] = {0, 0, 0};

static void rect(toy_canvas *c, int x, int y, int w, int h, const uint8_t rgb[3]) {
    for (int j = y; j < y + h; j++)
        for (int i = x; i < x + w; i++)
            if (i >= 0 && j >= 0 && i < c->w && j < c->h) memcpy(c->pix + 3 * ((size_t)j * c->w + i), rgb, 3);
}

int toy_canvas_write_labelled(const toy_canvas *in, const char *path, const toy_labels *lab) {
    int W = ML + in->w + MR, H = MT + in->h + MB + KEY_H * lab->nkeys + 4;
    toy_canvas c;
    int rc = toy_canvas_new(&c, W, H, in->x0, in->x1, in->y0, in->y1);
    if (rc) return rc;
    for (int j = 0; j < in->h; j++)
        memcpy(c.pix + 3 * ((size_t)(MT + j) * W + ML), in->pix + 3 * (size_t)j * in->w, 3 * (size_t)in->w);
    // frame just outside the panel, so no data pixel is covered
    rect(&c, ML - 1, MT - 1, in->w + 2, 1, BLACK);
    rect(&c, ML - 1, MT + in->h, in->w + 2, 1, BLACK);
    rect(&c, ML - 1, MT - 1, 1, in->h + 2, BLACK);
    rect(&c, ML + in->w, MT - 1, 1, in->h + 2, BLACK);
    char buf[32];
    for (int k = 0; k < TICKS; k++) {
        double f = (double)k / (TICKS - 1);
        int i = ML + (int)(f * (in->w - 1)), j = MT + in->h - 1 - (int)(f * (in->h - 1));
        rect(&c, i, MT + in->h + 1, 1, 4, BLACK);
        snprintf(buf, sizeof buf, "%.2f", in->x0 + f * (in->x1 - in->x0));
        plot_text(&c, i - 2 * (int)strlen(buf), MT + in->h + 7, buf, 1, BLACK);
        rect(&c, ML - 5, j, 4, 1, BLACK);
        snprintf(buf, sizeof buf, "%.2f", in->y0 + f * (in->y1 - in->y0));
        plot_text(&c, ML - 7 - 4 * (int)strlen(buf), j - 2, buf, 1, BLACK);
    }
    if (lab->title) plot_text(&c, 4, 8, lab->title, 2, BLACK);
    if (lab->xlabel)
        plot_text(&c, ML + in->w / 2 - 4 * (int)strlen(lab->xlabel), MT + in->h + 18, lab->xlabel, 2, BLACK);
    if (lab->ylabel) plot_text(&c, 4, MT + in->h / 2 - 5, lab->ylabel, 2, BLACK);
    for (int k = 0; k < lab->nkeys; k++) {
        int y = MT + in->h + MB + KEY_H * k;
        rect(&c, 6, y, 10, 10, BLACK);
        rect(&c, 7, y + 1, 8, 8, lab->keys[k].rgb);
        plot_text(&c, 22, y, lab->keys[k].label, 2, BLACK);
    }
    rc = toy_canvas_write(&c, path);
    toy_canvas_free(&c);
    return rc;
}
