// image_io.c: PNG through libpng's simplified API (png_image_*), JPEG through
// libjpeg's classic API with a longjmp error handler, and the float grid
// writer. See image_io.h for the contract.
//
// Why the simplified PNG API: it handles every bit depth, palette, tRNS and
// interlacing, and reports errors through a message instead of longjmp. We
// always ask it for the file's own layout in 8-bit sRGB and do the channel
// conversion ourselves, because its own gray conversion works in linear light
// (not the plain luma that JPEG's decoder and PIL's convert("L") use).
#include "data/image_io.h"

#include <stdio.h>   // before jpeglib.h, which uses FILE
#include <jpeglib.h>
#include <jerror.h>
#include <png.h>
#include <errno.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/base.h"

static int check_dims(int64_t w, int64_t h) {
    if (w <= 0 || h <= 0 || w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE ||
        w * h > IMAGE_MAX_PIXELS)
        return DATA_EDIMS;
    return 0;
}

// Converts n pixels from sc channels (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) to
// dc channels (1, 3, 4). Gray uses ITU-R 601 luma with integer rounding (as
// PIL's convert("L")); dropping alpha keeps the colour (no compositing).
static void convert_channels(uint8_t *dst, int dc, const uint8_t *src, int sc, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *s = src + i * sc;
        uint8_t r, g, b, a = 255;
        if (sc <= 2) { r = g = b = s[0]; if (sc == 2) a = s[1]; }
        else { r = s[0]; g = s[1]; b = s[2]; if (sc == 4) a = s[3]; }
        uint8_t *d = dst + i * dc;
        if (dc == 1) {
            if (sc <= 2) d[0] = r;
            else d[0] = (uint8_t)((299u * r + 587u * g + 114u * b + 500u) / 1000u);
        } else {
            d[0] = r; d[1] = g; d[2] = b;
            if (dc == 4) d[3] = a;
        }
    }
}

// Replaces *pix (n pixels of *c channels) by its want-channel version.
static int to_channels(uint8_t **pix, int *c, int want, int64_t n) {
    if (*c == want) return 0;
    uint8_t *out = malloc((size_t)n * want);
    if (!out) return VEL_ENOMEM;
    convert_channels(out, want, *pix, *c, n);
    free(*pix);
    *pix = out;
    *c = want;
    return 0;
}

