// test_image_io.c: PNG/JPEG round trips, channel conversion, the float ->
// uint8 mapping, grid layout, and rejection of malformed files (wrong magic,
// truncated, corrupted, absurd dimensions). Files are made in a temp dir.
#include <criterion/criterion.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data/image_io.h"
#include "tests/util.h"

static uint8_t *pattern(int w, int h, int c, uint32_t seed) {
    uint8_t *p = malloc((size_t)w * h * c);
    uint32_t s = seed;
    for (int i = 0; i < w * h * c; i++) { s = s * 1664525u + 1013904223u; p[i] = (uint8_t)(s >> 24); }
    return p;
}

// A smooth pattern (JPEG is lossy; smooth content keeps the error small).
static uint8_t *smooth(int w, int h, int c) {
    uint8_t *p = malloc((size_t)w * h * c);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) p[(y * w + x) * c + k] = (uint8_t)(40 + 3 * x + 2 * y + 30 * k);
    return p;
}

static long file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

static void truncate_copy(const char *src, const char *dst, long keep) {
    FILE *f = fopen(src, "rb");
    char *b = malloc(keep);
    cr_assert(fread(b, 1, keep, f) == (size_t)keep);
    fclose(f);
    f = fopen(dst, "wb");
    fwrite(b, 1, keep, f);
    fclose(f);
    free(b);
}

static void write_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
}

Test(image_io, png_roundtrip_all_channel_counts) {
    char *dir = test_tmpdir("png_rt");
    char path[512];
    int cs[] = {1, 3, 4};
    for (int i = 0; i < 3; i++) {
        int w = 13, h = 7, c = cs[i];
        uint8_t *p = pattern(w, h, c, 11 + i);
        snprintf(path, sizeof path, "%s/a%d.png", dir, c);
        cr_assert_eq(png_write(path, p, w, h, c), 0);
        uint8_t *q; int rw, rh, rc;
        cr_assert_eq(png_read(path, 0, &q, &rw, &rh, &rc), 0);
        cr_assert(rw == w && rh == h && rc == c, "got %dx%dx%d", rw, rh, rc);
        cr_assert(memcmp(p, q, (size_t)w * h * c) == 0, "PNG round trip not exact (c=%d)", c);
        free(q);
        // image_read picks PNG by magic too.
        cr_assert_eq(image_read(path, 0, &q, &rw, &rh, &rc), 0);
        cr_assert(memcmp(p, q, (size_t)w * h * c) == 0);
        free(q);
        free(p);
    }
    rm_rf(dir);
    free(dir);
}

Test(image_io, png_channel_conversion) {
    char *dir = test_tmpdir("png_conv");
    char path[512];
    snprintf(path, sizeof path, "%s/rgba.png", dir);
    uint8_t px[2 * 4] = {255, 0, 0, 10, 10, 200, 30, 255};
    cr_assert_eq(png_write(path, px, 2, 1, 4), 0);
    uint8_t *q; int w, h, c;
    cr_assert_eq(png_read(path, 3, &q, &w, &h, &c), 0);
    cr_assert_eq(c, 3);
    uint8_t want3[6] = {255, 0, 0, 10, 200, 30};   // alpha dropped, colour kept
    cr_assert(memcmp(q, want3, 6) == 0);
    free(q);
    cr_assert_eq(png_read(path, 1, &q, &w, &h, &c), 0);
    cr_assert_eq(c, 1);
    // 601 luma, rounded: (299*255+500)/1000 = 76; (299*10+587*200+114*30+500)/1000 = 124
    cr_assert(q[0] == 76 && q[1] == 124, "luma %d %d", q[0], q[1]);
    free(q);
    rm_rf(dir);
    free(dir);
}

