// image_folder.h: ImageNet-layout datasets (root/CLASS/.../*.png|jpg|jpeg,
// classes = sorted subfolder names, labels their index, files sorted by path)
// and the preprocessing of ADM / guided-diffusion's center_crop_arr, with the
// PIL resampling it relies on reimplemented here.
// Not here: decoding (data/image_io.h), augmentation (data/augment.h).
//
// PIL semantics (Pillow 9's Resample.c, read from its documentation and
// behaviour, checked against Pillow itself in tests/ref/gen_image_folder.py):
// separable filter, horizontal pass then vertical pass, each pass rounding to
// uint8; weights computed in double over a support of filter_support * scale
// (scale >= 1 when shrinking), normalised, then turned into 22-bit fixed
// point; output = clip((sum + 2^21) >> 22). Known difference: when only the
// height changes PIL skips the horizontal pass, and so do we; we never use
// PIL's "reducing_gap" shortcut (ADM does not either).
#ifndef DATA_IMAGE_FOLDER_H
#define DATA_IMAGE_FOLDER_H

#include <stdint.h>

#include "data/data_error.h"

typedef enum { RESAMPLE_BOX = 0, RESAMPLE_BICUBIC = 1 } resample_filter;

// dst (dh, dw, c) from src (sh, sw, c), uint8 interleaved, any c >= 1.
// Returns 0, VEL_EINVAL or VEL_ENOMEM (it allocates its scratch: this runs
// in data loading, not in a training step).
int image_resize_pil(uint8_t *dst, int dw, int dh, const uint8_t *src, int sw, int sh,
                     int c, resample_filter filter);

// guided-diffusion's center_crop_arr: while min(w, h) >= 2*size, BOX-resize to
// (w/2, h/2) (integer division); then BICUBIC-resize so that the short side is
// size (long side round-half-even(x * size / short), Python's round); then
// the centre size x size crop (offsets (w - size) / 2, (h - size) / 2, floor).
// out (size, size, c). Returns 0, VEL_EINVAL or VEL_ENOMEM.
int image_center_crop_adm(uint8_t *out, const uint8_t *src, int w, int h, int c, int size);

typedef struct {
    int nclasses;
    char **class_names;    // (nclasses), sorted by strcmp
    int64_t n;
    char **paths;          // (n), root-relative order: class, then sorted path
    int32_t *labels;       // (n)
} image_folder;

// Scans root: each subfolder is a class; its files with extension .png,
// .jpg, .jpeg (any case), in nested folders too, are the images. Hidden
// entries (starting with '.') are skipped. Errors: VEL_EIO (root unreadable),
// DATA_EEMPTY (no class folders or no images), VEL_ENOMEM; the error detail
// (vel_error_detail) names the path.
int image_folder_open(const char *root, image_folder **out);
void image_folder_destroy(image_folder **f);

// Decodes image i as RGB, applies image_center_crop_adm(size) and writes
// floats in [-1, 1] to out (3, size, size) (v/127.5 - 1). *label (if not
// NULL) gets its label. Decoder errors are returned as they are
// (vel_strerror); the error detail names the file.
int image_folder_load_f32(const image_folder *f, int64_t i, int size, float *out,
                          int32_t *label);
// The same as uint8 (size, size, channels), channels 1 (gray, ITU-R 601 luma
// as data/image_io.h's readers) or 3 (RGB): what feature networks take.
int image_folder_load_u8(const image_folder *f, int64_t i, int size, int channels, uint8_t *out,
                         int32_t *label);

#endif