// The first n bytes. A directory (fopen succeeds on one, fread then fails)
// and an empty file get their own codes: "wrong magic number" and
// "unknown error" misled users (issue 15 item 11).
static int read_magic(const char *path, unsigned char *buf, size_t n, size_t *got) {
    struct stat st;
    if (stat(path, &st)) return vel_fail(VEL_EIO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return vel_fail(DATA_ENOTFILE, "%s", path);
    if (st.st_size == 0) return vel_fail(DATA_EEMPTY_FILE, "%s", path);
    FILE *f = fopen(path, "rb");
    if (!f) return vel_fail(VEL_EIO, "%s: %s", path, strerror(errno));
    *got = fread(buf, 1, n, f);
    fclose(f);
    return 0;
}

static int write_tmp_name(char *tmp, size_t cap, const char *path) {
    int k = snprintf(tmp, cap, "%s.tmp.%ld", path, (long)getpid());
    return (k < 0 || (size_t)k >= cap) ? VEL_EINVAL : 0;
}

// ---- PNG ------------------------------------------------------------------

int png_write(const char *path, const uint8_t *pix, int w, int h, int channels) {
    if (!path || !pix || (channels != 1 && channels != 3 && channels != 4) ||
        check_dims(w, h))
        return VEL_EINVAL;
    char tmp[4096];
    if (write_tmp_name(tmp, sizeof tmp, path)) return VEL_EINVAL;
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = channels == 1 ? PNG_FORMAT_GRAY : channels == 3 ? PNG_FORMAT_RGB
                                                                 : PNG_FORMAT_RGBA;
    int ok = png_image_write_to_file(&img, tmp, 0, pix, (png_int_32)w * channels, NULL);
    png_image_free(&img);
    if (!ok) { unlink(tmp); return VEL_EIO; }
    if (rename(tmp, path) != 0) { unlink(tmp); return VEL_EIO; }
    return 0;
}

int png_read(const char *path, int want_channels, uint8_t **pix, int *w, int *h,
             int *channels) {
    if (!path || !pix || !w || !h || !channels ||
        (want_channels != 0 && want_channels != 1 && want_channels != 3))
        return VEL_EINVAL;
    *pix = NULL;
    unsigned char sig[8];
    size_t got;
    int mrc = read_magic(path, sig, 8, &got);
    if (mrc) return mrc;
    if (got < 8 || png_sig_cmp(sig, 0, 8) != 0) return got < 8 && got > 0 &&
        png_sig_cmp(sig, 0, got) == 0 ? DATA_ETRUNC : DATA_EMAGIC;

    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) {
        // The header chunk is missing or cut short.
        int rc = strstr(img.message, "EOF") || strstr(img.message, "end") ||
                 strstr(img.message, "Read") ? DATA_ETRUNC : DATA_EDECODE;
        png_image_free(&img);
        return rc;
    }
    int rc = check_dims(img.width, img.height);
    if (rc) { png_image_free(&img); return rc; }
    // File's own layout, no colour map: gray, GA, RGB or RGBA.
    int color = (img.format & PNG_FORMAT_FLAG_COLOR) != 0;
    int alpha = (img.format & PNG_FORMAT_FLAG_ALPHA) != 0;
    int wide = (img.format & PNG_FORMAT_FLAG_LINEAR) != 0;   // a 16-bit file
    img.format = color ? (alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB)
                       : (alpha ? PNG_FORMAT_GA : PNG_FORMAT_GRAY);
    int c = (color ? 3 : 1) + alpha;
    int64_t n = (int64_t)img.width * img.height;
    uint8_t *buf = malloc((size_t)n * c);
    uint16_t *b16 = NULL;
    if (wide) {
        // Asking for 8-bit output would make libpng treat the 16-bit samples
        // as linear light and gamma-encode them (50*257 -> 121). Read them
        // as 16-bit "linear" instead (no conversion) and scale to 8 bits
        // ourselves; in that mode libpng premultiplies alpha, so undo it.
        img.format |= PNG_FORMAT_FLAG_LINEAR;
        b16 = malloc(sizeof(uint16_t) * (size_t)n * c);
    }
    if (!buf || (wide && !b16)) { free(buf); free(b16); png_image_free(&img); return VEL_ENOMEM; }
    if (!png_image_finish_read(&img, NULL, wide ? (void *)b16 : (void *)buf, 0, NULL)) {
        // libpng says "Read Error" when the file ends inside the data.
        rc = strstr(img.message, "Read Error") || strstr(img.message, "EOF")
                 ? DATA_ETRUNC : DATA_EDECODE;
        free(buf);
        free(b16);
        png_image_free(&img);
        return rc;
    }
    if (wide) {
        for (int64_t i = 0; i < n; i++) {
            const uint16_t *px = b16 + i * c;
            uint32_t a = alpha ? px[c - 1] : 65535u;
            for (int k = 0; k < c; k++) {
                uint32_t v = px[k];
                if (alpha && k < c - 1) v = a ? (v * 65535u + a / 2) / a : 0;
                if (v > 65535u) v = 65535u;
                buf[i * c + k] = (uint8_t)((v * 255u + 32895u) / 65535u);
            }
        }
        free(b16);
    }
    png_image_free(&img);
    int want = want_channels ? want_channels : (c == 2 ? 4 : c);
    rc = to_channels(&buf, &c, want, n);
    if (rc) { free(buf); return rc; }
    *pix = buf;
    *w = (int)img.width;
    *h = (int)img.height;
    *channels = c;
    return 0;
}

// ---- JPEG -----------------------------------------------------------------

typedef struct {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    int warnings;   // corrupt-data warnings (truncation, bad Huffman code)
    int code;       // the libjpeg message code of the first problem
} jpeg_err;

static void jpeg_on_error(j_common_ptr cinfo) {
    jpeg_err *e = (jpeg_err *)cinfo->err;
    e->code = e->mgr.msg_code;
    longjmp(e->jump, 1);
}

