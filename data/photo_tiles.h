// photo_tiles.h: the photo bank's fixed-grid tiles of one split gathered
// into one array, in bank order (photo by photo, row-major tiles), each
// labelled with its photo's index. What encode (the store's records), eval
// (the held-out photos) and train (its held-out report) read.
// Not here: random training crops (photos_random_crops in data/photos.h).
#ifndef DATA_PHOTO_TILES_H
#define DATA_PHOTO_TILES_H

#include <stdint.h>

#include "data/photos.h"

typedef struct {
    int64_t n;          // tiles
    int size;           // tile side
    float *imgs;        // (n, 3, size, size) in [-1, 1], owned
    int32_t *labels;    // (n) photo index in the bank, owned
    int nphotos;        // photos in the whole bank (every split)
    char **names;       // (nphotos) their file names, sorted, owned
} photo_tiles;

enum { PHOTOS_ALL = 2 };   // besides PHOTOS_TRAIN and PHOTOS_TEST: every tile

// The tile x tile tiles of photos reduced to base x base (dir NULL = the
// default folder) of split PHOTOS_TRAIN, PHOTOS_TEST or PHOTOS_ALL. Errors as
// photos_open (detail: vel_error_detail); DATA_ENOPHOTOS when the split has no
// tile. On error *t is
// left empty. Free with photo_tiles_free.
int photo_tiles_load(const char *dir, int base, int tile, int split, photo_tiles *t);
void photo_tiles_free(photo_tiles *t);   // NULL-safe; leaves t zeroed

// out (n, 1, size, size): the tiles in gray, 0.299 R + 0.587 G + 0.114 B
// (ITU-R 601 luma), for 1-channel models.
void photo_tiles_gray(const photo_tiles *t, float *out);

#endif
