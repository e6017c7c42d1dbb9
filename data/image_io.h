// image_io.h: reading and writing 8-bit images (PNG via libpng, JPEG via
// libjpeg) and writing float image batches as one PNG grid.
// Not here: resampling/cropping (data/image_folder.h), datasets.
//
// Pixel layout of every uint8 buffer: interleaved rows, (H, W, C), C = 1
// (gray), 3 (RGB) or 4 (RGBA, PNG only). Float image batches are PyTorch's
// (N, C, H, W) in [-1, 1]; the uint8 mapping is SPEC section 3's
// clamp(127.5*x + 128, 0, 255) truncated, i.e. round-half-up of
// 127.5*(x+1), the same bytes ADM's ((x+1)*127.5).clamp(0,255).to(uint8)
// gives up to that rounding.
//
// Errors: 0 or a negative code (data/data_error.h); vel_strerror names it.
// Reads reject images with a side over IMAGE_MAX_SIDE or more than
// IMAGE_MAX_PIXELS pixels before allocating (sizes come from outside bytes).
#ifndef DATA_IMAGE_IO_H
#define DATA_IMAGE_IO_H

#include <stdint.h>

#include "data/data_error.h"

#define IMAGE_MAX_SIDE 32768
#define IMAGE_MAX_PIXELS (1 << 28)

// Writes pix (h, w, channels), channels 1/3/4, as an 8-bit PNG. The file is
// written under a temporary name and renamed, so readers never see half a
// file. Returns 0, VEL_EINVAL or VEL_EIO.
int png_write(const char *path, const uint8_t *pix, int w, int h, int channels);

// Reads a PNG (any bit depth, palette, gray, alpha; 16-bit is reduced to 8).
// want_channels: 0 keeps the file's layout (1, 3 or 4; gray+alpha becomes 4),
// 1 converts to gray (ITU-R 601 luma like libpng), 3 to RGB (alpha dropped).
// On success *pix is malloc'ed (caller frees with free()), *w, *h, *channels
// are set. Returns 0, VEL_EIO, VEL_ENOMEM, DATA_EMAGIC, DATA_ETRUNC,
// DATA_EDECODE or DATA_EDIMS.
int png_read(const char *path, int want_channels, uint8_t **pix, int *w, int *h,
             int *channels);

// Reads a baseline or progressive JPEG (gray or YCbCr; CMYK is rejected).
// want_channels: 0 keeps the file's (1 or 3), 1 gray, 3 RGB. Truncated data,
// which libjpeg only warns about and pads with gray, is an error here
// (DATA_ETRUNC). Ownership and codes as png_read.
int jpeg_read(const char *path, int want_channels, uint8_t **pix, int *w, int *h,
              int *channels);

// Writes pix (h, w, channels), channels 1 or 3, as a baseline JPEG of the
// given quality (1..100). Used for test fixtures. Returns 0, VEL_EINVAL, VEL_EIO.
int jpeg_write(const char *path, const uint8_t *pix, int w, int h, int channels,
               int quality);

// Reads PNG or JPEG, chosen by the file's first bytes (not its name).
int image_read(const char *path, int want_channels, uint8_t **pix, int *w, int *h,
               int *channels);

// SPEC section 3's mapping of one value in [-1, 1] to uint8 and its inverse.
uint8_t image_f32_to_u8(float x);
float image_u8_to_f32(uint8_t v);

// Writes imgs (N, C, H, W) in [-1, 1], C 1 or 3, as a grid of ncols columns
// (rows = ceil(N / ncols)) separated by 2 black pixels (torchvision's
// make_grid default). Returns 0, VEL_EINVAL, VEL_ENOMEM or VEL_EIO.
int image_grid_write_png(const char *path, const float *imgs, int N, int C, int H,
                         int W, int ncols);

// Writes an ADM-compatible .npz: a ZIP archive (stored, no compression) with
// one member "arr_0.npy" holding data as uint8 with the given shape, e.g.
// (N, H, W, C) images as guided-diffusion's evaluator reads them
// (np.load(path)["arr_0"]). Written to a temp name and renamed. Archives over
// 4 GiB (ZIP64) are refused with VEL_ERANGE. Returns 0, VEL_EINVAL, VEL_ERANGE
// or VEL_EIO.
int image_npz_write_u8(const char *path, const uint8_t *data, int ndim, const int64_t *shape);
// The same archive with several members (at most 8), each NAME.npy: uint8,
// or little-endian int32 when i32 is set (e.g. "arr_0" images and "labels"
// beside them, as np.savez(path, images, labels=...) writes).
typedef struct {
    const char *name;      // member name without ".npy", at most 60 bytes
    const void *data;
    int i32;               // 0: '|u1', 1: '<i4'
    int ndim;              // 1..8
    int64_t shape[8];
} image_npz_member;
int image_npz_write(const char *path, const image_npz_member *mem, int count);

#endif
