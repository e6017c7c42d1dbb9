// plot_lines.c: see plot_lines.h.
#include "stages/common/plot_lines.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

// 3x5 glyphs: 5 rows of 3 bits, top row first, bit 2 = left column.
typedef struct { char ch; unsigned char rows[5]; } glyph;
static const glyph FONT[] = {
    {'0', {7, 5, 5, 5, 7}}, {'1', {2, 6, 2, 2, 7}}, {'2', {7, 1, 7, 4, 7}}, {'3', {7, 1, 7, 1, 7}},
    {'4', {5, 5, 7, 1, 1}}, {'5', {7, 4, 7, 1, 7}}, {'6', {7, 4, 7, 5, 7}}, {'7', {7, 1, 1, 2, 2}},
    {'8', {7, 5, 7, 5, 7}}, {'9', {7, 5, 7, 1, 7}}, {'.', {0, 0, 0, 0, 2}}, {'-', {0, 0, 7, 0, 0}},
    {'A', {2, 5, 7, 5, 5}}, {'B', {6, 5, 6, 5, 6}}, {'C', {3, 4, 4, 4, 3}}, {'D', {6, 5, 5, 5, 6}},
    {'E', {7, 4, 6, 4, 7}}, {'F', {7, 4, 6, 4, 4}}, {'G', {3, 4, 5, 5, 3}}, {'H', {5, 5, 7, 5, 5}},
    {'I', {7, 2, 2, 2, 7}}, {'J', {1, 1, 1, 5, 2}}, {'K', {5, 5, 6, 5, 5}}, {'L', {4, 4, 4, 4, 7}},
    {'M', {5, 7, 7, 5, 5}}, {'N', {6, 5, 5, 5, 5}}, {'O', {2, 5, 5, 5, 2}}, {'P', {6, 5, 6, 4, 4}},
    {'Q', {2, 5, 5, 6, 3}}, {'R', {6, 5, 6, 5, 5}}, {'S', {3, 4, 2, 1, 6}}, {'T', {7, 2, 2, 2, 2}},
    {'U', {5, 5, 5, 5, 7}}, {'V', {5, 5, 5, 5, 2}}, {'W', {5, 5, 7, 7, 5}}, {'X', {5, 5, 2, 5, 5}},
    {'Y', {5, 5, 2, 2, 2}}, {'Z', {7, 1, 2, 4, 7}}, {'(', {2, 4, 4, 4, 2}}, {')', {2, 1, 1, 1, 2}},
    {'=', {0, 7, 0, 7, 0}}, {'/', {1, 1, 2, 4, 4}}, {',', {0, 0, 0, 2, 4}}, {':', {0, 2, 0, 2, 0}},
    {'*', {0, 5, 2, 5, 0}}, {'%', {5, 1, 2, 4, 5}}, {'+', {0, 2, 7, 2, 0}}, {'^', {2, 5, 0, 0, 0}},
    {'<', {1, 2, 4, 2, 1}}, {'>', {4, 2, 1, 2, 4}},
};

static void put(toy_canvas *c, int i, int j, const uint8_t rgb[3]) {
    if (i < 0 || j < 0 || i >= c->w || j >= c->h) return;
    memcpy(c->pix + 3 * ((size_t)j * c->w + i), rgb, 3);
}

int plot_text(toy_canvas *c, int x, int y, const char *text, int scale, const uint8_t rgb[3]) {
    int x0 = x;
    for (const char *p = text; *p; p++) {
        char ch = (char)toupper((unsigned char)*p);
        const glyph *g = NULL;
        for (size_t k = 0; k < sizeof FONT / sizeof FONT[0]; k++)
            if (FONT[k].ch == ch) { g = &FONT[k]; break; }
        if (g)
            for (int r = 0; r < 5; r++)
                for (int col = 0; col < 3; col++)
                    if (g->rows[r] & (4 >> col))
                        for (int a = 0; a < scale; a++)
                            for (int b = 0; b < scale; b++) put(c, x + col * scale + b, y + r * scale + a, rgb);
        x += 4 * scale;
    }
    return x - x0;
}

// Line of width 2 from (i0, j0) to (i1, j1) (Bresenham).
static void line(toy_canvas *c, int i0, int j0, int i1, int j1, const uint8_t rgb[3]) {
    int di = i1 > i0 ? i1 - i0 : i0 - i1, dj = j1 > j0 ? j0 - j1 : j1 - j0;
    int si = i0 < i1 ? 1 : -1, sj = j0 < j1 ? 1 : -1, err = di + dj;
    for (;;) {
        put(c, i0, j0, rgb); put(c, i0 + 1, j0, rgb); put(c, i0, j0 + 1, rgb);
        if (i0 == i1 && j0 == j1) break;
        int e2 = 2 * err;
        if (e2 >= dj) { err += dj; i0 += si; }
        if (e2 <= di) { err += di; j0 += sj; }
    }
}

