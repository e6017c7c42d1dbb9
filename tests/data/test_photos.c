// test_photos.c: the photo bank's tiling on synthetic photos in a temp dir
// (exact layout), its errors (missing dir, bad sizes, corrupt file), and the
// real bank from scripts/photos.sh when it is present (skipped otherwise);
// the train/test split by photo and the seeded random crops + flips.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/image_io.h"
#include "data/photos.h"
#include "tests/util.h"

Test(photos, synthetic_tiling_layout) {
    char *dir = test_tmpdir("photos_syn");
    char p[1024];
    // Two 8x8 photos, base 8 (no resize: ADM crop of an 8x8 to 8 is identity).
    for (int k = 0; k < 2; k++) {
        uint8_t pix[8 * 8 * 3];
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++)
                for (int c = 0; c < 3; c++) pix[(y * 8 + x) * 3 + c] = (uint8_t)(k * 100 + y * 10 + x + c);
        snprintf(p, sizeof p, "%s/%c.png", dir, k ? 'b' : 'a');
        cr_assert_eq(png_write(p, pix, 8, 8, 3), 0);
    }
    snprintf(p, sizeof p, "%s/readme.txt", dir);
    FILE *f = fopen(p, "w"); fputs("x", f); fclose(f);
    photo_bank *pb = NULL;
    cr_assert_eq(photos_open(dir, 8, 4, &pb), 0, "%s", vel_error_detail());
    cr_assert(pb->nphotos == 2 && pb->per_photo == 4 && pb->n == 8 && pb->size == 4);
    cr_assert_str_eq(pb->names[0], "a.png");
    for (int n = 0; n < 8; n++) {
        int k = n / 4, t = n % 4, ty = t / 2, tx = t % 2;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 4; y++)
                for (int x = 0; x < 4; x++) {
                    int v = k * 100 + (ty * 4 + y) * 10 + tx * 4 + x + c;
                    cr_assert_float_eq(pb->imgs[((n * 3 + c) * 4 + y) * 4 + x], v / 127.5f - 1,
                                       1e-6, "n%d c%d y%d x%d", n, c, y, x);
                }
    }
    photos_destroy(&pb);
    cr_assert_null(pb);
    cr_assert_eq(photos_open(dir, 8, 3, &pb), VEL_EINVAL);
    // A corrupt photo: the error names it.
    snprintf(p, sizeof p, "%s/c.jpg", dir);
    f = fopen(p, "wb"); fputs("\xff\xd8\xff\xe0 broken", f); fclose(f);
    int rc = photos_open(dir, 8, 4, &pb);
    cr_assert(rc == DATA_ETRUNC || rc == DATA_EDECODE, "corrupt jpeg gave %d", rc);
    cr_assert(strstr(vel_error_detail(), "c.jpg"), "%s", vel_error_detail());
    snprintf(p, sizeof p, "%s/nope", dir);
    cr_assert_eq(photos_open(p, 8, 4, &pb), DATA_ENOPHOTOS);
    cr_assert(strstr(vel_error_detail(), "scripts/photos.sh"), "%s", vel_error_detail());
    rm_rf(dir);
    free(dir);
}

Test(photos, real_bank) {
    if (access(PHOTOS_DEFAULT_DIR "/skimage_astronaut.png", R_OK) != 0)
        cr_skip_test("photo bank not present: run scripts/photos.sh");
    photo_bank *pb = NULL;
    cr_assert_eq(photos_open(NULL, 128, 32, &pb), 0, "%s", vel_error_detail());
    cr_assert_geq(pb->nphotos, 18);
    cr_assert_eq(pb->n, (int64_t)pb->nphotos * 16);
    // Natural photos: every one has real colour and contrast (not gray, not flat).
    for (int k = 0; k < pb->nphotos; k++) {
        double s = 0, s2 = 0, chroma = 0;
        int64_t cnt = 0;
        for (int t = 0; t < 16; t++) {
            const float *im = pb->imgs + ((int64_t)k * 16 + t) * 3 * 1024;
            for (int i = 0; i < 1024; i++) {
                float r = im[i], g = im[1024 + i], b = im[2048 + i];
                cr_assert(r >= -1 && r <= 1 && g >= -1 && g <= 1 && b >= -1 && b <= 1);
                s += g; s2 += g * g; cnt++;
                chroma += fabsf(r - g) + fabsf(b - g);
            }
        }
        double sd = sqrt(s2 / cnt - (s / cnt) * (s / cnt));
        cr_assert(sd > 0.05, "%s: flat (std %f)", pb->names[k], sd);
        cr_assert(chroma / cnt > 0.01, "%s: looks gray (%f)", pb->names[k], chroma / cnt);
    }
    photos_destroy(&pb);
}

