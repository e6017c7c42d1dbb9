// photos.c: the photo bank (see photos.h).
#include "data/photos.h"

#include <ctype.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/image_folder.h"
#include "data/image_io.h"
#include "core/base.h"
#include "core/philox.h"

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_photo(const char *name) {
    if (name[0] == '.') return 0;
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    char e[6] = {0};
    for (int i = 0; i < 5 && dot[1 + i]; i++) e[i] = (char)tolower((unsigned char)dot[1 + i]);
    return !strcmp(e, "png") || !strcmp(e, "jpg") || !strcmp(e, "jpeg");
}

void photos_destroy(photo_bank **pb) {
    if (!pb || !*pb) return;
    for (int i = 0; i < (*pb)->nphotos; i++) free((*pb)->names[i]);
    free((*pb)->names);
    free((*pb)->imgs);
    free(*pb);
    *pb = NULL;
}

// Sorted .png/.jpg names of dir; DATA_ENOPHOTOS (with a message) if none.
static int list_photos(const char *dir, char ***names_out, int *n_out) {
    *names_out = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d) {
        return vel_fail(DATA_ENOPHOTOS, "%s: photo bank not found; run scripts/photos.sh", dir);
    }
    char **names = NULL;
    int n = 0, ncap = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_photo(e->d_name)) continue;
        if (n == ncap) {
            ncap = ncap ? 2 * ncap : 32;
            char **nn = realloc(names, sizeof(char *) * (size_t)ncap);
            if (!nn) { rc = VEL_ENOMEM; break; }
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name))) { rc = VEL_ENOMEM; break; }
        n++;
    }
    closedir(d);
    if (!rc && n == 0) {
        rc = vel_fail(DATA_ENOPHOTOS, "%s: no .png/.jpg photos; run scripts/photos.sh", dir);
    }
    if (rc) {
        for (int i = 0; i < n; i++) free(names[i]);
        free(names);
        return rc;
    }
    qsort(names, (size_t)n, sizeof(char *), cmp_str);
    *names_out = names;
    *n_out = n;
    return 0;
}

// Reads dir/name and reduces it with ADM's centre crop to sq (base, base, 3).
static int load_square(const char *dir, const char *name, int base, uint8_t *sq) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    uint8_t *pix;
    int w, h, c, rc;
    if ((rc = image_read(path, 3, &pix, &w, &h, &c))) return vel_fail(rc, "%s", path);
    rc = image_center_crop_adm(sq, pix, w, h, 3, base);
    free(pix);
    if (rc) return vel_fail(rc, "%s: crop failed", path);
    return 0;
}

int photos_open(const char *dir, int base, int crop, photo_bank **out) {
    *out = NULL;
    if (base <= 0 || crop <= 0 || base % crop) {
        return vel_fail(VEL_EINVAL, "photos: base %d must be a positive multiple of crop %d", base, crop);
    }
    if (!dir) dir = PHOTOS_DEFAULT_DIR;
    photo_bank *pb = calloc(1, sizeof *pb);
    if (!pb) return VEL_ENOMEM;
    int rc = list_photos(dir, &pb->names, &pb->nphotos);
    if (rc) { photos_destroy(&pb); return rc; }
    int g = base / crop;
    pb->size = crop;
    pb->per_photo = g * g;
    pb->n = (int64_t)pb->nphotos * pb->per_photo;
    size_t per = (size_t)3 * crop * crop;
    pb->imgs = malloc(sizeof(float) * per * (size_t)pb->n);
    uint8_t *sq = malloc((size_t)base * base * 3);
    if (!pb->imgs || !sq) { free(sq); photos_destroy(&pb); return VEL_ENOMEM; }
    for (int p = 0; p < pb->nphotos && !rc; p++) {
        if ((rc = load_square(dir, pb->names[p], base, sq))) break;
        for (int t = 0; t < pb->per_photo; t++) {
            int ty = t / g, tx = t % g;
            float *o = pb->imgs + ((size_t)p * pb->per_photo + t) * per;   // (3, crop, crop)
            for (int ch = 0; ch < 3; ch++)
                for (int y = 0; y < crop; y++)
                    for (int x = 0; x < crop; x++)
                        o[((size_t)ch * crop + y) * crop + x] = image_u8_to_f32(
                            sq[((size_t)(ty * crop + y) * base + tx * crop + x) * 3 + ch]);
        }
    }
    free(sq);
    if (rc) { photos_destroy(&pb); return rc; }
    *out = pb;
    return 0;
}

