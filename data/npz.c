// npz.c: see npz.h. The ZIP is walked through its central directory (the
// local headers' sizes may be zip64 placeholders), each member's data found
// past its local header, then parsed as NPY: magic, version, the header's
// Python dict ('descr', 'fortran_order', 'shape'), the raw array.
#include "data/npz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/base.h"

static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | rd16(p + 2) << 16; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

typedef struct {
    const uint8_t *data;   // the member's bytes, inside the archive buffer
    uint64_t size;
} member;

// Finds the end-of-central-directory record (and its zip64 form): the
// directory's offset, size and entry count.
static int find_directory(const uint8_t *b, size_t len, uint64_t *cd_off, uint64_t *cd_size, uint64_t *count) {
    if (len < 22) return vel_fail(len >= 4 && rd32(b) == 0x04034b50 ? DATA_ETRUNC : DATA_EMAGIC,
                                  "%zu bytes: not a ZIP (.npz) archive", len);
    size_t lo = len - 22 > 65535 ? len - 22 - 65535 : 0, e = len - 22 + 1;
    while (e-- > lo)   // the record may be followed by a comment of up to 65535 bytes
        if (rd32(b + e) == 0x06054b50 && e + 22 + rd16(b + e + 20) == len) break;
    if (e + 1 == lo || rd32(b + e) != 0x06054b50 || e + 22 + rd16(b + e + 20) != len)
        return vel_fail(rd32(b) == 0x04034b50 ? DATA_ETRUNC : DATA_EMAGIC,
                        "no ZIP end-of-directory record: not an .npz archive, or cut short");
    *count = rd16(b + e + 10);
    *cd_size = rd32(b + e + 12);
    *cd_off = rd32(b + e + 16);
    if (*count == 0xFFFF || *cd_size == 0xFFFFFFFFu || *cd_off == 0xFFFFFFFFu) {
        // zip64: a locator just before the record points at the zip64 record
        if (e < 20 || rd32(b + e - 20) != 0x07064b50) return vel_fail(DATA_ETRUNC, "zip64 locator missing");
        uint64_t z = rd64(b + e - 20 + 8);
        if (z > e - 20 || e - 20 - z < 56 || rd32(b + z) != 0x06064b50)
            return vel_fail(DATA_ETRUNC, "zip64 end-of-directory record missing");
        *count = rd64(b + z + 32);
        *cd_size = rd64(b + z + 40);
        *cd_off = rd64(b + z + 48);
    }
    if (*cd_off > len || *cd_size > len - *cd_off)
        return vel_fail(DATA_ETRUNC, "central directory at %llu (+%llu) beyond the %zu-byte file",
                        (unsigned long long)*cd_off, (unsigned long long)*cd_size, len);
    return 0;
}

