// test_npz.c: the .npz reader (data/npz.h) on archives written by our own
// writer and by numpy (np.savez: zip64 local headers; int64 labels as
// arr_1, ADM's sample.py layout; 3-D gray arrays), and on malformed input:
// every truncation of a valid archive, a flipped data byte (CRC), a
// compressed archive (np.savez_compressed), other dtypes, Fortran order,
// a label count that disagrees, no arr_0, an empty file, a directory.
// Each is an error code with a detail, never a crash (the fuzz harness
// fuzz/fuzz_npz.c goes further).
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "data/image_io.h"
#include "data/npz.h"
#include "tests/util.h"

static char *dir;
static void setup(void) { dir = test_tmpdir("npz"); }
static void teardown(void) { rm_rf(dir); free(dir); }

// Our writer's archive: 5 images 4x3x3 and labels, as DIR/ours.npz (path).
static void write_ours(char *path, size_t cap, uint8_t *u8, int32_t *lab) {
    snprintf(path, cap, "%s/ours.npz", dir);
    for (int i = 0; i < 5 * 4 * 3 * 3; i++) u8[i] = (uint8_t)(i * 7 + 3);
    for (int i = 0; i < 5; i++) lab[i] = 4 - i;
    image_npz_member m[2] = {{"arr_0", u8, 0, 4, {5, 4, 3, 3}}, {"labels", lab, 1, 1, {5}}};
    cr_assert_eq(image_npz_write(path, m, 2), 0);
}

Test(npz, reads_our_writer, .init = setup, .fini = teardown) {
    char p[600];
    uint8_t u8[180];
    int32_t lab[5];
    write_ours(p, sizeof p, u8, lab);
    npz_images im;
    cr_assert_eq(npz_images_read(p, &im), 0, "%s", vel_error_detail());
    cr_assert(im.n == 5 && im.H == 4 && im.W == 3 && im.C == 3);
    cr_assert_eq(memcmp(im.u8, u8, sizeof u8), 0);
    cr_assert(im.labels);
    cr_assert_eq(memcmp(im.labels, lab, sizeof lab), 0);
    npz_images_free(&im);
}