Test(image_io, jpeg_roundtrip_close) {
    char *dir = test_tmpdir("jpeg_rt");
    char path[512];
    for (int c = 1; c <= 3; c += 2) {
        int w = 32, h = 24;
        uint8_t *p = smooth(w, h, c);
        snprintf(path, sizeof path, "%s/a%d.jpg", dir, c);
        cr_assert_eq(jpeg_write(path, p, w, h, c, 95), 0);
        uint8_t *q; int rw, rh, rc;
        cr_assert_eq(image_read(path, 0, &q, &rw, &rh, &rc), 0);
        cr_assert(rw == w && rh == h && rc == c);
        int maxd = 0;
        for (int i = 0; i < w * h * c; i++) {
            int d = abs((int)p[i] - (int)q[i]);
            if (d > maxd) maxd = d;
        }
        cr_log_info("JPEG q95 round trip c=%d max diff %d", c, maxd);
        // Quality 95 on a smooth ramp: measured max difference 1 (gray) / 2 (RGB).
        cr_assert(maxd <= 4, "JPEG round trip max diff %d (c=%d)", maxd, c);
        free(q);
        if (c == 3) {   // RGB JPEG read as gray and gray JPEG as RGB
            cr_assert_eq(jpeg_read(path, 1, &q, &rw, &rh, &rc), 0);
            cr_assert_eq(rc, 1);
            free(q);
        } else {
            cr_assert_eq(jpeg_read(path, 3, &q, &rw, &rh, &rc), 0);
            cr_assert_eq(rc, 3);
            cr_assert(q[0] == q[1] && q[1] == q[2]);
            free(q);
        }
        free(p);
    }
    rm_rf(dir);
    free(dir);
}

Test(image_io, malformed_files_rejected) {
    char *dir = test_tmpdir("img_bad");
    char good[512], bad[512];
    uint8_t *q = NULL; int w, h, c;
    // Wrong magic.
    snprintf(bad, sizeof bad, "%s/text.png", dir);
    write_bytes(bad, "hello, not an image at all", 26);
    cr_assert_eq(png_read(bad, 0, &q, &w, &h, &c), DATA_EMAGIC);
    cr_assert_eq(jpeg_read(bad, 0, &q, &w, &h, &c), DATA_EMAGIC);
    cr_assert_eq(image_read(bad, 0, &q, &w, &h, &c), DATA_EMAGIC);
    // Empty file and missing file.
    snprintf(bad, sizeof bad, "%s/empty.png", dir);
    write_bytes(bad, "", 0);
    cr_assert_eq(png_read(bad, 0, &q, &w, &h, &c), DATA_EEMPTY_FILE);   // not "wrong magic" (issue 15)
    // A directory named like an image (issue 15: it was "wrong magic number").
    snprintf(bad, sizeof bad, "%s/folder.png", dir);
    cr_assert_eq(mkdir(bad, 0755), 0);
    cr_assert_eq(image_read(bad, 0, &q, &w, &h, &c), DATA_ENOTFILE);
    cr_assert(strstr(vel_errmsg(DATA_ENOTFILE), "not a regular file") && strstr(vel_errmsg(DATA_ENOTFILE), "folder.png"));
    snprintf(bad, sizeof bad, "%s/missing.png", dir);
    cr_assert_eq(png_read(bad, 0, &q, &w, &h, &c), VEL_EIO);
    cr_assert(strstr(vel_strerror(DATA_ETRUNC), "truncated"));

    // Truncated PNG: every cut point must fail cleanly (never crash or succeed).
    uint8_t *p = pattern(40, 30, 3, 5);
    snprintf(good, sizeof good, "%s/good.png", dir);
    cr_assert_eq(png_write(good, p, 40, 30, 3), 0);
    long n = file_size(good);
    snprintf(bad, sizeof bad, "%s/cut.png", dir);
    long cuts[] = {4, 8, 20, 33, n / 2, n - 13};
    for (int i = 0; i < 6; i++) {
        truncate_copy(good, bad, cuts[i]);
        int rc = png_read(bad, 0, &q, &w, &h, &c);
        cr_assert(rc == DATA_ETRUNC || rc == DATA_EDECODE,
                  "PNG cut at %ld/%ld gave %d (%s)", cuts[i], n, rc, vel_strerror(rc));
        cr_assert_null(q);
    }
    truncate_copy(good, bad, n / 2);
    cr_assert_eq(png_read(bad, 0, &q, &w, &h, &c), DATA_ETRUNC);
    // Corrupted PNG data (flip bytes inside IDAT): the CRC check catches it.
    FILE *f = fopen(good, "rb");
    uint8_t *b = malloc(n);
    cr_assert(fread(b, 1, n, f) == (size_t)n);
    fclose(f);
    for (long i = 60; i < 70; i++) b[i] ^= 0x5a;
    snprintf(bad, sizeof bad, "%s/flip.png", dir);
    write_bytes(bad, b, n);
    cr_assert_eq(png_read(bad, 0, &q, &w, &h, &c), DATA_EDECODE);
    free(b);

    // Truncated JPEG (libjpeg only warns; we must reject).
    snprintf(good, sizeof good, "%s/good.jpg", dir);
    uint8_t *s = smooth(64, 64, 3);
    cr_assert_eq(jpeg_write(good, s, 64, 64, 3, 90), 0);
    n = file_size(good);
    snprintf(bad, sizeof bad, "%s/cut.jpg", dir);
    truncate_copy(good, bad, n / 2);
    cr_assert_eq(jpeg_read(bad, 0, &q, &w, &h, &c), DATA_ETRUNC);
    cr_assert_null(q);
    truncate_copy(good, bad, 10);   // inside the header
    int rc = jpeg_read(bad, 0, &q, &w, &h, &c);
    cr_assert(rc == DATA_ETRUNC || rc == DATA_EDECODE, "JPEG header cut gave %d", rc);
    // Corrupt JPEG header marker.
    f = fopen(good, "rb");
    b = malloc(n);
    cr_assert(fread(b, 1, n, f) == (size_t)n);
    fclose(f);
    for (long i = 3; i < 40; i++) b[i] = 0xFF;
    snprintf(bad, sizeof bad, "%s/hdr.jpg", dir);
    write_bytes(bad, b, n);
    rc = jpeg_read(bad, 0, &q, &w, &h, &c);
    cr_assert(rc == DATA_EDECODE || rc == DATA_ETRUNC, "JPEG bad header gave %d", rc);
    free(b);
    free(s);
    free(p);
    rm_rf(dir);
    free(dir);
}

