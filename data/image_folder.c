// image_folder.c: PIL-compatible resampling, ADM's centre crop and the
// class-folder scanner. See image_folder.h for the semantics and the known
// differences from Pillow.
#include "data/image_folder.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/image_io.h"

// ---- resampling -----------------------------------------------------------

#define PREC_BITS 22   // Pillow: 32 - 8 (pixel) - 2 (headroom for negative lobes)

static double filter_box(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }

// Keys' cubic with a = -0.5 (Pillow's BICUBIC).
static double filter_bicubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

typedef struct {
    int ksize;
    int *bounds;   // (out, 2): first input index, count
    int *k;        // (out, ksize) fixed-point weights
} coeffs;

static int make_coeffs(coeffs *cf, int in_size, int out_size, resample_filter f) {
    double (*fn)(double) = f == RESAMPLE_BOX ? filter_box : filter_bicubic;
    double fsupport = f == RESAMPLE_BOX ? 0.5 : 2.0;
    double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = fsupport * filterscale;
    cf->ksize = (int)ceil(support) * 2 + 1;
    cf->bounds = malloc(sizeof(int) * 2 * (size_t)out_size);
    cf->k = malloc(sizeof(int) * (size_t)cf->ksize * out_size);
    double *w = malloc(sizeof(double) * (size_t)cf->ksize);
    if (!cf->bounds || !cf->k || !w) { free(w); return VEL_ENOMEM; }
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale, ss = 1.0 / filterscale, ww = 0.0;
        int xmin = (int)(center - support + 0.5);   // C truncation, as Pillow
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            w[x] = fn((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        int *k = cf->k + (size_t)xx * cf->ksize;
        for (int x = 0; x < cf->ksize; x++) {
            double v = x < xmax ? (ww != 0.0 ? w[x] / ww : w[x]) : 0.0;
            k[x] = v < 0 ? (int)(-0.5 + v * (1 << PREC_BITS)) : (int)(0.5 + v * (1 << PREC_BITS));
        }
        cf->bounds[2 * xx] = xmin;
        cf->bounds[2 * xx + 1] = xmax;
    }
    free(w);
    return 0;
}

static void free_coeffs(coeffs *cf) { free(cf->bounds); free(cf->k); }

static inline uint8_t clip8(int64_t v) {
    if (v >= ((int64_t)1 << PREC_BITS << 8)) return 255;
    if (v <= 0) return 0;
    return (uint8_t)(v >> PREC_BITS);
}

// One pass along x (horizontal) or y (vertical). dst (oh, ow, c).
static void pass(uint8_t *dst, int ow, int oh, const uint8_t *src, int sw, int c,
                 const coeffs *cf, int horizontal) {
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            int o = horizontal ? x : y;
            int xmin = cf->bounds[2 * o], n = cf->bounds[2 * o + 1];
            const int *k = cf->k + (size_t)o * cf->ksize;
            for (int ch = 0; ch < c; ch++) {
                int64_t ss = (int64_t)1 << (PREC_BITS - 1);
                for (int t = 0; t < n; t++) {
                    int sx = horizontal ? xmin + t : x, sy = horizontal ? y : xmin + t;
                    ss += (int64_t)src[((size_t)sy * sw + sx) * c + ch] * k[t];
                }
                dst[((size_t)y * ow + x) * c + ch] = clip8(ss);
            }
        }
}

int image_resize_pil(uint8_t *dst, int dw, int dh, const uint8_t *src, int sw, int sh,
                     int c, resample_filter filter) {
    if (!dst || !src || dw <= 0 || dh <= 0 || sw <= 0 || sh <= 0 || c <= 0) return VEL_EINVAL;
    if (dw == sw && dh == sh) {
        memcpy(dst, src, (size_t)dw * dh * c);
        return 0;
    }
    coeffs ch = {0}, cv = {0};
    uint8_t *tmp = NULL;
    int rc = 0;
    int need_h = dw != sw, need_v = dh != sh;
    if (need_h && (rc = make_coeffs(&ch, sw, dw, filter))) goto done;
    if (need_v && (rc = make_coeffs(&cv, sh, dh, filter))) goto done;
    if (need_h && need_v) {
        tmp = malloc((size_t)dw * sh * c);
        if (!tmp) { rc = VEL_ENOMEM; goto done; }
        pass(tmp, dw, sh, src, sw, c, &ch, 1);
        pass(dst, dw, dh, tmp, dw, c, &cv, 0);
    } else if (need_h) {
        pass(dst, dw, dh, src, sw, c, &ch, 1);
    } else {
        pass(dst, dw, dh, src, sw, c, &cv, 0);
    }
done:
    free_coeffs(&ch);
    free_coeffs(&cv);
    free(tmp);
    return rc;
}

