// test_photo_tiles.c: data/photo_tiles.h on the photo bank (skips when
// scripts/photos.sh has not fetched it): the test and train splits
// partition the bank's tiles in order, labels are the photo indices of their
// split, the tiles are the bank's own pixels, and the gray conversion is
// ITU-R 601 luma; a missing folder is DATA_ENOPHOTOS with an empty result.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/photo_tiles.h"

Test(photo_tiles, splits_partition_the_bank) {
    if (access(PHOTOS_DEFAULT_DIR, R_OK)) cr_skip_test("no photo bank (scripts/photos.sh)");
    photo_bank *pb = NULL;
    cr_assert_eq(photos_open(NULL, 64, 32, &pb), 0, "%s", vel_error_detail());
    photo_tiles all, te, tr;
    cr_assert_eq(photo_tiles_load(NULL, 64, 32, PHOTOS_ALL, &all), 0, "%s", vel_error_detail());
    cr_assert_eq(photo_tiles_load(NULL, 64, 32, PHOTOS_TEST, &te), 0, "%s", vel_error_detail());
    cr_assert_eq(photo_tiles_load(NULL, 64, 32, PHOTOS_TRAIN, &tr), 0, "%s", vel_error_detail());
    cr_assert_eq(all.n, pb->n);
    cr_assert_eq(te.n + tr.n, pb->n);
    cr_assert_eq(all.nphotos, pb->nphotos);
    cr_assert_str_eq(all.names[0], pb->names[0]);
    const size_t per = 3 * 32 * 32;
    int64_t it = 0, ir = 0;
    for (int64_t i = 0; i < pb->n; i++) {
        int p = (int)(i / pb->per_photo);
        cr_assert_eq(all.labels[i], p);
        photo_tiles *t = photos_is_test(p) ? &te : &tr;
        int64_t k = photos_is_test(p) ? it++ : ir++;
        cr_assert_eq(t->labels[k], p);
        cr_assert_eq(memcmp(t->imgs + k * per, pb->imgs + i * per, sizeof(float) * per), 0, "tile %lld", (long long)i);
    }
    float *g = malloc(sizeof(float) * (size_t)all.n * 1024);
    photo_tiles_gray(&all, g);
    for (int64_t i = 0; i < all.n; i += 7)
        for (int k = 0; k < 1024; k += 97) {
            const float *im = all.imgs + i * per;
            float want = 0.299f * im[k] + 0.587f * im[1024 + k] + 0.114f * im[2048 + k];
            cr_assert_eq(g[i * 1024 + k], want);
        }
    free(g);
    photo_tiles_free(&all);
    photo_tiles_free(&te);
    photo_tiles_free(&tr);
    photo_tiles_free(&tr);
    photos_destroy(&pb);
}

Test(photo_tiles, missing_folder_and_bad_split) {
    photo_tiles t;
    cr_assert_eq(photo_tiles_load("/nonexistent/photos", 64, 32, PHOTOS_TEST, &t), DATA_ENOPHOTOS);
    cr_assert_eq(t.n, 0);
    cr_assert_null(t.imgs);
    cr_assert_neq(photo_tiles_load(NULL, 64, 32, 7, &t), 0);
    cr_assert_null(t.imgs);
}