Test(image_io, png_absurd_dimensions_rejected) {
    // A valid IHDR (correct CRC) claiming 100000 x 100000, built by hand.
    char *dir = test_tmpdir("png_dims");
    char path[512];
    snprintf(path, sizeof path, "%s/big.png", dir);
    uint8_t ihdr[] = {0x89, 'P', 'N', 'G', 13, 10, 26, 10,
                      0, 0, 0, 13, 'I', 'H', 'D', 'R',
                      0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0,   // 100000 x 100000
                      8, 2, 0, 0, 0,
                      0, 0, 0, 0};
    // CRC over "IHDR" + the 13 data bytes.
    unsigned long crc = crc32(0, ihdr + 12, 17);
    ihdr[29] = (uint8_t)(crc >> 24); ihdr[30] = (uint8_t)(crc >> 16);
    ihdr[31] = (uint8_t)(crc >> 8); ihdr[32] = (uint8_t)crc;
    write_bytes(path, ihdr, sizeof ihdr);
    uint8_t *q = NULL; int w, h, c;
    int rc = png_read(path, 0, &q, &w, &h, &c);
    // libpng's own user limit (1e6 per side) may reject it first: either is fine,
    // what matters is that nothing is allocated for 1e10 pixels.
    cr_assert(rc == DATA_EDIMS || rc == DATA_EDECODE || rc == DATA_ETRUNC,
              "huge PNG gave %d", rc);
    cr_assert_null(q);
    rm_rf(dir);
    free(dir);
}