int image_center_crop_adm(uint8_t *out, const uint8_t *src, int w, int h, int c, int size) {
    if (!out || !src || w <= 0 || h <= 0 || c <= 0 || size <= 0) return VEL_EINVAL;
    uint8_t *cur = malloc((size_t)w * h * c);
    if (!cur) return VEL_ENOMEM;
    memcpy(cur, src, (size_t)w * h * c);
    int rc = 0;
    while ((w < h ? w : h) >= 2 * size) {
        int nw = w / 2, nh = h / 2;
        uint8_t *nxt = malloc((size_t)nw * nh * c);
        if (!nxt) { rc = VEL_ENOMEM; goto done; }
        if ((rc = image_resize_pil(nxt, nw, nh, cur, w, h, c, RESAMPLE_BOX))) { free(nxt); goto done; }
        free(cur);
        cur = nxt; w = nw; h = nh;
    }
    double scale = (double)size / (w < h ? w : h);
    // Python's round(): half to even, which nearbyint does in the default mode.
    int nw = (int)nearbyint(w * scale), nh = (int)nearbyint(h * scale);
    if (nw < size || nh < size) { rc = VEL_EINVAL; goto done; }   // cannot happen for size >= 1
    uint8_t *rs = malloc((size_t)nw * nh * c);
    if (!rs) { rc = VEL_ENOMEM; goto done; }
    if ((rc = image_resize_pil(rs, nw, nh, cur, w, h, c, RESAMPLE_BICUBIC))) { free(rs); goto done; }
    int oy = (nh - size) / 2, ox = (nw - size) / 2;
    for (int y = 0; y < size; y++)
        memcpy(out + (size_t)y * size * c, rs + ((size_t)(y + oy) * nw + ox) * c, (size_t)size * c);
    free(rs);
done:
    free(cur);
    return rc;
}

// ---- folder scanning ------------------------------------------------------

typedef struct { char **v; int64_t n, cap; } strvec;

static int sv_push(strvec *s, const char *str) {
    if (s->n == s->cap) {
        int64_t nc = s->cap ? 2 * s->cap : 64;
        char **nv = realloc(s->v, sizeof(char *) * (size_t)nc);
        if (!nv) return VEL_ENOMEM;
        s->v = nv; s->cap = nc;
    }
    if (!(s->v[s->n] = strdup(str))) return VEL_ENOMEM;
    s->n++;
    return 0;
}

static void sv_free(strvec *s) {
    for (int64_t i = 0; i < s->n; i++) free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    char ext[8];
    size_t n = strlen(dot + 1);
    if (n == 0 || n >= sizeof ext) return 0;
    for (size_t i = 0; i <= n; i++) ext[i] = (char)tolower((unsigned char)dot[1 + i]);
    return !strcmp(ext, "png") || !strcmp(ext, "jpg") || !strcmp(ext, "jpeg");
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

// Appends rel paths (relative to root) of images under root/rel, sorted.
static int scan_files(const char *root, const char *rel, strvec *out, int depth) {
    if (depth > 16) return 0;   // symlink loops: give up quietly below 16 levels
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    DIR *d = opendir(path);
    if (!d) return VEL_EIO;
    strvec names = {0};
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && (rc = sv_push(&names, e->d_name))) break;
    closedir(d);
    if (!rc && names.n > 1) qsort(names.v, (size_t)names.n, sizeof(char *), cmp_str);   // qsort(NULL, 0) is UB
    for (int64_t i = 0; !rc && i < names.n; i++) {
        char sub[4096], full[8192];
        snprintf(sub, sizeof sub, "%s/%s", rel, names.v[i]);
        snprintf(full, sizeof full, "%s/%s", root, sub);
        if (is_dir(full)) rc = scan_files(root, sub, out, depth + 1);
        else if (is_image_name(names.v[i])) rc = sv_push(out, sub);
    }
    sv_free(&names);
    return rc;
}