// msg_level -1 is a warning: libjpeg keeps decoding corrupt or cut data and
// fills the rest with gray. We count them and reject the image afterwards.
static void jpeg_on_message(j_common_ptr cinfo, int msg_level) {
    jpeg_err *e = (jpeg_err *)cinfo->err;
    if (msg_level < 0) {
        if (!e->warnings) e->code = e->mgr.msg_code;
        e->warnings++;
    }
}

int jpeg_read(const char *path, int want_channels, uint8_t **pix, int *w, int *h,
              int *channels) {
    if (!path || !pix || !w || !h || !channels ||
        (want_channels != 0 && want_channels != 1 && want_channels != 3))
        return VEL_EINVAL;
    *pix = NULL;
    unsigned char sig[3];
    size_t got;
    int mrc = read_magic(path, sig, 3, &got);
    if (mrc) return mrc;
    if (got < 3 || sig[0] != 0xFF || sig[1] != 0xD8 || sig[2] != 0xFF) return DATA_EMAGIC;

    FILE *f = fopen(path, "rb");
    if (!f) return VEL_EIO;
    struct jpeg_decompress_struct cinfo;
    jpeg_err err;
    memset(&err, 0, sizeof err);
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpeg_on_error;
    err.mgr.emit_message = jpeg_on_message;
    uint8_t *volatile buf = NULL;
    volatile int rc = 0;
    if (setjmp(err.jump)) {
        // Fatal libjpeg error: a cut file ends in "premature end" codes.
        rc = (err.code == JERR_INPUT_EOF || err.code == JERR_INPUT_EMPTY) ? DATA_ETRUNC
                                                                          : DATA_EDECODE;
        goto done;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, f);
    jpeg_read_header(&cinfo, TRUE);
    if ((rc = check_dims(cinfo.image_width, cinfo.image_height))) goto done;
    int c;
    if (cinfo.jpeg_color_space == JCS_GRAYSCALE) {
        c = 1;
    } else if (cinfo.jpeg_color_space == JCS_YCbCr || cinfo.jpeg_color_space == JCS_RGB) {
        c = 3;
    } else {
        rc = DATA_EDIMS;   // CMYK/YCCK: not supported
        goto done;
    }
    int want = want_channels ? want_channels : c;
    // Let libjpeg do YCbCr -> gray itself (it takes the Y plane, the same as
    // the 601 luma up to rounding) so we never decode colour we drop.
    cinfo.out_color_space = want == 1 ? JCS_GRAYSCALE : (c == 1 ? JCS_GRAYSCALE : JCS_RGB);
    jpeg_start_decompress(&cinfo);
    int oc = cinfo.output_components;
    int64_t n = (int64_t)cinfo.output_width * cinfo.output_height;
    buf = malloc((size_t)n * oc);
    if (!buf) { rc = VEL_ENOMEM; goto done; }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = buf + (size_t)cinfo.output_scanline * cinfo.output_width * oc;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    if (err.warnings) {
        rc = err.code == JWRN_JPEG_EOF ? DATA_ETRUNC : DATA_EDECODE;
        goto done;
    }
    uint8_t *out = buf;
    int cc = oc;
    if ((rc = to_channels(&out, &cc, want, n))) goto done;
    buf = NULL;
    *pix = out;
    *w = (int)cinfo.output_width;
    *h = (int)cinfo.output_height;
    *channels = cc;
done:
    jpeg_destroy_decompress(&cinfo);
    fclose(f);
    free(buf);
    return rc;
}

int jpeg_write(const char *path, const uint8_t *pix, int w, int h, int channels,
               int quality) {
    if (!path || !pix || (channels != 1 && channels != 3) || check_dims(w, h) ||
        quality < 1 || quality > 100)
        return VEL_EINVAL;
    char tmp[4096];
    if (write_tmp_name(tmp, sizeof tmp, path)) return VEL_EINVAL;
    FILE *f = fopen(tmp, "wb");
    if (!f) return VEL_EIO;
    struct jpeg_compress_struct cinfo;
    jpeg_err err;
    memset(&err, 0, sizeof err);
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpeg_on_error;
    if (setjmp(err.jump)) {
        jpeg_destroy_compress(&cinfo);
        fclose(f);
        unlink(tmp);
        return VEL_EIO;
    }
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = (JDIMENSION)w;
    cinfo.image_height = (JDIMENSION)h;
    cinfo.input_components = channels;
    cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(pix + (size_t)cinfo.next_scanline * w * channels);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) { unlink(tmp); return VEL_EIO; }
    if (rename(tmp, path) != 0) { unlink(tmp); return VEL_EIO; }
    return 0;
}