// Looks up member `name` ("arr_0.npy"). 1: found; 0: absent; < 0: error.
static int find_member(const uint8_t *b, size_t len, const char *name, member *m) {
    uint64_t off = 0, size = 0, count = 0;
    int rc = find_directory(b, len, &off, &size, &count);
    if (rc) return rc;
    const uint8_t *p = b + off, *end = b + off + size;
    size_t nl = strlen(name);
    for (uint64_t k = 0; k < count; k++) {
        if (end - p < 46 || rd32(p) != 0x02014b50) return vel_fail(DATA_ETRUNC, "central directory entry %llu cut short", (unsigned long long)k);
        uint32_t method = rd16(p + 10), crc = rd32(p + 16), fl = rd16(p + 28), xl = rd16(p + 30), cl = rd16(p + 32);
        uint64_t csize = rd32(p + 20), usize = rd32(p + 24), loc = rd32(p + 42);
        if ((uint64_t)(end - p) < 46ull + fl + xl + cl) return vel_fail(DATA_ETRUNC, "central directory entry %llu cut short", (unsigned long long)k);
        const uint8_t *fname = p + 46, *x = fname + fl, *xe = x + xl;
        p = xe + cl;
        if (fl != nl || memcmp(fname, name, nl)) continue;
        // zip64 extra field (id 1): the 64-bit forms of whichever of usize,
        // csize, offset hold 0xFFFFFFFF, in that order
        while (xe - x >= 4) {
            uint32_t id = rd16(x), dl = rd16(x + 2);
            if ((uint32_t)(xe - x - 4) < dl) return vel_fail(DATA_ETRUNC, "%s: extra field cut short", name);
            const uint8_t *d = x + 4, *de = d + dl;
            if (id == 1) {
                if (usize == 0xFFFFFFFFu) { if (de - d < 8) return vel_fail(DATA_ETRUNC, "%s: zip64 field short", name); usize = rd64(d); d += 8; }
                if (csize == 0xFFFFFFFFu) { if (de - d < 8) return vel_fail(DATA_ETRUNC, "%s: zip64 field short", name); csize = rd64(d); d += 8; }
                if (loc == 0xFFFFFFFFu) { if (de - d < 8) return vel_fail(DATA_ETRUNC, "%s: zip64 field short", name); loc = rd64(d); }
            }
            x = de;
        }
        if (method != 0)
            return vel_fail(DATA_ECORRUPT, "%s is compressed (method %u; np.savez_compressed?): only stored members are read; "
                            "save with np.savez", name, method);
        if (csize != usize) return vel_fail(DATA_ECORRUPT, "%s: stored member with sizes %llu != %llu", name,
                                            (unsigned long long)csize, (unsigned long long)usize);
        if (loc > len || len - loc < 30 || rd32(b + loc) != 0x04034b50)
            return vel_fail(DATA_ETRUNC, "%s: local header at %llu missing", name, (unsigned long long)loc);
        uint64_t data = loc + 30 + rd16(b + loc + 26) + rd16(b + loc + 28);
        if (data > len || len - data < usize)
            return vel_fail(DATA_ETRUNC, "%s: %llu bytes promised, the file ends first", name, (unsigned long long)usize);
        m->data = b + data;
        m->size = usize;
        uLong c = crc32(0L, Z_NULL, 0);
        for (uint64_t o = 0; o < usize; o += (1u << 30))
            c = crc32(c, m->data + o, (uInt)(usize - o < (1u << 30) ? usize - o : (1u << 30)));
        if ((uint32_t)c != crc) return vel_fail(DATA_ECORRUPT, "%s: CRC-32 mismatch (corrupt archive)", name);
        return 1;
    }
    return 0;
}

typedef struct {
    char descr[8];
    int ndim;
    int64_t shape[4];
    const uint8_t *data;
    uint64_t nbytes;   // bytes after the header
} npy;

