// plot_toy.h: tiny raster plots for the toy's figures (PNG via
// data/image_io.h): an RGB canvas with a data-to-pixel window, a log-density
// heatmap, dots, axis-aligned ellipses, and side-by-side composition.
// Not a plotting library: just what Figure 1/2 of the paper need.
#ifndef STAGES_COMMON_PLOT_TOY_H
#define STAGES_COMMON_PLOT_TOY_H

#include <stdint.h>

typedef struct {
    int w, h;
    uint8_t *pix;                   // (h, w, 3), owned
    double x0, x1, y0, y1;          // data window (y up)
} toy_canvas;

int toy_canvas_new(toy_canvas *c, int w, int h, double x0, double x1, double y0, double y1);
void toy_canvas_free(toy_canvas *c);
// Window around points (n, 2) with a margin (robust: 0.5%..99.5% quantiles).
void toy_window(const float *pts, int64_t n, double margin, double win[4]);
// Heatmap of f(x, y) values (already computed on the w x h pixel centres,
// row 0 at the top) mapped from [lo, hi] to a dark-to-light blue scale.
void toy_canvas_heat(toy_canvas *c, const double *vals, double lo, double hi);
void toy_canvas_dots(toy_canvas *c, const float *pts, int64_t n, const uint8_t rgb[3], int radius);
void toy_canvas_ellipse(toy_canvas *c, double cx, double cy, double rx, double ry, const uint8_t rgb[3]);
// Pixel centre (i column, j row) -> data coordinates.
void toy_canvas_coord(const toy_canvas *c, int i, int j, double *x, double *y);
int toy_canvas_write(const toy_canvas *c, const char *path);
// A labelled figure around a finished canvas (stages/common/plot_toy_frame.c):
// the title above, a frame with 5 ticks per axis and their data values, the
// axis names, and one legend row per key (a colour swatch and its text) below.
// Text in plot_lines' 3x5 font (upper case; lower case is drawn upper case).
typedef struct {
    const char *label;
    uint8_t rgb[3];
} toy_key;
typedef struct {
    const char *title, *xlabel, *ylabel;
    const toy_key *keys;
    int nkeys;
} toy_labels;
int toy_canvas_write_labelled(const toy_canvas *c, const char *path, const toy_labels *lab);
// Reads PNGs (RGB) and writes them next to each other (2-pixel white gaps).
int toy_side_by_side(const char *out, const char *const *in, int n);

#endif