Test(image_io, f32_u8_mapping) {
    // SPEC 3: clamp(127.5*x + 128, 0, 255), truncated.
    cr_assert_eq(image_f32_to_u8(-1.0f), 0);
    cr_assert_eq(image_f32_to_u8(1.0f), 255);
    cr_assert_eq(image_f32_to_u8(0.0f), 128);
    cr_assert_eq(image_f32_to_u8(-5.0f), 0);
    cr_assert_eq(image_f32_to_u8(5.0f), 255);
    cr_assert_eq(image_f32_to_u8(0.5f), 191);   // 191.75
    // u8 -> f32 -> u8 is the identity for every byte value.
    for (int v = 0; v < 256; v++)
        cr_assert_eq(image_f32_to_u8(image_u8_to_f32((uint8_t)v)), v, "v=%d", v);
}

Test(image_io, grid_layout) {
    char *dir = test_tmpdir("grid");
    char path[512];
    snprintf(path, sizeof path, "%s/grid.png", dir);
    int N = 5, C = 3, H = 4, W = 3, ncols = 2;
    float *imgs = malloc(sizeof(float) * N * C * H * W);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < H * W; i++)
                imgs[(n * C + c) * H * W + i] = -1.0f + 0.1f * n + 0.3f * c + 0.01f * i;
    cr_assert_eq(image_grid_write_png(path, imgs, N, C, H, W, ncols), 0);
    uint8_t *q; int w, h, c;
    cr_assert_eq(png_read(path, 0, &q, &w, &h, &c), 0);
    cr_assert(w == 2 * (W + 2) + 2 && h == 3 * (H + 2) + 2 && c == 3, "grid %dx%d", w, h);
    for (int n = 0; n < N; n++) {
        int y0 = 2 + (n / ncols) * (H + 2), x0 = 2 + (n % ncols) * (W + 2);
        for (int k = 0; k < C; k++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    cr_assert_eq(q[((y0 + y) * w + x0 + x) * 3 + k],
                                 image_f32_to_u8(imgs[((n * C + k) * H + y) * W + x]));
    }
    cr_assert_eq(q[0], 0);   // padding is black
    // Bad arguments.
    cr_assert_eq(image_grid_write_png(path, imgs, N, 2, H, W, ncols), VEL_EINVAL);
    cr_assert_eq(image_grid_write_png(path, imgs, 0, 3, H, W, ncols), VEL_EINVAL);
    free(q);
    free(imgs);
    rm_rf(dir);
    free(dir);
}

#include "data/augment.h"

Test(image_io, hflip_mirrors_rows_and_is_an_involution) {
    enum { B = 2, C = 3, H = 4, W = 5, N = B * C * H * W };
    float a[N], b[N], c[N];
    fill_uniform(a, N, 8, -1, 1);
    image_hflip(b, a, B, C, H, W);
    for (int r = 0; r < B * C * H; r++)
        for (int x = 0; x < W; x++) cr_assert_eq(b[r * W + x], a[r * W + W - 1 - x]);
    image_hflip(c, b, B, C, H, W);
    cr_assert(memcmp(a, c, sizeof a) == 0);
}

// image_shift: out[y][x] = inp[y - dy][x - dx] inside, fill outside: the
// moved pixel lands where expected, exactly (H-|dy|)(W-|dx|) pixels per
// channel come from the input, and shifting back restores them.
Test(image_io, shift) {
    enum { C = 2, H = 5, W = 7, N = C * H * W };
    float a[N], b[N], c[N];
    for (int i = 0; i < N; i++) a[i] = (float)i;
    int cases[][2] = {{0, 0}, {1, -2}, {-2, 3}, {2, 2}, {-1, 0}, {5, 0}};
    for (int k = 0; k < 6; k++) {
        int dy = cases[k][0], dx = cases[k][1];
        image_shift(b, a, C, H, W, dy, dx, -1.0f);
        int kept = 0;
        for (int ch = 0; ch < C; ch++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    float v = b[(ch * H + y) * W + x];
                    int inside = y - dy >= 0 && y - dy < H && x - dx >= 0 && x - dx < W;
                    if (v >= 0) {
                        kept++;
                        cr_assert(inside && v == a[(ch * H + y - dy) * W + x - dx], "shift (%d, %d) at %d %d %d", dy, dx, ch, y, x);
                    } else {
                        cr_assert(!inside && v == -1.0f);
                    }
                }
        int hy = H - abs(dy), wx = W - abs(dx);
        cr_assert_eq(kept, C * (hy > 0 ? hy : 0) * (wx > 0 ? wx : 0));
        image_shift(c, b, C, H, W, -dy, -dx, -1.0f);
        for (int i = 0; i < N; i++) cr_assert(c[i] == -1.0f || c[i] == a[i]);
    }
}