// Value text of 'key' in the header dict, or NULL.
static const char *dict_value(const char *h, const char *key) {
    char k[32];
    snprintf(k, sizeof k, "'%s'", key);
    const char *p = strstr(h, k);
    if (!p) return NULL;
    p += strlen(k);
    while (*p == ' ') p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

static int parse_npy(const member *m, const char *name, npy *a) {
    static const uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
    if (m->size < 10 || memcmp(m->data, magic, 6)) return vel_fail(DATA_EMAGIC, "%s: not an NPY array", name);
    uint32_t major = m->data[6], pre = major == 1 ? 10 : 12;
    if (major < 1 || major > 3) return vel_fail(DATA_EDIMS, "%s: NPY version %u", name, major);
    if (m->size < pre) return vel_fail(DATA_ETRUNC, "%s: NPY header cut short", name);
    uint64_t hl = major == 1 ? rd16(m->data + 8) : rd32(m->data + 8);
    if (hl > 65536) return vel_fail(DATA_EDIMS, "%s: NPY header of %llu bytes", name, (unsigned long long)hl);
    if (m->size - pre < hl) return vel_fail(DATA_ETRUNC, "%s: NPY header cut short", name);
    char h[65537];
    memcpy(h, m->data + pre, hl);
    h[hl] = 0;
    if (strlen(h) != hl) return vel_fail(DATA_EDIMS, "%s: NUL byte in the NPY header", name);
    const char *d = dict_value(h, "descr"), *fo = dict_value(h, "fortran_order"), *s = dict_value(h, "shape");
    if (!d || !fo || !s || *d != '\'' || *s != '(')
        return vel_fail(DATA_EDIMS, "%s: NPY header lacks descr, fortran_order or shape", name);
    size_t dl = strcspn(d + 1, "'");
    if (d[1 + dl] != '\'' || dl >= sizeof a->descr) return vel_fail(DATA_EDIMS, "%s: bad descr", name);
    memcpy(a->descr, d + 1, dl);
    a->descr[dl] = 0;
    if (strncmp(fo, "False", 5)) return vel_fail(DATA_EDIMS, "%s: Fortran-ordered arrays are not read", name);
    a->ndim = 0;
    s++;
    for (;;) {
        while (*s == ' ') s++;
        if (*s == ')') break;
        if (*s < '0' || *s > '9' || a->ndim == 4) return vel_fail(DATA_EDIMS, "%s: shape of more than 4 dims, or not integers", name);
        int64_t v = 0;
        while (*s >= '0' && *s <= '9') {
            if (v > (NPZ_MAX_BYTES - 9) / 10) return vel_fail(DATA_EDIMS, "%s: a dimension too large", name);
            v = v * 10 + (*s++ - '0');
        }
        a->shape[a->ndim++] = v;
        while (*s == ' ') s++;
        if (*s == ',') s++;
        else if (*s != ')') return vel_fail(DATA_EDIMS, "%s: shape is not a tuple of integers", name);
    }
    a->data = m->data + pre + hl;
    a->nbytes = m->size - pre - hl;
    return 0;
}

// Checks the byte count of an array of `elem`-byte elements.
static int check_size(const npy *a, const char *name, int elem) {
    int64_t n = elem;
    for (int i = 0; i < a->ndim; i++) {
        if (a->shape[i] < 1) return vel_fail(DATA_EDIMS, "%s: a dimension is 0", name);
        if (a->shape[i] > NPZ_MAX_BYTES / n) return vel_fail(DATA_EDIMS, "%s: more than %lld bytes", name, (long long)NPZ_MAX_BYTES);
        n *= a->shape[i];
    }
    if (a->nbytes < (uint64_t)n) return vel_fail(DATA_ETRUNC, "%s: %lld bytes of data expected, %llu present", name, (long long)n,
                                                 (unsigned long long)a->nbytes);
    if (a->nbytes > (uint64_t)n) return vel_fail(DATA_ETRAILING, "%s: %llu bytes after the %lld-byte array", name,
                                                 (unsigned long long)(a->nbytes - (uint64_t)n), (long long)n);
    return 0;
}

static int read_images(const uint8_t *buf, size_t len, npz_images *out) {
    member m;
    int rc = find_member(buf, len, "arr_0.npy", &m);
    if (rc < 0) return rc;
    if (rc == 0) return vel_fail(DATA_EEMPTY, "no arr_0 member (ADM layout: arr_0 = images)");
    npy a;
    if ((rc = parse_npy(&m, "arr_0", &a))) return rc;
    if (strcmp(a.descr, "|u1") && strcmp(a.descr, "<u1") && strcmp(a.descr, "u1"))
        return vel_fail(DATA_EDIMS, "arr_0: dtype '%s', expected uint8 ('|u1')", a.descr);
    if (a.ndim == 3) a.shape[a.ndim++] = 1;
    if (a.ndim != 4 || (a.shape[3] != 1 && a.shape[3] != 3))
        return vel_fail(DATA_EDIMS, "arr_0: shape must be (n, H, W, C) with C 1 or 3");
    if (a.shape[1] > NPZ_MAX_SIDE || a.shape[2] > NPZ_MAX_SIDE)
        return vel_fail(DATA_EDIMS, "arr_0: images larger than %d pixels a side", NPZ_MAX_SIDE);
    if ((rc = check_size(&a, "arr_0", 1))) return rc;
    out->n = a.shape[0];
    out->H = (int)a.shape[1];
    out->W = (int)a.shape[2];
    out->C = (int)a.shape[3];
    const char *lname = "labels";
    rc = find_member(buf, len, "labels.npy", &m);
    if (rc == 0) { lname = "arr_1"; rc = find_member(buf, len, "arr_1.npy", &m); }
    if (rc < 0) return rc;
    npy l = {0};
    if (rc == 1) {
        if ((rc = parse_npy(&m, lname, &l))) return rc;
        int w = !strcmp(l.descr, "<i4") ? 4 : !strcmp(l.descr, "<i8") ? 8 : 0;
        if (!w) return vel_fail(DATA_EDIMS, "%s: dtype '%s', expected int32 or int64 ('<i4', '<i8')", lname, l.descr);
        if (l.ndim != 1) return vel_fail(DATA_EDIMS, "%s: shape must be (n,)", lname);
        if (l.shape[0] != out->n)
            return vel_fail(DATA_EMISMATCH, "%s: %lld labels for %lld images", lname, (long long)l.shape[0], (long long)out->n);
        if ((rc = check_size(&l, lname, w))) return rc;
        if (!(out->labels = malloc(sizeof(int32_t) * (size_t)out->n))) return VEL_ENOMEM;
        for (int64_t i = 0; i < out->n; i++) {
            int64_t v = w == 4 ? (int32_t)rd32(l.data + 4 * i) : (int64_t)rd64(l.data + 8 * i);
            if (v < INT32_MIN || v > INT32_MAX) return vel_fail(DATA_ELABEL, "%s[%lld] = %lld", lname, (long long)i, (long long)v);
            out->labels[i] = (int32_t)v;
        }
    }
    size_t bytes = (size_t)out->n * out->H * out->W * out->C;
    if (!(out->u8 = malloc(bytes))) return VEL_ENOMEM;
    memcpy(out->u8, a.data, bytes);
    return 0;
}

int npz_images_parse(const uint8_t *buf, size_t len, npz_images *out) {
    memset(out, 0, sizeof *out);
    if (!buf && len) return VEL_EINVAL;
    int rc = read_images(buf ? buf : (const uint8_t *)"", len, out);
    if (rc) npz_images_free(out);
    return rc;
}

int npz_images_read(const char *path, npz_images *out) {
    memset(out, 0, sizeof *out);
    struct stat st;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return vel_fail(VEL_EIO, "%s: %s", path, strerror(errno));
    if (fstat(fd, &st)) { close(fd); return vel_fail(VEL_EIO, "%s: %s", path, strerror(errno)); }
    if (!S_ISREG(st.st_mode)) { close(fd); return vel_fail(DATA_ENOTFILE, "%s", path); }
    if (st.st_size == 0) { close(fd); return vel_fail(DATA_EEMPTY_FILE, "%s", path); }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return vel_fail(VEL_EIO, "%s: mmap: %s", path, strerror(errno));
    int rc = npz_images_parse(map, (size_t)st.st_size, out);
    munmap(map, (size_t)st.st_size);
    if (rc) {
        char d[512];   // prefix the path: vel_fail rewrites the buffer it would read
        snprintf(d, sizeof d, "%s", vel_error_detail());
        vel_fail(rc, "%s: %s", path, d);
    }
    return rc;
}

void npz_images_free(npz_images *im) {
    if (!im) return;
    free(im->u8);
    free(im->labels);
    memset(im, 0, sizeof *im);
}