int photos_is_test(int p) { return p % PHOTOS_TEST_EVERY == PHOTOS_TEST_EVERY - 1; }

void photo_set_destroy(photo_set **ps) {
    if (!ps || !*ps) return;
    for (int i = 0; i < (*ps)->nphotos; i++) free((*ps)->names[i]);
    free((*ps)->names);
    free((*ps)->pix);
    free(*ps);
    *ps = NULL;
}

int photos_open_split(const char *dir, int base, int split, photo_set **out) {
    *out = NULL;
    if (base <= 0 || (split != PHOTOS_TRAIN && split != PHOTOS_TEST)) {
        return vel_fail(VEL_EINVAL, "photos: bad base %d or split %d", base, split);
    }
    if (!dir) dir = PHOTOS_DEFAULT_DIR;
    char **all = NULL;
    int nall = 0;
    int rc = list_photos(dir, &all, &nall);
    if (rc) return rc;
    photo_set *ps = calloc(1, sizeof *ps);
    if (!ps) rc = VEL_ENOMEM;
    if (!rc) {
        ps->base = base;
        ps->names = calloc((size_t)nall, sizeof(char *));
        if (!ps->names) rc = VEL_ENOMEM;
    }
    // Names of the split move into ps; the others are freed.
    for (int p = 0; p < nall; p++) {
        if (!rc && (photos_is_test(p) ? PHOTOS_TEST : PHOTOS_TRAIN) == split) {
            ps->names[ps->nphotos++] = all[p];
        } else {
            free(all[p]);
        }
    }
    free(all);
    if (!rc && ps->nphotos == 0) {
        rc = vel_fail(DATA_ENOPHOTOS, "%s: no photos in the %s split", dir, split == PHOTOS_TEST ? "test" : "train");
    }
    if (!rc) {
        ps->pix = malloc((size_t)ps->nphotos * base * base * 3);
        if (!ps->pix) rc = VEL_ENOMEM;
    }
    for (int p = 0; !rc && p < ps->nphotos; p++)
        rc = load_square(dir, ps->names[p], base, ps->pix + (size_t)p * base * base * 3);
    if (rc) { photo_set_destroy(&ps); return rc; }
    *out = ps;
    return 0;
}

void photos_random_crops(float *out, const photo_set *ps, int crop, int B, uint64_t seed,
                         uint64_t step) {
    // out (B, 3, crop, crop)
    CHECK(crop >= 1 && crop <= ps->base && B >= 1);
    int base = ps->base, room = base - crop + 1;
    for (int b = 0; b < B; b++) {
        float u[4];
        philox_uniform(u, 4, seed, PHOTOS_CROP_STREAM, (step * (uint64_t)B + (uint64_t)b) * 4);
        int p = (int)(u[0] * (float)ps->nphotos), y0 = (int)(u[1] * (float)room);
        int x0 = (int)(u[2] * (float)room), flip = u[3] < 0.5f;
        if (p >= ps->nphotos) p = ps->nphotos - 1;
        if (y0 >= room) y0 = room - 1;
        if (x0 >= room) x0 = room - 1;
        const uint8_t *sq = ps->pix + (size_t)p * base * base * 3;
        float *o = out + (size_t)b * 3 * crop * crop;
        for (int ch = 0; ch < 3; ch++)
            for (int y = 0; y < crop; y++)
                for (int x = 0; x < crop; x++) {
                    int sx = x0 + (flip ? crop - 1 - x : x);
                    o[((size_t)ch * crop + y) * crop + x] =
                        image_u8_to_f32(sq[((size_t)(y0 + y) * base + sx) * 3 + ch]);
                }
    }
}
