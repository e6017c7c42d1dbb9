// idx.c: IDX reader through zlib's gz* interface and the Fashion-MNIST
// loader. See idx.h. Every size comes from outside bytes, so it is checked
// before any allocation and every short read is an error.
#include "data/idx.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

// Reads exactly n bytes; classifies a short read as truncation or a broken
// gzip stream (zlib reports Z_DATA_ERROR for bad deflate data or CRC, and
// Z_BUF_ERROR when the compressed input ends early).
static int gz_read_exact(gzFile f, void *buf, int64_t n) {
    uint8_t *p = buf;
    while (n > 0) {
        unsigned chunk = n > (1 << 30) ? (1u << 30) : (unsigned)n;
        int got = gzread(f, p, chunk);
        if (got < 0) {
            int zerr;
            gzerror(f, &zerr);
            return zerr == Z_BUF_ERROR ? DATA_ETRUNC : zerr == Z_ERRNO ? VEL_EIO : DATA_EGZIP;
        }
        if (got == 0) {
            int zerr;
            gzerror(f, &zerr);
            if (zerr == Z_DATA_ERROR) return DATA_EGZIP;
            return DATA_ETRUNC;
        }
        p += got;
        n -= got;
    }
    return 0;
}

// After the data: the stream must end here, and reaching its end makes zlib
// check the gzip CRC and length.
static int gz_expect_end(gzFile f) {
    uint8_t extra;
    int got = gzread(f, &extra, 1);
    int zerr;
    gzerror(f, &zerr);
    if (got > 0) return DATA_ETRAILING;
    if (got < 0 || zerr == Z_DATA_ERROR) return DATA_EGZIP;
    if (zerr == Z_BUF_ERROR) return DATA_ETRUNC;
    return 0;
}

int idx_read(const char *path, idx_array *out) {
    memset(out, 0, sizeof *out);
    if (!path) return VEL_EINVAL;
    gzFile f = gzopen(path, "rb");
    if (!f) return errno == ENOENT ? VEL_ENOTFOUND : VEL_EIO;   // a missing file is an input error
    int rc;
    uint8_t hdr[4];
    if ((rc = gz_read_exact(f, hdr, 4))) goto fail;
    if (hdr[0] != 0 || hdr[1] != 0 || hdr[2] != 0x08) { rc = DATA_EMAGIC; goto fail; }
    if (hdr[3] < 1 || hdr[3] > 4) { rc = DATA_EDIMS; goto fail; }
    out->ndim = hdr[3];
    out->numel = 1;
    for (int i = 0; i < out->ndim; i++) {
        uint8_t d[4];
        if ((rc = gz_read_exact(f, d, 4))) goto fail;
        out->dims[i] = ((int64_t)d[0] << 24) | (d[1] << 16) | (d[2] << 8) | d[3];
        if (out->dims[i] == 0) { rc = DATA_EDIMS; goto fail; }
        out->numel *= out->dims[i];
        // 2^31 bytes is far above any IDX dataset; stops absurd headers early.
        if (out->numel > ((int64_t)1 << 31)) { rc = DATA_EDIMS; goto fail; }
    }
    // The buffer grows with the bytes that actually arrive (doubling from
    // 1 MiB), so a 13-byte file whose header promises 2 GiB fails as
    // truncated having allocated 1 MiB, not 2 GiB.
    int64_t cap = 0, have = 0;
    while (have < out->numel) {
        if (have == cap) {
            int64_t want = cap ? 2 * cap : ((int64_t)1 << 20);
            if (want > out->numel) want = out->numel;
            uint8_t *p = realloc(out->data, (size_t)want);
            if (!p) { rc = VEL_ENOMEM; goto fail; }
            out->data = p;
            cap = want;
        }
        if ((rc = gz_read_exact(f, out->data + have, cap - have))) goto fail;
        have = cap;
    }
    if ((rc = gz_expect_end(f))) goto fail;
    gzclose(f);
    return 0;
fail:
    gzclose(f);
    idx_free(out);
    return rc;
}

void idx_free(idx_array *a) {
    free(a->data);
    memset(a, 0, sizeof *a);
}

