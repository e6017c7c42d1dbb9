// photos.h: the photo bank, a small dataset of natural colour image crops
// for reconstruction tests. Source: the photos scripts/photos.sh extracts
// from Debian's scikit-image, scikit-learn and OpenCV packages into
// build/photos/images/. Each photo (sorted by file name) is reduced with
// ADM's centre crop to base x base (data/image_folder.h), then cut into the
// (base/crop)^2 non-overlapping crop x crop tiles of a fixed grid, row-major.
// Training on the bank (train --model vae --dataset photos): a split by
// photo, every PHOTOS_TEST_EVERY-th photo in name order held out for test
// (indices 3, 7, 11, 15 of the 18-photo bank: opencv_building, opencv_orange,
// skimage_coffee, skimage_rocket),
// each photo reduced to base x base with the same ADM centre crop, and random
// crop x crop windows + horizontal flips drawn from the training photos with
// Philox (stream PHOTOS_CROP_STREAM), a pure function of (seed, step).
// Not here: fetching (scripts/photos.sh), Fashion-MNIST (data/idx.h).
#ifndef DATA_PHOTOS_H
#define DATA_PHOTOS_H

#include <stdint.h>

#include "data/data_error.h"

#define PHOTOS_DEFAULT_DIR "build/photos/images"

typedef struct {
    int64_t n;           // crops
    int size;            // crop side
    int nphotos;
    int per_photo;       // crops per photo: crop n comes from photo n / per_photo
    float *imgs;         // (n, 3, size, size) in [-1, 1]
    char **names;        // (nphotos) file names, sorted
} photo_bank;

// dir NULL = PHOTOS_DEFAULT_DIR (relative to the repository root). base must
// be a positive multiple of crop. DATA_ENOPHOTOS when dir is missing or holds
// no .png/.jpg (the message says to run scripts/photos.sh); decoder errors
// name the file. Returns 0, VEL_EINVAL, VEL_ENOMEM, DATA_ENOPHOTOS or a
// decoder code.
int photos_open(const char *dir, int base, int crop, photo_bank **out);
void photos_destroy(photo_bank **pb);

#define PHOTOS_TEST_EVERY 4
#define PHOTOS_CROP_STREAM 3
enum { PHOTOS_TRAIN = 0, PHOTOS_TEST = 1 };
// 1 if photo p (0-based, in sorted name order) is held out for test:
// p % PHOTOS_TEST_EVERY == PHOTOS_TEST_EVERY - 1.
int photos_is_test(int p);

typedef struct {
    int nphotos, base;
    uint8_t *pix;        // (nphotos, base, base, 3) RGB, owned
    char **names;        // (nphotos) file names of the split, sorted, owned
} photo_set;

// The photos of one split (PHOTOS_TRAIN / PHOTOS_TEST) of dir (NULL = the
// default), each reduced to base x base. Errors as photos_open;
// DATA_ENOPHOTOS also when the split is empty. Caller frees with
// photo_set_destroy.
int photos_open_split(const char *dir, int base, int split, photo_set **out);
void photo_set_destroy(photo_set **ps);
// out (B, 3, crop, crop) in [-1, 1]: sample b of step draws 4 Philox
// uniforms at offset (step*B + b)*4 of (seed, PHOTOS_CROP_STREAM): photo,
// top, left (uniform over all crop positions) and a horizontal flip (p 0.5).
// crop <= base.
void photos_random_crops(float *out, const photo_set *ps, int crop, int B, uint64_t seed,
                         uint64_t step);

#endif