static const uint8_t COLOURS[6][3] = {{214, 39, 40}, {31, 119, 180}, {44, 160, 44},
                                      {255, 127, 14}, {148, 103, 189}, {127, 127, 127}};
static const uint8_t BLACK[3] = {0, 0, 0}, GRID[3] = {225, 225, 225};

static int usable(double y, int logy) { return isfinite(y) && (!logy || y > 0); }

void plot_lines_panel(toy_canvas *c, int px, int py, int pw, int ph, const char *title,
                      const char *xlabel, const plot_series *s, int ns, int logy) {
    const int ml = 52, mr = 10, mt = 38, mb = 30;
    int ax0 = px + ml, ax1 = px + pw - mr, ay0 = py + mt, ay1 = py + ph - mb;   // plot area
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < s[k].n; i++) {
            if (!usable(s[k].y[i], logy) || !isfinite(s[k].x[i])) continue;
            double y = logy ? log10(s[k].y[i]) : s[k].y[i];
            xlo = fmin(xlo, s[k].x[i]); xhi = fmax(xhi, s[k].x[i]);
            ylo = fmin(ylo, y); yhi = fmax(yhi, y);
        }
    if (!(xhi >= xlo)) xlo = 0, xhi = 1;
    if (!(yhi >= ylo)) ylo = 0, yhi = 1;
    if (xhi == xlo) xlo -= 0.5, xhi += 0.5;
    if (yhi == ylo) ylo -= 0.5, yhi += 0.5;
    double pad = 0.06 * (yhi - ylo);
    ylo -= pad, yhi += pad;
    plot_text(c, px + ml, py + 5, title, 2, BLACK);
    char buf[32];
    for (int t = 0; t <= 4; t++) {   // ticks and grid
        double fx = xlo + t * (xhi - xlo) / 4, fy = ylo + t * (yhi - ylo) / 4;
        int i = ax0 + (int)lround((double)t * (ax1 - ax0) / 4), j = ay1 - (int)lround((double)t * (ay1 - ay0) / 4);
        for (int jj = ay0; jj <= ay1; jj++) put(c, i, jj, GRID);
        for (int ii = ax0; ii <= ax1; ii++) put(c, ii, j, GRID);
        snprintf(buf, sizeof buf, "%.3g", fx);
        plot_text(c, i - 4 * (int)strlen(buf) / 2 * 1, ay1 + 5, buf, 1, BLACK);
        snprintf(buf, sizeof buf, "%.3g", logy ? pow(10.0, fy) : fy);
        plot_text(c, ax0 - 4 - 4 * (int)strlen(buf), j - 2, buf, 1, BLACK);
    }
    for (int i = ax0; i <= ax1; i++) { put(c, i, ay1, BLACK); put(c, i, ay0, BLACK); }
    for (int j = ay0; j <= ay1; j++) { put(c, ax0, j, BLACK); put(c, ax1, j, BLACK); }
    plot_text(c, (ax0 + ax1) / 2 - 4 * (int)strlen(xlabel), ay1 + 14, xlabel, 2, BLACK);
    int lx = ax0;
    for (int k = 0; k < ns; k++) {
        const uint8_t *col = COLOURS[k % 6];
        int have = 0, pi = 0, pj = 0;
        for (int i = 0; i < s[k].n; i++) {
            if (!usable(s[k].y[i], logy) || !isfinite(s[k].x[i])) continue;
            double y = logy ? log10(s[k].y[i]) : s[k].y[i];
            int ci = ax0 + (int)lround((s[k].x[i] - xlo) / (xhi - xlo) * (ax1 - ax0));
            int cj = ay1 - (int)lround((y - ylo) / (yhi - ylo) * (ay1 - ay0));
            if (have) line(c, pi, pj, ci, cj, col);
            for (int a = -2; a <= 2; a++)
                for (int b = -2; b <= 2; b++) put(c, ci + a, cj + b, col);
            have = 1, pi = ci, pj = cj;
        }
        // legend: one row under the title, left to right
        line(c, lx, py + 24, lx + 14, py + 24, col);
        lx += 20 + plot_text(c, lx + 20, py + 20, s[k].label, 2, col) + 12;
    }
}