// The .npz layout: one stored ZIP member arr_0.npy whose CRC and npy header
// are right (numpy itself read this file back during development:
// np.load(path)["arr_0"] gave uint8 (2, 3, 4, 1) with the same bytes).
Test(image_io, npz_layout) {
    char *dir = test_tmpdir("npz");
    char path[512];
    snprintf(path, sizeof path, "%s/s.npz", dir);
    uint8_t d[24];
    for (int i = 0; i < 24; i++) d[i] = (uint8_t)(i * 10);
    int64_t shape[4] = {2, 3, 4, 1};
    cr_assert_eq(image_npz_write_u8(path, d, 4, shape), 0);
    FILE *f = fopen(path, "rb");
    uint8_t b[1024];
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    cr_assert(b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4);
    cr_assert(memcmp(b + 30, "arr_0.npy", 9) == 0);
    const uint8_t *m = b + 39;
    cr_assert(memcmp(m, "\x93NUMPY\x01\x00", 8) == 0);
    int hl = m[8] | (m[9] << 8);
    cr_assert_eq((10 + hl) % 64, 0);
    cr_assert(strstr((const char *)m + 10, "'shape': (2, 3, 4, 1)"));
    cr_assert(memcmp(m + 10 + hl, d, 24) == 0);
    uint32_t size = (uint32_t)(10 + hl + 24);
    uint32_t crc_file = b[14] | (b[15] << 8) | (b[16] << 16) | ((uint32_t)b[17] << 24);
    cr_assert_eq(crc_file, (uint32_t)crc32(0, m, size));
    cr_assert_eq(n, 30 + 9 + size + 46 + 9 + 22);
    cr_assert(b[n - 22] == 'P' && b[n - 21] == 'K' && b[n - 20] == 5 && b[n - 19] == 6);
    cr_assert_eq(image_npz_write_u8(path, d, 0, shape), VEL_EINVAL);
    rm_rf(dir);
    free(dir);
}

// Several members (images and int32 labels), read back by numpy and checked
// by Python's zipfile (every member's CRC); bad member lists refused.
Test(image_io, npz_members_read_by_numpy) {
    char *dir = test_tmpdir("npz2");
    char path[512];
    snprintf(path, sizeof path, "%s/s.npz", dir);
    uint8_t d[2 * 3 * 2 * 3];
    for (int i = 0; i < (int)sizeof d; i++) d[i] = (uint8_t)(i * 7);
    int32_t lab[2] = {-5, 70000};
    image_npz_member m[2] = {{"arr_0", d, 0, 4, {2, 3, 2, 3}}, {"labels", lab, 1, 1, {2}}};
    cr_assert_eq(image_npz_write(path, m, 2), 0);
    cr_assert_eq(test_sh("/usr/bin/python3 -c \"\n"
                         "import zipfile, numpy as np\n"
                         "assert zipfile.ZipFile('%s').testzip() is None\n"
                         "z = np.load('%s')\n"
                         "assert sorted(z.files) == ['arr_0', 'labels'], z.files\n"
                         "a, l = z['arr_0'], z['labels']\n"
                         "assert a.dtype == np.uint8 and a.shape == (2, 3, 2, 3)\n"
                         "assert (a.ravel() == (np.arange(36) * 7) %% 256).all()\n"
                         "assert l.dtype == np.int32 and l.tolist() == [-5, 70000]\n"
                         "\"", path, path), 0);
    cr_assert_eq(image_npz_write(path, m, 0), VEL_EINVAL);
    cr_assert_eq(image_npz_write(path, m, 9), VEL_EINVAL);
    m[1].ndim = 0;
    cr_assert_eq(image_npz_write(path, m, 2), VEL_EINVAL);
    rm_rf(dir);
    free(dir);
}

