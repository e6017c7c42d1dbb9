// plot_lines.h: a line chart (several labelled series of (x, y) points,
// optional log10 y axis) drawn into a rectangle of a toy_canvas
// (stages/common/plot_toy.h, which owns the pixels and writes the PNG), with
// axes, 5 ticks per axis, numeric tick labels, a title and a legend row in a
// built-in 3x5 pixel font (upper case, digits, . - , = ( ) / : * % + ^ < >).
// Used for the tokenizer's robustness curves (eval --model vae
// --plot-robustness). Not a plotting library.
#ifndef STAGES_COMMON_PLOT_LINES_H
#define STAGES_COMMON_PLOT_LINES_H

#include "stages/common/plot_toy.h"

typedef struct {
    const char *label;
    int n;
    const double *x, *y;   // non-finite y (and y <= 0 on a log axis) are skipped
} plot_series;

// Draws into pixels [px, px+pw) x [py, py+ph) of c (pw >= 120, ph >= 100).
// Series colours in order: red, blue, green, orange, purple, grey.
void plot_lines_panel(toy_canvas *c, int px, int py, int pw, int ph, const char *title,
                      const char *xlabel, const plot_series *s, int ns, int logy);
// Text in the 3x5 font scaled by `scale`, top-left at (x, y); unknown
// characters are drawn as blanks. Returns the width in pixels.
int plot_text(toy_canvas *c, int x, int y, const char *text, int scale, const uint8_t rgb[3]);

#endif
