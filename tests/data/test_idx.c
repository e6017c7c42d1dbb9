// test_idx.c: the IDX reader and Fashion-MNIST loader on small files written
// to a temp dir (valid, plain, wrong magic, truncated, corrupt gzip, trailing
// bytes, mismatched counts, bad labels, absurd dims, zero bytes, a header
// promising far more than the file holds, arrays of several MiB) and on the real Debian
// dataset (sizes and the known 1000/6000-per-class balance).
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include "data/idx.h"
#include "tests/util.h"

// Writes an IDX header (magic type 0x08, ndim, dims) + body, gzip or plain.
static void write_idx(const char *path, int gz, const uint8_t magic[3], int ndim,
                      const uint32_t *dims, const uint8_t *body, size_t nbody) {
    uint8_t hdr[4 + 16];
    memcpy(hdr, magic, 3);
    hdr[3] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++) {
        hdr[4 + 4 * i] = (uint8_t)(dims[i] >> 24); hdr[5 + 4 * i] = (uint8_t)(dims[i] >> 16);
        hdr[6 + 4 * i] = (uint8_t)(dims[i] >> 8); hdr[7 + 4 * i] = (uint8_t)dims[i];
    }
    if (gz) {
        gzFile f = gzopen(path, "wb");
        cr_assert(f);
        gzwrite(f, hdr, 4 + 4 * ndim);
        if (nbody) gzwrite(f, body, (unsigned)nbody);
        gzclose(f);
    } else {
        FILE *f = fopen(path, "wb");
        fwrite(hdr, 1, 4 + 4 * ndim, f);
        fwrite(body, 1, nbody, f);
        fclose(f);
    }
}

static const uint8_t MAGIC[3] = {0, 0, 8};

// A tiny 3-image dataset in dir with the train file names.
static void write_tiny(const char *dir, int nlabels, uint8_t bad_label) {
    char p[512];
    uint8_t img[3 * 28 * 28];
    for (int i = 0; i < 3 * 28 * 28; i++) img[i] = (uint8_t)(i * 7);
    uint32_t d3[3] = {3, 28, 28};
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir);
    write_idx(p, 1, MAGIC, 3, d3, img, sizeof img);
    uint8_t lab[4] = {4, 0, 9, 1};
    if (bad_label) lab[1] = bad_label;
    uint32_t d1[1] = {(uint32_t)nlabels};
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte.gz", dir);
    write_idx(p, 1, MAGIC, 1, d1, lab, (size_t)nlabels);
}

Test(idx, tiny_dataset_padding_and_scaling) {
    char *dir = test_tmpdir("idx_tiny");
    write_tiny(dir, 3, 0);
    fmnist *ds = NULL;
    cr_assert_eq(fmnist_load(dir, "train", &ds), 0, "%s", vel_error_detail());
    cr_assert_eq(ds->n, 3);
    float *x = malloc(sizeof(float) * 3 * 32 * 32);
    int32_t lab[3];
    cr_assert_eq(fmnist_batch_f32(ds, x, lab, NULL, 0, 3), 0);
    cr_assert(lab[0] == 4 && lab[1] == 0 && lab[2] == 9);
    for (int k = 0; k < 3; k++)
        for (int y = 0; y < 32; y++)
            for (int xx = 0; xx < 32; xx++) {
                float v = x[(k * 32 + y) * 32 + xx];
                int inside = y >= 2 && y < 30 && xx >= 2 && xx < 30;
                uint8_t raw = inside ? (uint8_t)(((k * 28 + y - 2) * 28 + xx - 2) * 7) : 0;
                cr_assert_float_eq(v, raw / 127.5f - 1.0f, 1e-6, "k%d y%d x%d", k, y, xx);
            }
    // Index list form, and an out-of-range index.
    int64_t idx[2] = {2, 0};
    cr_assert_eq(fmnist_batch_f32(ds, x, lab, idx, 0, 2), 0);
    cr_assert(lab[0] == 9 && lab[1] == 4);
    idx[1] = 3;
    cr_assert_eq(fmnist_batch_f32(ds, x, lab, idx, 0, 2), VEL_ERANGE);
    cr_assert_eq(fmnist_batch_f32(ds, x, lab, NULL, 2, 2), VEL_ERANGE);
    free(x);
    fmnist_destroy(&ds);
    cr_assert_null(ds);
    rm_rf(dir);
    free(dir);
}