int image_folder_open(const char *root, image_folder **out) {
    *out = NULL;
    if (!root) return VEL_EINVAL;
    DIR *d = opendir(root);
    if (!d) {
        return vel_fail(VEL_EIO, "%s: cannot open folder: %s", root, strerror(errno));
    }
    strvec classes = {0}, files = {0};
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char full[8192];
        snprintf(full, sizeof full, "%s/%s", root, e->d_name);
        if (is_dir(full) && (rc = sv_push(&classes, e->d_name))) break;
    }
    closedir(d);
    if (rc) goto fail;
    if (classes.n == 0) {
        rc = vel_fail(DATA_EEMPTY, "%s: no class subfolders (expected root/CLASS/*.png|jpg)", root);
        goto fail;
    }
    qsort(classes.v, (size_t)classes.n, sizeof(char *), cmp_str);
    image_folder *f = calloc(1, sizeof *f);
    if (!f) { rc = VEL_ENOMEM; goto fail; }
    int32_t *labels = NULL;
    int64_t lcap = 0;
    for (int64_t c = 0; c < classes.n; c++) {
        int64_t before = files.n;
        if ((rc = scan_files(root, classes.v[c], &files, 0))) {
            vel_fail(rc, "%s/%s: cannot scan", root, classes.v[c]);
            break;
        }
        if (files.n > lcap) {
            lcap = files.cap;
            int32_t *nl = realloc(labels, sizeof(int32_t) * (size_t)lcap);
            if (!nl) { rc = VEL_ENOMEM; break; }
            labels = nl;
        }
        for (int64_t i = before; i < files.n; i++) labels[i] = (int32_t)c;
    }
    if (!rc && files.n == 0) {
        rc = vel_fail(DATA_EEMPTY, "%s: class folders hold no .png/.jpg/.jpeg files", root);
    }
    if (rc) { free(labels); free(f); goto fail; }
    f->nclasses = (int)classes.n;
    f->class_names = classes.v;
    f->n = files.n;
    f->paths = malloc(sizeof(char *) * (size_t)files.n);
    if (!f->paths) { free(labels); free(f); rc = VEL_ENOMEM; goto fail; }
    for (int64_t i = 0; i < files.n; i++) {
        char full[8192];
        snprintf(full, sizeof full, "%s/%s", root, files.v[i]);
        f->paths[i] = strdup(full);
        if (!f->paths[i]) {
            f->n = i;
            classes.v = NULL;   // now owned by f
            classes.n = 0;
            image_folder_destroy(&f);
            free(labels);
            rc = VEL_ENOMEM;
            goto fail;
        }
    }
    f->labels = labels;
    sv_free(&files);
    *out = f;
    return 0;
fail:
    sv_free(&classes);
    sv_free(&files);
    return rc;
}

void image_folder_destroy(image_folder **pf) {
    if (!pf || !*pf) return;
    image_folder *f = *pf;
    for (int i = 0; i < f->nclasses && f->class_names; i++) free(f->class_names[i]);
    free(f->class_names);
    for (int64_t i = 0; i < f->n && f->paths; i++) free(f->paths[i]);
    free(f->paths);
    free(f->labels);
    free(f);
    *pf = NULL;
}

int image_folder_load_u8(const image_folder *f, int64_t i, int size, int channels, uint8_t *out,
                         int32_t *label) {
    // out (size, size, channels)
    if (!f || i < 0 || i >= f->n || size <= 0 || !out || (channels != 1 && channels != 3)) return VEL_EINVAL;
    uint8_t *pix = NULL;
    int w, h, c;
    int rc = image_read(f->paths[i], channels, &pix, &w, &h, &c);
    if (rc) return vel_fail(rc, "%s", f->paths[i]);
    rc = image_center_crop_adm(out, pix, w, h, channels, size);
    free(pix);
    if (rc) return vel_fail(rc, "%s: crop failed", f->paths[i]);
    if (label) *label = f->labels[i];
    return 0;
}

int image_folder_load_f32(const image_folder *f, int64_t i, int size, float *out,
                          int32_t *label) {
    // out (3, size, size)
    if (!f || i < 0 || i >= f->n || size <= 0 || !out) return VEL_EINVAL;
    uint8_t *crop = malloc((size_t)size * size * 3);
    if (!crop) return VEL_ENOMEM;
    int rc = image_folder_load_u8(f, i, size, 3, crop, label);
    for (int ch = 0; ch < 3 && !rc; ch++)
        for (int p = 0; p < size * size; p++)
            out[(size_t)ch * size * size + p] = image_u8_to_f32(crop[(size_t)p * 3 + ch]);
    free(crop);
    return rc;
}
