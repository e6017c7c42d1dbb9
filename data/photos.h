// photos.h: the photo bank, a small dataset of natural colour image crops
// for reconstruction tests. Source: the photos scripts/photos.sh extracts
// from Debian's scikit-image, scikit-learn and OpenCV packages into
// build/photos/images/. Each photo (sorted by file name) is reduced with
// ADM's centre crop to base x base (data/image_folder.h), then cut into the
// (base/crop)^2 non-overlapping crop x crop tiles of a fixed grid, row-major.
// Not here: fetching (scripts/photos.sh), training data (data/idx.h).
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
int photos_open(const char *dir, int base, int crop, photo_bank **out, char *msg, int cap);
void photos_destroy(photo_bank **pb);

#endif