Test(idx, plain_uncompressed_file_reads) {
    char *dir = test_tmpdir("idx_plain");
    char p[512];
    snprintf(p, sizeof p, "%s/a.idx", dir);
    uint8_t body[6] = {1, 2, 3, 4, 5, 6};
    uint32_t d[2] = {2, 3};
    write_idx(p, 0, MAGIC, 2, d, body, 6);
    idx_array a;
    cr_assert_eq(idx_read(p, &a), 0);
    cr_assert(a.ndim == 2 && a.dims[0] == 2 && a.dims[1] == 3 && a.numel == 6);
    cr_assert(memcmp(a.data, body, 6) == 0);
    idx_free(&a);
    rm_rf(dir);
    free(dir);
}

Test(idx, malformed_files) {
    char *dir = test_tmpdir("idx_bad");
    char p[512];
    snprintf(p, sizeof p, "%s/x.gz", dir);
    idx_array a;
    uint8_t body[64];
    for (int i = 0; i < 64; i++) body[i] = (uint8_t)(i * 13);
    uint32_t d[2] = {8, 8};

    uint8_t wrong[3] = {0, 0, 0x0D};   // float IDX: not supported
    write_idx(p, 1, wrong, 2, d, body, 64);
    cr_assert_eq(idx_read(p, &a), DATA_EMAGIC);
    uint8_t png[3] = {0x89, 'P', 'N'};
    write_idx(p, 1, png, 2, d, body, 64);
    cr_assert_eq(idx_read(p, &a), DATA_EMAGIC);
    cr_assert_null(a.data);

    write_idx(p, 1, MAGIC, 0, d, body, 64);   // ndim 0
    cr_assert_eq(idx_read(p, &a), DATA_EDIMS);
    uint32_t zero[2] = {0, 8};
    write_idx(p, 1, MAGIC, 2, zero, body, 0);
    cr_assert_eq(idx_read(p, &a), DATA_EDIMS);
    uint32_t huge[3] = {100000, 100000, 100000};   // 1e15 bytes: refused before malloc
    write_idx(p, 1, MAGIC, 3, huge, body, 64);
    cr_assert_eq(idx_read(p, &a), DATA_EDIMS);

    write_idx(p, 1, MAGIC, 2, d, body, 40);   // body short (valid gzip, data ends)
    cr_assert_eq(idx_read(p, &a), DATA_ETRUNC);
    write_idx(p, 0, MAGIC, 2, d, body, 40);   // same, plain
    cr_assert_eq(idx_read(p, &a), DATA_ETRUNC);
    write_idx(p, 1, MAGIC, 2, d, body, 2);    // ends right after the header
    cr_assert_eq(idx_read(p, &a), DATA_ETRUNC);
    write_idx(p, 1, MAGIC, 1, d, body, 64);   // 8 promised, 64 present
    cr_assert_eq(idx_read(p, &a), DATA_ETRAILING);

    // Cut the gzip file itself (compressed stream ends early).
    write_idx(p, 1, MAGIC, 2, d, body, 64);
    FILE *f = fopen(p, "rb");
    uint8_t buf[512];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    cr_assert(n > 30);
    size_t cuts[] = {12, n / 2, n - 4};
    for (int i = 0; i < 3; i++) {
        f = fopen(p, "wb");
        fwrite(buf, 1, cuts[i], f);
        fclose(f);
        int rc = idx_read(p, &a);
        cr_assert(rc == DATA_ETRUNC || rc == DATA_EGZIP, "cut at %zu/%zu gave %d", cuts[i], n, rc);
        cr_assert_null(a.data);
    }
    // Corrupt the CRC in the gzip trailer (last 8 bytes: CRC32, ISIZE).
    buf[n - 8] ^= 0xFF;
    f = fopen(p, "wb");
    fwrite(buf, 1, n, f);
    fclose(f);
    cr_assert_eq(idx_read(p, &a), DATA_EGZIP);
    buf[n - 8] ^= 0xFF;
    // Corrupt the deflate data itself.
    for (size_t i = 12; i < n - 8; i += 3) buf[i] ^= 0xA5;
    f = fopen(p, "wb");
    fwrite(buf, 1, n, f);
    fclose(f);
    int rc = idx_read(p, &a);
    cr_assert(rc == DATA_EGZIP || rc == DATA_EMAGIC || rc == DATA_ETRUNC || rc == DATA_EDIMS,
              "corrupt deflate gave %d", rc);
    cr_assert_neq(rc, 0);

    snprintf(p, sizeof p, "%s/none.gz", dir);
    cr_assert_eq(idx_read(p, &a), VEL_ENOTFOUND);
    rm_rf(dir);
    free(dir);
}