Test(npz, reads_numpy_savez, .init = setup, .fini = teardown) {
    // arr_0 (3, 2, 5) gray as 3-D and int64 labels as arr_1 (ADM's sample.py);
    // a second file with 'labels' int32 and (2, 2, 2, 1).
    cr_assert_eq(test_sh("/usr/bin/python3 -c \"\n"
                         "import numpy as np\n"
                         "a = (np.arange(30) * 5 %% 256).astype(np.uint8).reshape(3, 2, 5)\n"
                         "np.savez('%s/np3.npz', a, np.array([7, 0, 9], dtype=np.int64))\n"
                         "np.savez('%s/np4.npz', arr_0=np.full((2, 2, 2, 1), 200, np.uint8), labels=np.array([1, 2], np.int32))\n"
                         "np.savez_compressed('%s/npc.npz', a, np.array([7, 0, 9]))\n"
                         "np.savez('%s/f32.npz', a.astype(np.float32))\n"
                         "np.savez('%s/fort.npz', np.asfortranarray(np.zeros((2, 3, 4, 1), np.uint8)))\n"
                         "np.savez('%s/rgba.npz', np.zeros((2, 3, 4, 4), np.uint8))\n"
                         "np.savez('%s/nlab.npz', a, np.array([1, 2], np.int64))\n"
                         "np.savez('%s/flab.npz', a, np.array([1., 2., 3.]))\n"
                         "np.savez('%s/big.npz', a, np.array([1, 2, 2**40]))\n"
                         "np.savez('%s/noarr0.npz', images=a)\n"
                         "\"", dir, dir, dir, dir, dir, dir, dir, dir, dir, dir), 0);
    char p[600];
    npz_images im;
    snprintf(p, sizeof p, "%s/np3.npz", dir);
    cr_assert_eq(npz_images_read(p, &im), 0, "%s", vel_error_detail());
    cr_assert(im.n == 3 && im.H == 2 && im.W == 5 && im.C == 1);
    for (int i = 0; i < 30; i++) cr_assert_eq(im.u8[i], (uint8_t)(i * 5 % 256));
    cr_assert(im.labels && im.labels[0] == 7 && im.labels[1] == 0 && im.labels[2] == 9);
    npz_images_free(&im);
    snprintf(p, sizeof p, "%s/np4.npz", dir);
    cr_assert_eq(npz_images_read(p, &im), 0, "%s", vel_error_detail());
    cr_assert(im.n == 2 && im.H == 2 && im.W == 2 && im.C == 1 && im.u8[7] == 200);
    cr_assert(im.labels && im.labels[0] == 1 && im.labels[1] == 2);
    npz_images_free(&im);
    struct { const char *file; int code; const char *detail; } bad[] = {
        {"npc.npz", DATA_ECORRUPT, "np.savez"},   {"f32.npz", DATA_EDIMS, "uint8"},
        {"fort.npz", DATA_EDIMS, "Fortran"},      {"rgba.npz", DATA_EDIMS, "C 1 or 3"},
        {"nlab.npz", DATA_EMISMATCH, "2 labels"}, {"flab.npz", DATA_EDIMS, "int32"},
        {"big.npz", DATA_ELABEL, "arr_1[2]"},     {"noarr0.npz", DATA_EEMPTY, "arr_0"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        snprintf(p, sizeof p, "%s/%s", dir, bad[k].file);
        int rc = npz_images_read(p, &im);
        cr_assert_eq(rc, bad[k].code, "%s: %d (%s)", bad[k].file, rc, vel_error_detail());
        cr_assert(strstr(vel_error_detail(), bad[k].detail), "%s: detail '%s'", bad[k].file, vel_error_detail());
        cr_assert(strstr(vel_error_detail(), bad[k].file), "the path is named: '%s'", vel_error_detail());
        cr_assert(im.u8 == NULL && im.labels == NULL);
    }
}

Test(npz, every_truncation_and_a_flipped_byte_are_errors, .init = setup, .fini = teardown) {
    char p[600];
    uint8_t u8[180];
    int32_t lab[5];
    write_ours(p, sizeof p, u8, lab);
    size_t len;
    uint8_t *b = (uint8_t *)test_read_file(p, &len);
    cr_assert(b, "cannot read %s", p);
    npz_images im;
    for (size_t cut = 0; cut < len; cut++) {
        int rc = npz_images_parse(b, cut, &im);
        cr_assert(rc < 0, "a %zu-byte prefix of %zu was accepted", cut, len);
        cr_assert(vel_strerror(rc) != NULL);
        cr_assert(im.u8 == NULL);
    }
    // a byte of arr_0's data flipped: the CRC catches it. The data sits just
    // before the labels' local header, which starts with "PK\3\4".
    uint8_t *second = NULL;
    for (size_t o = 4; o + 4 < len && !second; o++)
        if (!memcmp(b + o, "PK\3\4", 4)) second = b + o;
    cr_assert(second);
    second[-1] ^= 0x40;
    cr_assert_eq(npz_images_parse(b, len, &im), DATA_ECORRUPT, "%s", vel_error_detail());
    cr_assert(strstr(vel_error_detail(), "CRC"));
    free(b);
}

Test(npz, not_an_archive, .init = setup, .fini = teardown) {
    char p[600];
    npz_images im;
    snprintf(p, sizeof p, "%s/empty.npz", dir);
    FILE *f = fopen(p, "wb");
    fclose(f);
    cr_assert_eq(npz_images_read(p, &im), DATA_EEMPTY_FILE);
    cr_assert_eq(npz_images_read(dir, &im), DATA_ENOTFILE);
    snprintf(p, sizeof p, "%s/missing.npz", dir);
    cr_assert_eq(npz_images_read(p, &im), VEL_EIO);
    cr_assert(strstr(vel_error_detail(), "missing.npz"));
    const char junk[] = "this is not a zip archive at all, just text that is long enough";
    cr_assert_eq(npz_images_parse((const uint8_t *)junk, sizeof junk, &im), DATA_EMAGIC);
}