// Split by photo and random crops on synthetic photos: every 4th photo (by
// name) is held out; crops are deterministic in (seed, step), lie inside a
// training photo (each crop equals some window of one, possibly mirrored)
// and both flips occur.
Test(photos, split_and_random_crops) {
    char *dir = test_tmpdir("photos_split");
    char p[1024];
    // Nine 16x16 photos p0..p8 whose pixels encode (photo, y, x).
    for (int k = 0; k < 9; k++) {
        uint8_t pix[16 * 16 * 3];
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 16; x++) {
                pix[(y * 16 + x) * 3 + 0] = (uint8_t)(k * 20);
                pix[(y * 16 + x) * 3 + 1] = (uint8_t)(y * 16);
                pix[(y * 16 + x) * 3 + 2] = (uint8_t)(x * 16);
            }
        snprintf(p, sizeof p, "%s/p%d.png", dir, k);
        cr_assert_eq(png_write(p, pix, 16, 16, 3), 0);
    }
    cr_assert(!photos_is_test(0) && !photos_is_test(2) && photos_is_test(3) && photos_is_test(7) &&
              !photos_is_test(8));
    photo_set *tr = NULL, *te = NULL;
    cr_assert_eq(photos_open_split(dir, 16, PHOTOS_TRAIN, &tr), 0, "%s", vel_error_detail());
    cr_assert_eq(photos_open_split(dir, 16, PHOTOS_TEST, &te), 0, "%s", vel_error_detail());
    cr_assert_eq(tr->nphotos, 7);
    cr_assert_eq(te->nphotos, 2);
    cr_assert_str_eq(te->names[0], "p3.png");
    cr_assert_str_eq(te->names[1], "p7.png");
    cr_assert_str_eq(tr->names[3], "p4.png");
    // A training photo's pixels: red = photo id * 20.
    cr_assert_eq(tr->pix[(size_t)3 * 16 * 16 * 3], 4 * 20);
    enum { B = 64, CR = 4 };
    float a[B * 3 * CR * CR], b[B * 3 * CR * CR];
    photos_random_crops(a, tr, CR, B, 9, 5);
    photos_random_crops(b, tr, CR, B, 9, 5);
    cr_assert(!memcmp(a, b, sizeof a), "same (seed, step) must give the same crops");
    photos_random_crops(b, tr, CR, B, 9, 6);
    cr_assert(memcmp(a, b, sizeof a), "another step gives other crops");
    int flipped = 0, straight = 0, seen[9] = {0};
    for (int s = 0; s < B; s++) {
        const float *o = a + (size_t)s * 3 * CR * CR;
        int k = (int)lroundf((o[0] + 1) * 127.5f) / 20;
        cr_assert(k >= 0 && k < 9 && !photos_is_test(k), "crop %d from photo %d", s, k);
        seen[k] = 1;
        int y0 = (int)lroundf((o[CR * CR] + 1) * 127.5f) / 16;
        int xa = (int)lroundf((o[2 * CR * CR] + 1) * 127.5f) / 16;
        int xb = (int)lroundf((o[2 * CR * CR + CR - 1] + 1) * 127.5f) / 16;
        cr_assert(y0 >= 0 && y0 <= 16 - CR);
        if (xb == xa + CR - 1) straight++;
        else if (xa == xb + CR - 1) flipped++;
        else cr_assert_fail("crop %d is not a window: x %d..%d", s, xa, xb);
        for (int y = 0; y < CR; y++)
            for (int x = 0; x < CR; x++) {
                cr_assert_float_eq(o[(0 * CR + y) * CR + x], k * 20 / 127.5f - 1, 1e-6);
                cr_assert_float_eq(o[(1 * CR + y) * CR + x], (y0 + y) * 16 / 127.5f - 1, 1e-6);
                int sx = xb > xa ? xa + x : xa - x;
                cr_assert_float_eq(o[(2 * CR + y) * CR + x], sx * 16 / 127.5f - 1, 1e-6);
            }
    }
    cr_assert(flipped > 10 && straight > 10, "flipped %d straight %d", flipped, straight);
    int nseen = 0;
    for (int k = 0; k < 9; k++) nseen += seen[k];
    cr_assert_eq(nseen, 7);
    photo_set_destroy(&tr);
    photo_set_destroy(&te);
    cr_assert_null(tr);
    // Errors: bad split, a folder with only held-out-free photos for test.
    cr_assert_eq(photos_open_split(dir, 16, 2, &tr), VEL_EINVAL);
    char *dir2 = test_tmpdir("photos_split_small");
    uint8_t one[4 * 4 * 3] = {0};
    snprintf(p, sizeof p, "%s/a.png", dir2);
    cr_assert_eq(png_write(p, one, 4, 4, 3), 0);
    cr_assert_eq(photos_open_split(dir2, 4, PHOTOS_TEST, &te), DATA_ENOPHOTOS);
    cr_assert(strstr(vel_error_detail(), "test"), "%s", vel_error_detail());
    snprintf(p, sizeof p, "%s/nope", dir);
    cr_assert_eq(photos_open_split(p, 16, PHOTOS_TRAIN, &tr), DATA_ENOPHOTOS);
    rm_rf(dir2);
    free(dir2);
    rm_rf(dir);
    free(dir);
}

Test(photos, real_bank_split) {
    if (access(PHOTOS_DEFAULT_DIR "/skimage_astronaut.png", R_OK) != 0)
        cr_skip_test("photo bank not present: run scripts/photos.sh");
    photo_set *te = NULL;
    cr_assert_eq(photos_open_split(NULL, 128, PHOTOS_TEST, &te), 0, "%s", vel_error_detail());
    cr_assert_geq(te->nphotos, 4);
    cr_assert_str_eq(te->names[0], "opencv_building.jpg");
    photo_set_destroy(&te);
}