int fmnist_load(const char *dir, const char *split, fmnist **out) {
    *out = NULL;
    const char *prefix;
    if (split && !strcmp(split, "train")) prefix = "train";
    else if (split && !strcmp(split, "test")) prefix = "t10k";
    else {
        return vel_fail(VEL_EINVAL, "fashion-mnist: unknown split '%s' (want train or test)",
            split ? split : "(null)");
    }
    if (!dir) dir = FMNIST_DEFAULT_DIR;
    char ipath[4096], lpath[4096];
    snprintf(ipath, sizeof ipath, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    snprintf(lpath, sizeof lpath, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    idx_array im, lb;
    int rc = idx_read(ipath, &im);
    if (rc) {
        return vel_fail(rc, "%s%s%s", ipath, rc == VEL_EIO ? ": " : "", rc == VEL_EIO ? strerror(errno) : "");
    }
    rc = idx_read(lpath, &lb);
    if (rc) {
        vel_fail(rc, "%s%s%s", lpath, rc == VEL_EIO ? ": " : "", rc == VEL_EIO ? strerror(errno) : "");
        idx_free(&im);
        return rc;
    }
    if (im.ndim != 3 || im.dims[1] != FMNIST_RAW_SIDE || im.dims[2] != FMNIST_RAW_SIDE) {
        rc = vel_fail(DATA_EDIMS, "%s: images must be (n, 28, 28), got ndim %d", ipath, im.ndim);
        goto done;
    }
    if (lb.ndim != 1 || lb.dims[0] != im.dims[0]) {
        rc = vel_fail(DATA_EMISMATCH, "%s: %lld labels for %lld images in %s", lpath,
            (long long)(lb.ndim == 1 ? lb.dims[0] : -1), (long long)im.dims[0], ipath);
        goto done;
    }
    for (int64_t i = 0; i < lb.numel; i++)
        if (lb.data[i] >= FMNIST_CLASSES) {
            rc = vel_fail(DATA_ELABEL, "%s: label %d at index %lld (want 0..9)", lpath, lb.data[i],
                (long long)i);
            goto done;
        }
    fmnist *ds = calloc(1, sizeof *ds);
    int64_t n = im.dims[0];
    const int side = FMNIST_SIDE, pad = (FMNIST_SIDE - FMNIST_RAW_SIDE) / 2;
    if (ds) ds->pix = calloc((size_t)n * side * side, 1);
    if (!ds || !ds->pix) {
        if (ds) free(ds);
        rc = vel_fail(VEL_ENOMEM, "fashion-mnist: out of memory");
        goto done;
    }
    for (int64_t k = 0; k < n; k++)
        for (int y = 0; y < FMNIST_RAW_SIDE; y++)
            memcpy(ds->pix + (k * side + y + pad) * side + pad,
                   im.data + (k * FMNIST_RAW_SIDE + y) * FMNIST_RAW_SIDE, FMNIST_RAW_SIDE);
    ds->n = n;
    ds->labels = lb.data;   // take ownership
    lb.data = NULL;
    *out = ds;
done:
    idx_free(&im);
    idx_free(&lb);
    return rc;
}

void fmnist_destroy(fmnist **ds) {
    if (!ds || !*ds) return;
    free((*ds)->pix);
    free((*ds)->labels);
    free(*ds);
    *ds = NULL;
}

int fmnist_batch_f32(const fmnist *ds, float *out, int32_t *labels, const int64_t *idx,
                     int64_t first, int64_t count) {
    // out (count, 1, 32, 32), labels (count) or NULL
    const int64_t hw = FMNIST_SIDE * FMNIST_SIDE;
    for (int64_t b = 0; b < count; b++) {
        int64_t i = idx ? idx[b] : first + b;
        if (i < 0 || i >= ds->n) return VEL_ERANGE;
    }
    for (int64_t b = 0; b < count; b++) {
        int64_t i = idx ? idx[b] : first + b;
        const uint8_t *p = ds->pix + i * hw;
        for (int64_t j = 0; j < hw; j++) out[b * hw + j] = (float)p[j] / 127.5f - 1.0f;
        if (labels) labels[b] = ds->labels[i];
    }
    return 0;
}
