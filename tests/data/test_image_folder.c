// test_image_folder.c: PIL-compatible resizes and ADM's centre crop against
// Pillow itself (tests/ref/gen_image_folder.py), and the class-folder
// scanner on temp dirs (order, labels, hidden files, empty and missing
// folders, corrupt images named in the error).
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/image_folder.h"
#include "data/image_io.h"
#include "tests/util.h"

static void skip_without_pil(void) {
    if (access("build/ref/image_folder/NO_PIL", F_OK) == 0)
        cr_skip_test("python3-pil not installed: no Pillow reference (apt-get install python3-pil)");
}

static uint8_t *ref_u8(const char *name, int64_t *n) {
    float *f = ref_f32("image_folder", name, n);
    uint8_t *u = malloc((size_t)*n);
    for (int64_t i = 0; i < *n; i++) u[i] = (uint8_t)f[i];
    free(f);
    return u;
}

// Exact match expected; report the worst pixel if not.
static void expect_bytes(const char *what, const uint8_t *x, const uint8_t *r, int64_t n) {
    int64_t bad = 0, worst = -1;
    int maxd = 0;
    for (int64_t i = 0; i < n; i++) {
        int d = abs((int)x[i] - (int)r[i]);
        if (d) bad++;
        if (d > maxd) { maxd = d; worst = i; }
    }
    cr_assert(bad == 0, "%s: %lld of %lld bytes differ from Pillow, max diff %d at %lld",
              what, (long long)bad, (long long)n, maxd, (long long)worst);
}

Test(image_folder, resize_matches_pillow) {
    skip_without_pil();
    int64_t n, ns;
    uint8_t *in = ref_u8("rs_in", &n);
    float *sizes = ref_f32("image_folder", "rs_sizes", &ns);
    for (int j = 0; j < ns / 2; j++) {
        int dw = (int)sizes[2 * j], dh = (int)sizes[2 * j + 1];
        const char *names[2] = {"box", "bicubic"};
        for (int f = 0; f < 2; f++) {
            char key[64], what[96];
            snprintf(key, sizeof key, "rs%d_%s", j, names[f]);
            int64_t nr;
            uint8_t *ref = ref_u8(key, &nr);
            cr_assert_eq(nr, (int64_t)dw * dh * 3);
            uint8_t *out = malloc((size_t)nr);
            cr_assert_eq(image_resize_pil(out, dw, dh, in, 45, 38, 3, (resample_filter)f), 0);
            snprintf(what, sizeof what, "45x38 -> %dx%d %s", dw, dh, names[f]);
            expect_bytes(what, out, ref, nr);
            free(out);
            free(ref);
        }
    }
    free(in);
    free(sizes);
}

Test(image_folder, center_crop_matches_guided_diffusion) {
    skip_without_pil();
    for (int i = 0; i < 5; i++) {
        char key[64], what[96];
        int64_t n, na, nr;
        snprintf(key, sizeof key, "crop%d_in", i);
        uint8_t *in = ref_u8(key, &n);
        snprintf(key, sizeof key, "crop%d_args", i);
        float *args = ref_f32("image_folder", key, &na);
        snprintf(key, sizeof key, "crop%d_out", i);
        uint8_t *ref = ref_u8(key, &nr);
        int w = (int)args[0], h = (int)args[1], size = (int)args[2];
        cr_assert_eq(nr, (int64_t)size * size * 3);
        uint8_t *out = malloc((size_t)nr);
        cr_assert_eq(image_center_crop_adm(out, in, w, h, 3, size), 0);
        snprintf(what, sizeof what, "center_crop_arr %dx%d -> %d", w, h, size);
        expect_bytes(what, out, ref, nr);
        free(out); free(in); free(args); free(ref);
    }
}

Test(image_folder, bad_resize_arguments) {
    uint8_t a[12] = {0}, b[12];
    cr_assert_eq(image_resize_pil(b, 0, 2, a, 2, 2, 3, RESAMPLE_BOX), VEL_EINVAL);
    cr_assert_eq(image_center_crop_adm(b, a, 2, 2, 3, 0), VEL_EINVAL);
}

static void mkdirs(const char *root, const char *rel) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    for (char *s = p + strlen(root) + 1; *s; s++)
        if (*s == '/') { *s = 0; mkdir(p, 0755); *s = '/'; }
    mkdir(p, 0755);
}