int image_read(const char *path, int want_channels, uint8_t **pix, int *w, int *h,
               int *channels) {
    unsigned char sig[8];
    size_t got;
    if (!path) return VEL_EINVAL;
    int rc = read_magic(path, sig, 8, &got);
    if (rc) return rc;
    if (got >= 2 && sig[0] == 0xFF && sig[1] == 0xD8)
        return jpeg_read(path, want_channels, pix, w, h, channels);
    return png_read(path, want_channels, pix, w, h, channels);
}

// ---- float images ---------------------------------------------------------

uint8_t image_f32_to_u8(float x) {
    float v = 127.5f * x + 128.0f;
    if (!(v > 0.0f)) return 0;          // also maps NaN to 0
    if (v >= 255.0f) return 255;
    return (uint8_t)v;
}

float image_u8_to_f32(uint8_t v) { return (float)v / 127.5f - 1.0f; }

int image_grid_write_png(const char *path, const float *imgs, int N, int C, int H,
                         int W, int ncols) {
    if (!path || !imgs || N <= 0 || (C != 1 && C != 3) || H <= 0 || W <= 0 || ncols <= 0)
        return VEL_EINVAL;
    const int pad = 2;
    int cols = ncols < N ? ncols : N;
    int rows = (N + ncols - 1) / ncols;
    int64_t gw = (int64_t)cols * (W + pad) + pad, gh = (int64_t)rows * (H + pad) + pad;
    if (check_dims(gw, gh)) return VEL_EINVAL;
    uint8_t *g = calloc((size_t)(gw * gh * C), 1);
    if (!g) return VEL_ENOMEM;
    for (int n = 0; n < N; n++) {
        int64_t y0 = pad + (int64_t)(n / ncols) * (H + pad);
        int64_t x0 = pad + (int64_t)(n % ncols) * (W + pad);
        const float *im = imgs + (int64_t)n * C * H * W;   // (C, H, W)
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    g[((y0 + y) * gw + x0 + x) * C + c] =
                        image_f32_to_u8(im[((int64_t)c * H + y) * W + x]);
    }
    int rc = png_write(path, g, (int)gw, (int)gh, C);
    free(g);
    return rc;
}

// ---- .npz -----------------------------------------------------------------

static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