// Seeded mutation sweep: random byte flips and cuts of a valid PNG and JPEG
// must each give either a clean error code or a well-formed image, never a
// crash (run under ASan to also catch overreads).
Test(image_io, mutated_files_never_crash) {
    char *dir = test_tmpdir("img_mut");
    char good[2][512], bad[512];
    uint8_t *s = smooth(24, 16, 3);
    snprintf(good[0], sizeof good[0], "%s/g.png", dir);
    snprintf(good[1], sizeof good[1], "%s/g.jpg", dir);
    cr_assert_eq(png_write(good[0], s, 24, 16, 3), 0);
    cr_assert_eq(jpeg_write(good[1], s, 24, 16, 3, 80), 0);
    snprintf(bad, sizeof bad, "%s/m.bin", dir);
    uint32_t st = 12345;
    int errors = 0, oks = 0;
    for (int k = 0; k < 2; k++) {
        long n = file_size(good[k]);
        uint8_t *b = malloc(n), *m = malloc(n);
        FILE *f = fopen(good[k], "rb");
        cr_assert(fread(b, 1, n, f) == (size_t)n);
        fclose(f);
        for (int it = 0; it < 150; it++) {
            memcpy(m, b, n);
            long len = n;
            int flips = 1 + it % 4;
            for (int j = 0; j < flips; j++) {
                st = st * 1664525u + 1013904223u;
                long pos = (long)(st >> 8) % n;
                st = st * 1664525u + 1013904223u;
                m[pos] ^= (uint8_t)(1 + (st >> 24) % 255);
            }
            if (it % 5 == 4) { st = st * 1664525u + 1013904223u; len = 1 + (long)(st >> 8) % n; }
            write_bytes(bad, m, len);
            uint8_t *q = NULL; int w, h, c;
            int rc = image_read(bad, 0, &q, &w, &h, &c);
            if (rc == 0) {
                cr_assert(q && w > 0 && h > 0 && (c == 1 || c == 3 || c == 4));
                free(q);
                oks++;
            } else {
                cr_assert(rc < 0 && !q);
                errors++;
            }
        }
        free(b); free(m);
    }
    cr_log_info("mutations: %d decoded, %d rejected", oks, errors);
    cr_assert_gt(errors, 50);
    free(s);
    rm_rf(dir);
    free(dir);
}

// Committed fixtures (tests/fixtures/images/README.md): palette, 16-bit,
// gray+alpha PNG; progressive, gray and CMYK JPEG.
static int grad(int x, int y, int c) { return c == 0 ? 50 * x : c == 1 ? 40 * y : 20 * (x + y); }

