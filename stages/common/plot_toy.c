// plot_toy.c: see plot_toy.h.
#include "stages/common/plot_toy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/image_io.h"
#include "core/base.h"

int toy_canvas_new(toy_canvas *c, int w, int h, double x0, double x1, double y0, double y1) {
    if (w < 2 || h < 2 || !(x1 > x0) || !(y1 > y0)) return VEL_EINVAL;
    c->pix = malloc((size_t)w * h * 3);
    if (!c->pix) return VEL_ENOMEM;
    memset(c->pix, 255, (size_t)w * h * 3);
    c->w = w, c->h = h, c->x0 = x0, c->x1 = x1, c->y0 = y0, c->y1 = y1;
    return 0;
}

void toy_canvas_free(toy_canvas *c) {
    free(c->pix);
    c->pix = NULL;
}

static int cmpf(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

void toy_window(const float *pts, int64_t n, double margin, double win[4]) {
    float *v = xmalloc(sizeof(float) * (n > 0 ? n : 1));
    for (int d = 0; d < 2; d++) {
        for (int64_t i = 0; i < n; i++) v[i] = pts[2 * i + d];
        qsort(v, n, sizeof(float), cmpf);
        double lo = n ? v[(int64_t)(0.005 * (n - 1))] : -1, hi = n ? v[(int64_t)(0.995 * (n - 1))] : 1;
        if (!(hi > lo)) lo -= 1, hi += 1;
        double pad = margin * (hi - lo);
        win[2 * d] = lo - pad;
        win[2 * d + 1] = hi + pad;
    }
    free(v);
}

void toy_canvas_coord(const toy_canvas *c, int i, int j, double *x, double *y) {
    *x = c->x0 + (i + 0.5) * (c->x1 - c->x0) / c->w;
    *y = c->y1 - (j + 0.5) * (c->y1 - c->y0) / c->h;
}

static void put(toy_canvas *c, int i, int j, const uint8_t rgb[3]) {
    if (i < 0 || j < 0 || i >= c->w || j >= c->h) return;
    memcpy(c->pix + 3 * ((size_t)j * c->w + i), rgb, 3);
}

static void to_pixel(const toy_canvas *c, double x, double y, int *i, int *j) {
    *i = (int)floor((x - c->x0) / (c->x1 - c->x0) * c->w);
    *j = (int)floor((c->y1 - y) / (c->y1 - c->y0) * c->h);
}

void toy_canvas_heat(toy_canvas *c, const double *vals, double lo, double hi) {
    for (int j = 0; j < c->h; j++)
        for (int i = 0; i < c->w; i++) {
            double v = vals[(size_t)j * c->w + i];
            double u = isfinite(v) ? (v - lo) / (hi - lo) : 0.0;
            u = u < 0 ? 0 : u > 1 ? 1 : u;
            // white (low) -> deep blue (high): density reads as ink
            uint8_t rgb[3] = {(uint8_t)(255 - 225 * u), (uint8_t)(255 - 175 * u), (uint8_t)(255 - 80 * u)};
            put(c, i, j, rgb);
        }
}

void toy_canvas_dots(toy_canvas *c, const float *pts, int64_t n, const uint8_t rgb[3], int radius) {
    for (int64_t k = 0; k < n; k++) {
        int i, j;
        to_pixel(c, pts[2 * k], pts[2 * k + 1], &i, &j);
        for (int dj = -radius; dj <= radius; dj++)
            for (int di = -radius; di <= radius; di++)
                if (di * di + dj * dj <= radius * radius) put(c, i + di, j + dj, rgb);
    }
}

void toy_canvas_ellipse(toy_canvas *c, double cx, double cy, double rx, double ry, const uint8_t rgb[3]) {
    double px = rx / (c->x1 - c->x0) * c->w, py = ry / (c->y1 - c->y0) * c->h;
    int steps = (int)(4 * (px + py)) + 16;
    if (steps > 4096) steps = 4096;
    for (int s = 0; s < steps; s++) {
        double a = 2 * M_PI * s / steps;
        int i, j;
        to_pixel(c, cx + rx * cos(a), cy + ry * sin(a), &i, &j);
        put(c, i, j, rgb);
    }
}

int toy_canvas_write(const toy_canvas *c, const char *path) {
    return png_write(path, c->pix, c->w, c->h, 3);
}

int toy_side_by_side(const char *out, const char *const *in, int n) {
    if (n < 1 || n > 16) return VEL_EINVAL;
    uint8_t *pix[16] = {0};
    int w[16], h[16], ch, W = 0, H = 0, rc = 0;
    for (int k = 0; k < n && !rc; k++) {
        rc = png_read(in[k], 3, &pix[k], &w[k], &h[k], &ch);
        if (!rc) {
            W += w[k] + (k ? 2 : 0);
            if (h[k] > H) H = h[k];
        }
    }
    if (!rc) {
        uint8_t *o = malloc((size_t)W * H * 3);
        if (!o) rc = VEL_ENOMEM;
        else {
            memset(o, 255, (size_t)W * H * 3);
            int x = 0;
            for (int k = 0; k < n; k++) {
                for (int j = 0; j < h[k]; j++) memcpy(o + 3 * ((size_t)j * W + x), pix[k] + 3 * (size_t)j * w[k], 3 * (size_t)w[k]);
                x += w[k] + 2;
            }
            rc = png_write(out, o, W, H, 3);
            free(o);
        }
    }
    for (int k = 0; k < n; k++) free(pix[k]);
    return rc;
}
