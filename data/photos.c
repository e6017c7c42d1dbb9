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

static void say(char *msg, int cap, const char *fmt, ...) {
    if (!msg || cap <= 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, (size_t)cap, fmt, ap);
    va_end(ap);
}

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

int photos_open(const char *dir, int base, int crop, photo_bank **out, char *msg, int cap) {
    *out = NULL;
    if (msg && cap > 0) msg[0] = 0;
    if (base <= 0 || crop <= 0 || base % crop) {
        say(msg, cap, "photos: base %d must be a positive multiple of crop %d", base, crop);
        return VEL_EINVAL;
    }
    if (!dir) dir = PHOTOS_DEFAULT_DIR;
    DIR *d = opendir(dir);
    if (!d) {
        say(msg, cap, "%s: photo bank not found; run scripts/photos.sh", dir);
        return DATA_ENOPHOTOS;
    }
    photo_bank *pb = calloc(1, sizeof *pb);
    if (!pb) { closedir(d); return VEL_ENOMEM; }
    int ncap = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_photo(e->d_name)) continue;
        if (pb->nphotos == ncap) {
            ncap = ncap ? 2 * ncap : 32;
            char **nn = realloc(pb->names, sizeof(char *) * (size_t)ncap);
            if (!nn) { rc = VEL_ENOMEM; break; }
            pb->names = nn;
        }
        if (!(pb->names[pb->nphotos] = strdup(e->d_name))) { rc = VEL_ENOMEM; break; }
        pb->nphotos++;
    }
    closedir(d);
    if (!rc && pb->nphotos == 0) {
        say(msg, cap, "%s: no .png/.jpg photos; run scripts/photos.sh", dir);
        rc = DATA_ENOPHOTOS;
    }
    if (rc) { photos_destroy(&pb); return rc; }
    qsort(pb->names, (size_t)pb->nphotos, sizeof(char *), cmp_str);
    int g = base / crop;
    pb->size = crop;
    pb->per_photo = g * g;
    pb->n = (int64_t)pb->nphotos * pb->per_photo;
    size_t per = (size_t)3 * crop * crop;
    pb->imgs = malloc(sizeof(float) * per * (size_t)pb->n);
    uint8_t *sq = malloc((size_t)base * base * 3);
    if (!pb->imgs || !sq) { free(sq); photos_destroy(&pb); return VEL_ENOMEM; }
    for (int p = 0; p < pb->nphotos && !rc; p++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, pb->names[p]);
        uint8_t *pix;
        int w, h, c;
        if ((rc = image_read(path, 3, &pix, &w, &h, &c))) {
            say(msg, cap, "%s: %s", path, data_strerror(rc));
            break;
        }
        rc = image_center_crop_adm(sq, pix, w, h, 3, base);
        free(pix);
        if (rc) { say(msg, cap, "%s: crop failed", path); break; }
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