Test(image_io, fixtures_decode) {
    uint8_t *q; int w, h, c;
    cr_assert_eq(png_read("tests/fixtures/images/palette.png", 0, &q, &w, &h, &c), 0);
    cr_assert(w == 5 && h == 6 && c == 3, "palette %dx%dx%d", w, h, c);
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 5; x++)
            for (int k = 0; k < 3; k++) cr_assert_eq(q[(y * 5 + x) * 3 + k], grad(x, y, k));
    free(q);
    cr_assert_eq(png_read("tests/fixtures/images/gray16.png", 0, &q, &w, &h, &c), 0);
    cr_assert(w == 5 && h == 6 && c == 1);
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 5; x++) cr_assert_eq(q[y * 5 + x], grad(x, y, 0), "16-bit reduce at %d,%d", x, y);
    free(q);
    cr_assert_eq(png_read("tests/fixtures/images/gray_alpha.png", 0, &q, &w, &h, &c), 0);
    cr_assert_eq(c, 4);   // gray+alpha comes back as RGBA
    cr_assert(q[0] == q[1] && q[1] == q[2] && q[3] == 128);
    free(q);
    cr_assert_eq(jpeg_read("tests/fixtures/images/progressive.jpg", 0, &q, &w, &h, &c), 0);
    cr_assert(w == 5 && h == 6 && c == 3);
    int maxd = 0;
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 5; x++)
            for (int k = 0; k < 3; k++) {
                int d = abs(q[(y * 5 + x) * 3 + k] - grad(x, y, k));
                if (d > maxd) maxd = d;
            }
    cr_log_info("progressive JPEG max diff %d", maxd);
    // Quality 95 with 4:2:0 chroma subsampling on a steep 5x6 gradient:
    // measured max difference 28, allowed 40.
    cr_assert(maxd <= 40, "progressive JPEG max diff %d", maxd);
    free(q);
    cr_assert_eq(jpeg_read("tests/fixtures/images/gray.jpg", 0, &q, &w, &h, &c), 0);
    cr_assert(w == 5 && h == 6 && c == 1);
    free(q);
    q = NULL;
    cr_assert_eq(jpeg_read("tests/fixtures/images/cmyk.jpg", 0, &q, &w, &h, &c), DATA_EDIMS);
    cr_assert_null(q);
}

// A valid JPEG whose SOF0 header is patched to claim 60000 x 60000 is
// refused as DATA_EDIMS before any pixel buffer is allocated; zero-byte
// files are refused by every entry point.
Test(image_io, jpeg_absurd_dimensions_and_zero_bytes) {
    char *dir = test_tmpdir("jpeg_dims");
    char good[512], bad[512];
    snprintf(good, sizeof good, "%s/good.jpg", dir);
    uint8_t *s = smooth(16, 16, 3);
    cr_assert_eq(jpeg_write(good, s, 16, 16, 3, 90), 0);
    long n = file_size(good);
    FILE *f = fopen(good, "rb");
    uint8_t *b = malloc(n);
    cr_assert(fread(b, 1, n, f) == (size_t)n);
    fclose(f);
    long sof = -1;
    for (long i = 2; i + 9 < n; i++)
        if (b[i] == 0xFF && b[i + 1] == 0xC0) { sof = i; break; }
    cr_assert(sof > 0, "no SOF0 marker in a baseline JPEG");
    // FF C0, length (2), precision (1), height (2), width (2).
    cr_assert_eq((b[sof + 5] << 8) | b[sof + 6], 16);
    b[sof + 5] = 0xEA; b[sof + 6] = 0x60;   // 60000
    b[sof + 7] = 0xEA; b[sof + 8] = 0x60;
    snprintf(bad, sizeof bad, "%s/huge.jpg", dir);
    write_bytes(bad, b, n);
    uint8_t *q = NULL; int w, h, c;
    cr_assert_eq(jpeg_read(bad, 0, &q, &w, &h, &c), DATA_EDIMS);
    cr_assert_null(q);
    cr_assert_eq(image_read(bad, 3, &q, &w, &h, &c), DATA_EDIMS);
    cr_assert_null(q);
    snprintf(bad, sizeof bad, "%s/empty.jpg", dir);
    write_bytes(bad, "", 0);
    cr_assert_eq(jpeg_read(bad, 0, &q, &w, &h, &c), DATA_EEMPTY_FILE);
    cr_assert_eq(image_read(bad, 0, &q, &w, &h, &c), DATA_EEMPTY_FILE);
    cr_assert_eq(image_read(bad, 1, &q, &w, &h, &c), DATA_EEMPTY_FILE);
    cr_assert_null(q);
    free(b);
    free(s);
    rm_rf(dir);
    free(dir);
}