static void put_png(const char *root, const char *rel, int w, int h, uint8_t v) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    uint8_t *pix = malloc((size_t)w * h * 3);
    memset(pix, v, (size_t)w * h * 3);
    cr_assert_eq(png_write(p, pix, w, h, 3), 0);
    free(pix);
}

Test(image_folder, scan_order_labels_and_load) {
    char *root = test_tmpdir("imgfold");
    mkdirs(root, "zebra");
    mkdirs(root, "apple/sub");
    mkdirs(root, ".hidden");
    put_png(root, "zebra/b.png", 40, 30, 200);
    put_png(root, "zebra/a.PNG", 20, 20, 10);
    put_png(root, "apple/sub/x.png", 16, 16, 0);
    put_png(root, "apple/m.png", 16, 16, 255);
    put_png(root, ".hidden/h.png", 16, 16, 1);
    char p[1024];
    snprintf(p, sizeof p, "%s/apple/notes.txt", root);
    FILE *f = fopen(p, "w"); fputs("not an image", f); fclose(f);
    snprintf(p, sizeof p, "%s/zebra/c.jpg", root);
    uint8_t g[64 * 48 * 3];
    memset(g, 128, sizeof g);
    cr_assert_eq(jpeg_write(p, g, 64, 48, 3, 90), 0);

    image_folder *fo = NULL;
    cr_assert_eq(image_folder_open(root, &fo), 0, "%s", vel_error_detail());
    cr_assert_eq(fo->nclasses, 2);
    cr_assert_str_eq(fo->class_names[0], "apple");
    cr_assert_str_eq(fo->class_names[1], "zebra");
    cr_assert_eq(fo->n, 5);
    const char *want[5] = {"apple/m.png", "apple/sub/x.png", "zebra/a.PNG", "zebra/b.png",
                           "zebra/c.jpg"};
    const int32_t wl[5] = {0, 0, 1, 1, 1};
    for (int i = 0; i < 5; i++) {
        const char *tail = fo->paths[i] + strlen(root) + 1;
        cr_assert_str_eq(tail, want[i]);
        cr_assert_eq(fo->labels[i], wl[i]);
    }
    float out[3 * 8 * 8];
    int32_t lab = -1;
    cr_assert_eq(image_folder_load_f32(fo, 3, 8, out, &lab), 0, "%s", vel_error_detail());
    cr_assert_eq(lab, 1);
    for (int i = 0; i < 3 * 64; i++) cr_assert_float_eq(out[i], 200 / 127.5f - 1, 1e-6);
    cr_assert_eq(image_folder_load_f32(fo, 4, 8, out, &lab), 0, "%s", vel_error_detail());
    cr_assert_eq(image_folder_load_f32(fo, 5, 8, out, &lab), VEL_EINVAL);

    // A corrupt file: the error names it.
    snprintf(p, sizeof p, "%s/apple/m.png", root);
    f = fopen(p, "wb"); fputs("\x89PNG\r\n\x1a\n garbage", f); fclose(f);
    int rc = image_folder_load_f32(fo, 0, 8, out, &lab);
    cr_assert(rc == DATA_ETRUNC || rc == DATA_EDECODE, "corrupt png gave %d", rc);
    cr_assert(strstr(vel_error_detail(), "apple/m.png"), "%s", vel_error_detail());
    image_folder_destroy(&fo);
    cr_assert_null(fo);
    rm_rf(root);
    free(root);
}

Test(image_folder, empty_and_missing_roots) {
    char *root = test_tmpdir("imgfold_empty");
    image_folder *fo = NULL;
    cr_assert_eq(image_folder_open(root, &fo), DATA_EEMPTY);
    cr_assert(strstr(vel_error_detail(), "no class subfolders"), "%s", vel_error_detail());
    mkdirs(root, "cls");
    cr_assert_eq(image_folder_open(root, &fo), DATA_EEMPTY);
    cr_assert(strstr(vel_error_detail(), "no .png"), "%s", vel_error_detail());
    char p[1024];
    snprintf(p, sizeof p, "%s/does-not-exist", root);
    cr_assert_eq(image_folder_open(p, &fo), VEL_EIO);
    cr_assert(strstr(vel_error_detail(), "does-not-exist"), "%s", vel_error_detail());
    cr_assert_null(fo);
    rm_rf(root);
    free(root);
}