// One member's .npy bytes before its data: the 10-byte preamble and the v1.0
// header, padded with spaces so that preamble+header is a multiple of 64
// (numpy's own alignment), ending in a newline. Returns the header length.
static int npy_header(uint8_t pre[10], char hdr[512], const image_npz_member *m, int64_t *nbytes) {
    if (!m->name || !m->data || m->ndim < 1 || m->ndim > 8 || strlen(m->name) > 60) return VEL_EINVAL;
    int esize = m->i32 ? 4 : 1;
    int64_t n = esize;
    char dims[256] = "";
    size_t dl = 0;
    for (int i = 0; i < m->ndim; i++) {
        if (m->shape[i] < 0) return VEL_EINVAL;
        n *= m->shape[i];
        dl += (size_t)snprintf(dims + dl, sizeof dims - dl, "%lld%s", (long long)m->shape[i],
                               m->ndim == 1 ? "," : (i + 1 < m->ndim ? ", " : ""));
    }
    int hl = snprintf(hdr, 512, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                      m->i32 ? "<i4" : "|u1", dims);
    int total = 10 + hl + 1;
    int pad = (64 - total % 64) % 64;
    if (hl + pad + 1 >= 512) return VEL_EINVAL;
    memset(hdr + hl, ' ', (size_t)pad);
    hdr[hl + pad] = '\n';
    hl += pad + 1;
    const uint8_t magic[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
    memcpy(pre, magic, 8);
    put16(pre + 8, (uint32_t)hl);
    *nbytes = n;
    return hl;
}

int image_npz_write(const char *path, const image_npz_member *mem, int count) {
    enum { MAXM = 8 };
    if (!path || !mem || count < 1 || count > MAXM) return VEL_EINVAL;
    uint8_t pre[MAXM][10], cd[MAXM][46], ed[22] = {0};
    char hdr[MAXM][512], fname[MAXM][72];
    int hl[MAXM];
    int64_t nb[MAXM];
    uint32_t nl[MAXM], off = 0;
    for (int k = 0; k < count; k++) {
        hl[k] = npy_header(pre[k], hdr[k], &mem[k], &nb[k]);
        if (hl[k] < 0) return hl[k];
        nl[k] = (uint32_t)snprintf(fname[k], sizeof fname[k], "%s.npy", mem[k].name);
        uint64_t msize = 10 + (uint64_t)hl[k] + (uint64_t)nb[k];
        if ((uint64_t)off + msize + 30 + nl[k] + 46 * MAXM + 1000 > 0xFFFFFFFFull) return VEL_ERANGE;
        uLong crc = crc32(0L, Z_NULL, 0);
        crc = crc32(crc, pre[k], 10);
        crc = crc32(crc, (const Bytef *)hdr[k], (uInt)hl[k]);
        const uint8_t *d = mem[k].data;
        for (int64_t o = 0; o < nb[k]; o += (1 << 30)) {
            int64_t len = nb[k] - o < (1 << 30) ? nb[k] - o : (1 << 30);
            crc = crc32(crc, d + o, (uInt)len);
        }
        memset(cd[k], 0, 46);
        put32(cd[k], 0x02014b50); put16(cd[k] + 4, 20); put16(cd[k] + 6, 20); put16(cd[k] + 14, 0x21);
        put32(cd[k] + 16, (uint32_t)crc); put32(cd[k] + 20, (uint32_t)msize); put32(cd[k] + 24, (uint32_t)msize);
        put16(cd[k] + 28, nl[k]); put32(cd[k] + 42, off);   // local header offset
        off += 30 + nl[k] + (uint32_t)msize;
    }
    uint32_t cd_size = 0;
    for (int k = 0; k < count; k++) cd_size += 46 + nl[k];
    put32(ed, 0x06054b50); put16(ed + 8, (uint32_t)count); put16(ed + 10, (uint32_t)count);
    put32(ed + 12, cd_size); put32(ed + 16, off);
    char tmp[4096];
    if (write_tmp_name(tmp, sizeof tmp, path)) return VEL_EINVAL;
    FILE *f = fopen(tmp, "wb");
    if (!f) return VEL_EIO;
    int ok = 1;
    for (int k = 0; k < count && ok; k++) {
        uint8_t lh[30] = {0};   // local header: the central entry's fields 16..28 at 14..26
        put32(lh, 0x04034b50); put16(lh + 4, 20); put16(lh + 12, 0x21);   // date 1980-01-01
        memcpy(lh + 14, cd[k] + 16, 12);
        put16(lh + 26, nl[k]);
        ok = fwrite(lh, 1, 30, f) == 30 && fwrite(fname[k], 1, nl[k], f) == nl[k] &&
             fwrite(pre[k], 1, 10, f) == 10 && fwrite(hdr[k], 1, (size_t)hl[k], f) == (size_t)hl[k] &&
             fwrite(mem[k].data, 1, (size_t)nb[k], f) == (size_t)nb[k];
    }
    for (int k = 0; k < count && ok; k++)
        ok = fwrite(cd[k], 1, 46, f) == 46 && fwrite(fname[k], 1, nl[k], f) == nl[k];
    if (ok) ok = fwrite(ed, 1, 22, f) == 22;
    if (fclose(f) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) { unlink(tmp); return VEL_EIO; }
    return 0;
}

int image_npz_write_u8(const char *path, const uint8_t *data, int ndim, const int64_t *shape) {
    if (!shape || ndim < 1 || ndim > 8) return VEL_EINVAL;
    image_npz_member m = {"arr_0", data, 0, ndim, {0}};
    memcpy(m.shape, shape, sizeof(int64_t) * (size_t)ndim);
    return image_npz_write(path, &m, 1);
}