Test(idx, dataset_level_errors_name_the_file) {
    char *dir = test_tmpdir("idx_ds");
    fmnist *ds = NULL;
    write_tiny(dir, 4, 0);   // 4 labels for 3 images
    cr_assert_eq(fmnist_load(dir, "train", &ds), DATA_EMISMATCH);
    cr_assert(strstr(vel_error_detail(), "train-labels-idx1-ubyte.gz") && strstr(vel_error_detail(), "4 labels"), "%s", vel_error_detail());
    cr_assert_null(ds);
    write_tiny(dir, 3, 10);  // label 10
    cr_assert_eq(fmnist_load(dir, "train", &ds), DATA_ELABEL);
    cr_assert(strstr(vel_error_detail(), "label 10"), "%s", vel_error_detail());
    cr_assert_eq(fmnist_load(dir, "test", &ds), VEL_ENOTFOUND);
    cr_assert(strstr(vel_error_detail(), "t10k-images-idx3-ubyte.gz"), "%s", vel_error_detail());
    cr_assert_eq(fmnist_load(dir, "valid", &ds), VEL_EINVAL);
    cr_assert(strstr(vel_error_detail(), "unknown split"), "%s", vel_error_detail());
    // Images that are not 28x28.
    char p[512];
    uint8_t img[3 * 4 * 4] = {0};
    uint32_t d3[3] = {3, 4, 4};
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir);
    write_tiny(dir, 3, 0);
    write_idx(p, 1, MAGIC, 3, d3, img, sizeof img);
    cr_assert_eq(fmnist_load(dir, "train", &ds), DATA_EDIMS);
    cr_assert(strstr(vel_error_detail(), "(n, 28, 28)"), "%s", vel_error_detail());
    rm_rf(dir);
    free(dir);
}

Test(idx, real_fashion_mnist) {
    char p[512];
    snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte.gz", FMNIST_DEFAULT_DIR);
    if (access(p, R_OK) != 0) {
        cr_skip_test("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)");
    }
    const char *splits[2] = {"test", "train"};
    const int64_t sizes[2] = {10000, 60000};
    for (int s = 0; s < 2; s++) {
        fmnist *ds = NULL;
        cr_assert_eq(fmnist_load(NULL, splits[s], &ds), 0, "%s", vel_error_detail());
        cr_assert_eq(ds->n, sizes[s]);
        int64_t count[10] = {0};
        for (int64_t i = 0; i < ds->n; i++) count[ds->labels[i]]++;
        for (int c = 0; c < 10; c++) cr_assert_eq(count[c], sizes[s] / 10, "class %d", c);
        // Padding is zero everywhere (the border rows/cols of every image).
        int64_t border_sum = 0, total = 0;
        for (int64_t i = 0; i < ds->n; i++) {
            const uint8_t *im = ds->pix + i * 1024;
            for (int k = 0; k < 32; k++)
                border_sum += im[k] + im[32 + k] + im[30 * 32 + k] + im[31 * 32 + k] +
                              im[k * 32] + im[k * 32 + 1] + im[k * 32 + 30] + im[k * 32 + 31];
            for (int k = 0; k < 1024; k++) total += im[k];
        }
        cr_assert_eq(border_sum, 0);
        // Fashion-MNIST's mean pixel is about 0.286 of 255 (72.9): a sanity
        // check that the bytes are images, not a shifted header.
        double mean28 = (double)total / (double)(ds->n * 784);
        cr_assert(mean28 > 65.0 && mean28 < 80.0, "mean pixel %f", mean28);
        fmnist_destroy(&ds);
    }
}

