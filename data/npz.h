// npz.h: reads ADM-layout image archives (.npz), the inverse of
// image_npz_write (data/image_io.h) and what numpy's np.savez writes:
//   arr_0            uint8 (n, H, W, C) with C 1 or 3, or (n, H, W) (C = 1)
//   labels or arr_1  integer (n) (int32 or int64, little-endian), optional
//                    (ADM's sample.py saves its labels as arr_1)
// A ZIP archive of stored (uncompressed) .npy members, zip64 fields
// included (numpy writes its local headers with force_zip64). Every member
// read is checked against its CRC-32. Refused with a code (data/data_error.h)
// and a detail naming what is wrong: not a ZIP or not NPY (DATA_EMAGIC),
// cut short (DATA_ETRUNC), bytes left over in a member (DATA_ETRAILING), a
// compressed member (np.savez_compressed) or a CRC mismatch (DATA_ECORRUPT),
// another dtype / rank / Fortran order / zero or huge dimensions
// (DATA_EDIMS), a label count other than n (DATA_EMISMATCH), no arr_0
// (DATA_EEMPTY).
// Not here: label range checks (the caller knows its classes).
#ifndef DATA_NPZ_H
#define DATA_NPZ_H

#include <stddef.h>
#include <stdint.h>

#include "data/data_error.h"

typedef struct {
    int64_t n;
    int H, W, C;
    uint8_t *u8;        // (n, H, W, C), malloc'ed
    int32_t *labels;    // (n), malloc'ed; NULL when the archive has none
} npz_images;

// Bounds on what is accepted: H, W <= NPZ_MAX_SIDE, n * H * W * C <= NPZ_MAX_BYTES.
enum { NPZ_MAX_SIDE = 8192 };
#define NPZ_MAX_BYTES ((int64_t)1 << 36)

// Parses an archive held in memory; out is zeroed on failure. Labels
// outside int32 are DATA_ELABEL.
int npz_images_parse(const uint8_t *buf, size_t len, npz_images *out);
// The same from a file (mapped, not copied twice). VEL_EIO when it cannot
// be opened, DATA_EEMPTY_FILE / DATA_ENOTFILE as data/image_io's readers.
int npz_images_read(const char *path, npz_images *out);
void npz_images_free(npz_images *im);

#endif
