// idx.h: IDX files (the MNIST / Fashion-MNIST array format, gzip or plain,
// read through zlib) and the Fashion-MNIST dataset built on them: 28x28 gray
// images padded to 32x32, labels 0..9.
// Not here: augmentation (data/augment.h), batching policy, the store.
//
// Memory: the dataset keeps the padded images as uint8 (N, 32, 32), 60 MiB
// for the train split, and converts batches to float on request, so eight
// processes reading it do not each hold 250 MiB of floats.
#ifndef DATA_IDX_H
#define DATA_IDX_H

#include <stdint.h>

#include "data/data_error.h"

#define FMNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define FMNIST_CLASSES 10
#define FMNIST_SIDE 32   // padded side
#define FMNIST_RAW_SIDE 28

// An unsigned-byte IDX array (type code 0x08), the only type MNIST uses.
typedef struct {
    int ndim;              // 1..4
    int64_t dims[4];
    int64_t numel;
    uint8_t *data;         // owned; free with idx_free
} idx_array;

// Reads path (gzip-compressed or plain; zlib detects which). Checks the magic
// (0x00 0x00 0x08 ndim), that ndim is 1..4 and dims are nonzero with a product
// under 2^31, that exactly numel bytes follow (DATA_ETRUNC if fewer,
// DATA_ETRAILING if more) and that the gzip stream and CRC are intact
// (DATA_EGZIP). Memory follows the bytes actually read (at most twice the
// data), never just the header's promise. Returns 0, VEL_EIO (cannot open), VEL_ENOMEM, DATA_EMAGIC,
// DATA_EDIMS, DATA_ETRUNC, DATA_ETRAILING or DATA_EGZIP.
int idx_read(const char *path, idx_array *out);
void idx_free(idx_array *a);

typedef struct {
    int64_t n;             // number of images
    uint8_t *pix;          // (n, 32, 32), 28x28 centred with 2 zero pixels each side
    uint8_t *labels;       // (n), 0..9
} fmnist;

// Loads split "train" (60k) or "test" (10k) from dir (NULL = the Debian
// package's FMNIST_DEFAULT_DIR), files <prefix>-images-idx3-ubyte.gz and
// <prefix>-labels-idx1-ubyte.gz with prefix "train" or "t10k". Images must
// be (n, 28, 28), labels (n) with the same n (DATA_EMISMATCH) and < 10
// (DATA_ELABEL). On failure *out is NULL and the thread's
// error detail (vel_error_detail) names the file and the problem.
int fmnist_load(const char *dir, const char *split, fmnist **out);
void fmnist_destroy(fmnist **ds);

// Writes images idx[0..count) as floats in [-1, 1] (v/127.5 - 1, the
// inverse of SPEC's uint8 mapping) to out (count, 1, 32, 32) and, if labels
// is not NULL, their labels. idx NULL means the range first..first+count
// (first is ignored otherwise). Returns 0 or VEL_ERANGE when an index is out
// of range.
int fmnist_batch_f32(const fmnist *ds, float *out, int32_t *labels, const int64_t *idx,
                     int64_t first, int64_t count);

#endif