// Seeded mutation sweep over a valid gzip IDX file: every result is either a
// clean error or a well-formed array (never a crash).
Test(idx, mutated_files_never_crash) {
    char *dir = test_tmpdir("idx_mut");
    char p[512], q[512];
    snprintf(p, sizeof p, "%s/g.gz", dir);
    snprintf(q, sizeof q, "%s/m.gz", dir);
    uint8_t body[300];
    for (int i = 0; i < 300; i++) body[i] = (uint8_t)(i * 31);
    uint32_t d[3] = {3, 10, 10};
    write_idx(p, 1, MAGIC, 3, d, body, 300);
    FILE *f = fopen(p, "rb");
    uint8_t b[2048], m[2048];
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    uint32_t st = 99;
    int errors = 0;
    for (int it = 0; it < 300; it++) {
        memcpy(m, b, n);
        size_t len = n;
        st = st * 1664525u + 1013904223u;
        m[(st >> 8) % n] ^= (uint8_t)(1 + (st >> 24) % 255);
        if (it % 3 == 0) { st = st * 1664525u + 1013904223u; len = 1 + (st >> 8) % n; }
        f = fopen(q, "wb");
        fwrite(m, 1, len, f);
        fclose(f);
        idx_array a;
        int rc = idx_read(q, &a);
        if (rc == 0) {
            cr_assert(a.data && a.numel > 0 && a.ndim >= 1 && a.ndim <= 4);
            idx_free(&a);
        } else {
            cr_assert(rc < 0 && !a.data);
            errors++;
        }
    }
    cr_log_info("idx mutations: %d rejected of 300", errors);
    cr_assert_gt(errors, 100);
    rm_rf(dir);
    free(dir);
}

// Zero-byte files, plain and as an empty gzip stream: truncated, not a crash.
Test(idx, zero_byte_files) {
    char *dir = test_tmpdir("idx_zero");
    char p[512];
    snprintf(p, sizeof p, "%s/empty", dir);
    FILE *f = fopen(p, "wb");
    fclose(f);
    idx_array a;
    cr_assert_eq(idx_read(p, &a), DATA_ETRUNC);
    cr_assert_null(a.data);
    gzFile g = gzopen(p, "wb");
    gzclose(g);
    cr_assert_eq(idx_read(p, &a), DATA_ETRUNC);
    cr_assert_null(a.data);
    rm_rf(dir);
    free(dir);
}

// Arrays over the 1 MiB first allocation (the buffer doubles as data
// arrives) read back byte for byte, gzip and plain.
Test(idx, multi_mib_arrays_round_trip) {
    char *dir = test_tmpdir("idx_big");
    char p[512];
    snprintf(p, sizeof p, "%s/big", dir);
    const size_t n = 3 * 1000 * 1001;   // 2.9 MiB: three growth steps, last one partial
    uint8_t *body = malloc(n);
    for (size_t i = 0; i < n; i++) body[i] = (uint8_t)((i * 2654435761u) >> 13);
    uint32_t d[3] = {3, 1000, 1001};
    for (int gz = 0; gz < 2; gz++) {
        write_idx(p, gz, MAGIC, 3, d, body, n);
        idx_array a;
        cr_assert_eq(idx_read(p, &a), 0);
        cr_assert_eq(a.numel, (int64_t)n);
        cr_assert_eq(memcmp(a.data, body, n), 0, "gz %d", gz);
        idx_free(&a);
        write_idx(p, gz, MAGIC, 3, d, body, n - 1);   // one byte short
        cr_assert_eq(idx_read(p, &a), DATA_ETRUNC);
        cr_assert_null(a.data);
    }
    free(body);
    rm_rf(dir);
    free(dir);
}

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

// A 20-byte file whose header promises 2^31 bytes is truncated, and reading
// it must not allocate the promise: with the address space capped 512 MiB
// above what the process uses now, the reader still says DATA_ETRUNC (it
// said VEL_ENOMEM when it allocated numel bytes up front). The cap is
// skipped under ASan, whose shadow memory needs a huge address space.
Test(idx, header_promise_is_not_allocated) {
    char *dir = test_tmpdir("idx_promise");
    char p[512];
    snprintf(p, sizeof p, "%s/liar.gz", dir);
    uint8_t body[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint32_t d[2] = {32768, 65536};   // exactly 2^31: the largest accepted
    for (int gz = 0; gz < 2; gz++) {
        write_idx(p, gz, MAGIC, 2, d, body, sizeof body);
#ifndef UNDER_ASAN
        long pages = 0;
        FILE *f = fopen("/proc/self/statm", "r");
        cr_assert(f && fscanf(f, "%ld", &pages) == 1);
        fclose(f);
        struct rlimit lim;
        lim.rlim_cur = lim.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)512 << 20);
        if (gz == 0) cr_assert_eq(setrlimit(RLIMIT_AS, &lim), 0);
#endif
        idx_array a;
        cr_assert_eq(idx_read(p, &a), DATA_ETRUNC, "gz %d", gz);
        cr_assert_null(a.data);
    }
    rm_rf(dir);
    free(dir);
}
