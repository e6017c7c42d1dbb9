// safetensors.c: safetensors parsing, validation and atomic writing (see
// safetensors.h). Parsing is O(n log n) in the number of tensors: one pass
// over the JSON, then a sort by name (duplicates) and one by offset (overlap
// and gaps). Data is never copied on open; st_read_f32 converts on demand.
#include "nn/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "safetensors I/O assumes a little-endian host");

struct st_file {
    st_entry *e;           // sorted by name
    int n;
    char **meta;           // 2*nmeta strings: key, value, ...
    int nmeta;
    char *pool;            // names and metadata strings
    const unsigned char *data;   // start of the byte buffer
    uint64_t data_len;
    void *map;             // mmap base (st_open) or NULL (st_parse)
    size_t map_len;
};

// File dtype names of the format <-> ours.
static const struct { const char *name; dtype_t dt; } ST_DTYPES[] = {
    {"F32", DT_F32}, {"BF16", DT_BF16}, {"F16", DT_F16}, {"U8", DT_U8}, {"I32", DT_I32},
};

static int st_dtype_parse(const char *s, dtype_t *out) {
    for (size_t i = 0; i < sizeof ST_DTYPES / sizeof ST_DTYPES[0]; i++)
        if (strcmp(s, ST_DTYPES[i].name) == 0) { *out = ST_DTYPES[i].dt; return 0; }
    return -1;
}

static const char *st_dtype_str(dtype_t dt) {
    for (size_t i = 0; i < sizeof ST_DTYPES / sizeof ST_DTYPES[0]; i++)
        if (ST_DTYPES[i].dt == dt) return ST_DTYPES[i].name;
    return NULL;
}

// A JSON number that is an exact non-negative integer below 2^53.
static int json_u64(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return -1;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(uint64_t)d) return -1;
    *out = (uint64_t)d;
    return 0;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const st_entry *)a)->name, ((const st_entry *)b)->name);
}

static int cmp_cstr(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_offset(const void *a, const void *b) {
    const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

void st_close(st_file **fp) {
    if (!fp || !*fp) return;
    st_file *f = *fp;
    free(f->e);
    free(f->meta);
    free(f->pool);
    if (f->map) munmap(f->map, f->map_len);
    free(f);
    *fp = NULL;
}

// Copies s into the pool at *pos (pool was sized beforehand).
static char *pool_put(char *pool, size_t *pos, const char *s) {
    size_t n = strlen(s) + 1;
    char *p = pool + *pos;
    memcpy(p, s, n);
    *pos += n;
    return p;
}

static int parse_entry(const cJSON *item, st_entry *e, uint64_t data_len) {
    const char *nm = item->string;
    if (!cJSON_IsObject(item))
        return vel_fail(CKPT_EHEADER, "tensor '%s': entry is not a JSON object", nm);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(jd) || !cJSON_IsArray(js) || !cJSON_IsArray(jo))
        return vel_fail(CKPT_EHEADER,
                    "tensor '%s': needs string 'dtype', array 'shape', array 'data_offsets'", nm);
    if (st_dtype_parse(jd->valuestring, &e->dtype) != 0)
        return vel_fail(CKPT_EDTYPE, "tensor '%s' is %.40s; supported: F32, BF16, F16, U8, I32", nm,
                        jd->valuestring);   // a valid safetensors dtype (F64) is not "unknown"
    int nd = cJSON_GetArraySize(js);
    if (nd > TENSOR_MAX_DIMS)
        return vel_fail(CKPT_EHEADER, "tensor '%s': %d dims, at most %d supported", nm, nd,
                    TENSOR_MAX_DIMS);
    e->ndim = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, js) {
        uint64_t v;
        if (json_u64(d, &v) != 0 || v > (uint64_t)INT64_MAX)
            return vel_fail(CKPT_EHEADER, "tensor '%s': shape entries must be integers >= 0", nm);
        e->shape[e->ndim++] = (int64_t)v;
    }
    uint64_t off[2];
    if (cJSON_GetArraySize(jo) != 2 || json_u64(jo->child, &off[0]) != 0 ||
        json_u64(jo->child->next, &off[1]) != 0)
        return vel_fail(CKPT_EHEADER, "tensor '%s': data_offsets must be two integers >= 0", nm);
    e->begin = off[0];
    e->end = off[1];
    if (e->begin > e->end || e->end > data_len)
        return vel_fail(CKPT_EOFFSETS,
                    "tensor '%s': data_offsets [%llu, %llu] outside the %llu-byte buffer", nm,
                    (unsigned long long)e->begin, (unsigned long long)e->end,
                    (unsigned long long)data_len);
    e->numel = shape_numel_checked(e->ndim, e->shape);
    uint64_t es = dtype_size(e->dtype);
    if (e->numel < 0 || (uint64_t)e->numel > UINT64_MAX / es ||
        (uint64_t)e->numel * es != e->end - e->begin)
        return vel_fail(CKPT_ESIZE,
                    "tensor '%s': shape x %s size is not its byte length %llu", nm,
                    jd->valuestring, (unsigned long long)(e->end - e->begin));
    return 0;
}

static int parse_header(st_file *f, const char *hdr, size_t hlen) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, hlen, &end, 0);
    if (!root) {
        size_t at = end ? (size_t)(end - hdr) : 0;
        return vel_fail(CKPT_EJSON, "header JSON does not parse (near byte %zu of %zu)", at, hlen);
    }
    int rc = 0;
    // Only whitespace may follow the object (the writers pad with spaces).
    for (const char *p = end; p < hdr + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            rc = vel_fail(CKPT_EJSON, "trailing bytes after the header JSON (byte %zu)",
                      (size_t)(p - hdr));
            goto out;
        }
    if (!cJSON_IsObject(root)) {
        rc = vel_fail(CKPT_EJSON, "header is not a JSON object");
        goto out;
    }
    // Sizes first, then one pool for every string.
    int n = 0, nmeta = 0, seen_meta = 0;
    size_t pool_bytes = 1;
    const cJSON *it;
    cJSON_ArrayForEach(it, root) {
        if (!it->string) { rc = vel_fail(CKPT_EJSON, "header entry without a name"); goto out; }
        if (strcmp(it->string, "__metadata__") == 0) {
            if (seen_meta++) { rc = vel_fail(CKPT_EDUP, "duplicate '__metadata__'"); goto out; }
            if (!cJSON_IsObject(it)) {
                rc = vel_fail(CKPT_EMETA, "'__metadata__' is not an object");
                goto out;
            }
            const cJSON *m;
            cJSON_ArrayForEach(m, it) {
                if (!m->string || !cJSON_IsString(m)) {
                    rc = vel_fail(CKPT_EMETA, "metadata '%s' is not a string",
                              m->string ? m->string : "?");
                    goto out;
                }
                pool_bytes += strlen(m->string) + strlen(m->valuestring) + 2;
                nmeta++;
            }
        } else {
            pool_bytes += strlen(it->string) + 1;
            n++;
        }
    }
    f->e = calloc((size_t)n + 1, sizeof *f->e);
    f->meta = calloc(2 * (size_t)nmeta + 1, sizeof *f->meta);
    f->pool = malloc(pool_bytes);
    if (!f->e || !f->meta || !f->pool) { rc = vel_fail(VEL_ENOMEM, "out of memory"); goto out; }
    size_t pos = 0;
    cJSON_ArrayForEach(it, root) {
        if (strcmp(it->string, "__metadata__") == 0) {
            const cJSON *m;
            cJSON_ArrayForEach(m, it) {
                f->meta[2 * f->nmeta] = pool_put(f->pool, &pos, m->string);
                f->meta[2 * f->nmeta + 1] = pool_put(f->pool, &pos, m->valuestring);
                f->nmeta++;
            }
            continue;
        }
        st_entry *e = &f->e[f->n];
        e->name = pool_put(f->pool, &pos, it->string);
        if ((rc = parse_entry(it, e, f->data_len)) != 0) goto out;
        f->n++;
    }
    qsort(f->e, (size_t)f->n, sizeof *f->e, cmp_name);
    for (int i = 1; i < f->n; i++)
        if (strcmp(f->e[i - 1].name, f->e[i].name) == 0) {
            rc = vel_fail(CKPT_EDUP, "tensor '%s' appears twice in the header", f->e[i].name);
            goto out;
        }
    if (f->nmeta > 1) {   // duplicate keys: sort a copy of the key pointers
        char **keys = malloc((size_t)f->nmeta * sizeof *keys);
        if (!keys) { rc = vel_fail(VEL_ENOMEM, "out of memory"); goto out; }
        for (int i = 0; i < f->nmeta; i++) keys[i] = f->meta[2 * i];
        qsort(keys, (size_t)f->nmeta, sizeof *keys, cmp_cstr);
        for (int i = 1; i < f->nmeta && rc == 0; i++)
            if (strcmp(keys[i - 1], keys[i]) == 0)
                rc = vel_fail(CKPT_EDUP, "metadata key '%s' appears twice", keys[i]);
        free(keys);
        if (rc != 0) goto out;
    }
    // The tensors must tile [0, data_len): sort by offset, walk once.
    {
        const st_entry **by = malloc(((size_t)f->n + 1) * sizeof *by);
        if (!by) { rc = vel_fail(VEL_ENOMEM, "out of memory"); goto out; }
        for (int i = 0; i < f->n; i++) by[i] = &f->e[i];
        qsort(by, (size_t)f->n, sizeof *by, cmp_offset);
        uint64_t at = 0;
        for (int i = 0; i < f->n && rc == 0; i++) {
            if (by[i]->begin > at)
                rc = vel_fail(CKPT_EOFFSETS, "gap of %llu bytes before tensor '%s'",
                          (unsigned long long)(by[i]->begin - at), by[i]->name);
            else if (by[i]->begin < at)
                rc = vel_fail(CKPT_EOFFSETS, "tensor '%s' overlaps the tensor before it",
                          by[i]->name);
            at = by[i]->end;
        }
        if (rc == 0 && at != f->data_len)
            rc = vel_fail(CKPT_EOFFSETS, "tensors cover %llu of the %llu data bytes",
                      (unsigned long long)at, (unsigned long long)f->data_len);
        free(by);
    }
out:
    cJSON_Delete(root);
    return rc;
}

int st_parse(st_file **out, const void *bytes, size_t len) {
    *out = NULL;
    if (len < 8)
        return vel_fail(CKPT_ETRUNC, "file is %zu bytes, shorter than the 8-byte header length", len);
    const unsigned char *b = bytes;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | b[i];
    if (hlen > len - 8)
        return vel_fail(CKPT_ETRUNC, "header length %llu runs past the end of the %zu-byte file",
                    (unsigned long long)hlen, len);
    if (hlen > ST_MAX_HEADER)
        return vel_fail(CKPT_ETOOBIG, "header length %llu over the %u-byte limit",
                    (unsigned long long)hlen, ST_MAX_HEADER);
    st_file *f = calloc(1, sizeof *f);
    if (!f) return vel_fail(VEL_ENOMEM, "out of memory");
    f->data = b + 8 + hlen;
    f->data_len = len - 8 - hlen;
    int rc = parse_header(f, (const char *)b + 8, (size_t)hlen);
    if (rc != 0) {
        st_close(&f);
        return rc;
    }
    *out = f;
    return 0;
}

int st_open(st_file **out, const char *path) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)   // a missing file is an input error (exit 2), not an I/O failure
        return vel_fail(errno == ENOENT ? VEL_ENOTFOUND : VEL_EIO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return vel_fail(VEL_EIO, "cannot stat '%s': %s", path, strerror(e));
    }
    size_t len = (size_t)sb.st_size;
    void *map = NULL;
    if (len > 0) {
        map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return vel_fail(VEL_EIO, "cannot map '%s': %s", path, strerror(e));
        }
    }
    close(fd);
    static const unsigned char empty[1];
    int rc = st_parse(out, map ? map : empty, len);
    if (rc != 0) {
        if (map) munmap(map, len);
        // Prefix the path once, keeping the specific message.
        char tmp[1024];
        snprintf(tmp, sizeof tmp, "%s", vel_error_detail());
        return vel_fail(rc, "%.200s: %.800s", path, tmp);
    }
    (*out)->map = map;
    (*out)->map_len = len;
    return 0;
}

int st_count(const st_file *f) { return f->n; }

const st_entry *st_get(const st_file *f, int i) {
    CHECK(i >= 0 && i < f->n);
    return &f->e[i];
}

int st_find(const st_file *f, const char *name) {
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(f->e[mid].name, name);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
}

const void *st_data(const st_file *f, int i) {
    CHECK(i >= 0 && i < f->n);
    return f->data + f->e[i].begin;
}

int st_meta_count(const st_file *f) { return f->nmeta; }

const char *st_meta_get(const st_file *f, const char *key) {
    for (int i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta[2 * i], key) == 0) return f->meta[2 * i + 1];
    return NULL;
}

void st_meta_at(const st_file *f, int i, const char **key, const char **value) {
    CHECK(i >= 0 && i < f->nmeta);
    *key = f->meta[2 * i];
    *value = f->meta[2 * i + 1];
}

int st_meta_read(const char *path, const char *key, char *out, int outlen) {
    st_file *f;
    int rc = st_open(&f, path);
    if (rc) return rc;
    const char *v = st_meta_get(f, key);
    if (!v) rc = VEL_ENOTFOUND;
    else snprintf(out, outlen, "%s", v);
    st_close(&f);
    return rc;
}

int st_read_f32(const st_file *f, int i, float *out, int64_t n) {
    const st_entry *e = st_get(f, i);
    if (n != e->numel)
        return vel_fail(VEL_ESHAPE, "tensor '%s' has %lld elements, caller expects %lld", e->name,
                    (long long)e->numel, (long long)n);
    const unsigned char *p = st_data(f, i);
    switch (e->dtype) {
    case DT_F32:   // memcpy: data may be unaligned; n == 0 may come with out == NULL
        if (n > 0) memcpy(out, p, (size_t)n * 4);
        break;
    case DT_BF16:
    case DT_F16:
        for (int64_t k = 0; k < n; k++) {
            uint16_t h;
            memcpy(&h, p + 2 * k, 2);
            out[k] = e->dtype == DT_BF16 ? bf16_to_f32(h) : f16_to_f32(h);
        }
        break;
    default:
        return vel_fail(CKPT_EDTYPE, "tensor '%s': dtype %s cannot be read as floats", e->name,
                    st_dtype_str(e->dtype));
    }
    int64_t at = vel_first_nonfinite(out, n);   // a NaN weight would only surface as a NaN loss
    if (at >= 0)
        return vel_fail(VEL_ENONFINITE, "tensor '%s'[%lld] = %g", e->name, (long long)at, (double)out[at]);
    return 0;
}

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t at = 0;
    at += (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < ndim && at < cap; i++)
        at += (size_t)snprintf(buf + at, cap - at, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (at < cap) snprintf(buf + at, cap - at, ")");
}

static int same_shape(const st_entry *e, int ndim, const int64_t *shape) {
    if (e->ndim != ndim) return 0;
    for (int i = 0; i < ndim; i++)
        if (e->shape[i] != shape[i]) return 0;
    return 1;
}

int st_load_tensor(const st_file *f, const char *name, float *out, int ndim,
                   const int64_t *shape) {
    int i = st_find(f, name);
    if (i < 0) return vel_fail(CKPT_EMISSING, "tensor '%s' is not in the file", name);
    const st_entry *e = &f->e[i];
    if (!same_shape(e, ndim, shape)) {
        char a[128], b[128];
        shape_str(a, sizeof a, e->ndim, e->shape);
        shape_str(b, sizeof b, ndim, shape);
        return vel_fail(CKPT_ESHAPE, "tensor '%s': file shape %s, expected %s", name, a, b);
    }
    return st_read_f32(f, i, out, e->numel);
}

// ---- writing ----

// Appends s as a JSON string (quotes, escapes) to buf; returns the new length.
static size_t json_str(char *buf, size_t at, const char *s) {
    static const char hex[] = "0123456789abcdef";
    buf[at++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            buf[at++] = '\\';
            buf[at++] = (char)*p;
        } else if (*p < 0x20) {
            memcpy(buf + at, "\\u00", 4);
            buf[at + 4] = hex[*p >> 4];
            buf[at + 5] = hex[*p & 15];
            at += 6;
        } else {
            buf[at++] = (char)*p;
        }
    }
    buf[at++] = '"';
    return at;
}

static int write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int write_tensor_data(int fd, const st_tensor_out *t, int64_t numel) {
    if (t->dtype == DT_F32) return write_all(fd, t->data, (size_t)numel * 4);
    uint16_t buf[4096];
    for (int64_t k = 0; k < numel; k += 4096) {
        int64_t m = numel - k < 4096 ? numel - k : 4096;
        for (int64_t j = 0; j < m; j++)
            buf[j] = t->dtype == DT_BF16 ? f32_to_bf16(t->data[k + j]) : f32_to_f16(t->data[k + j]);
        if (write_all(fd, buf, (size_t)m * 2) != 0) return -1;
    }
    return 0;
}

int st_write(const char *path, const st_tensor_out *t, int n, const st_kv *meta, int nmeta) {
    if (n < 0 || nmeta < 0) return vel_fail(VEL_EINVAL, "negative tensor or metadata count");
    // Validate and size the header: every character may grow to 6 when escaped.
    size_t cap = 64;
    int64_t *numel = malloc(((size_t)n + 1) * sizeof *numel);
    const char **names = malloc(((size_t)n + 1) * sizeof *names);
    if (!numel || !names) {
        free(numel);
        free(names);
        return vel_fail(VEL_ENOMEM, "out of memory");
    }
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        names[i] = t[i].name;
        if (!t[i].name || !t[i].name[0] || strcmp(t[i].name, "__metadata__") == 0)
            rc = vel_fail(VEL_EINVAL, "tensor %d: empty or reserved name", i);
        else if (!st_dtype_str(t[i].dtype) || dtype_size(t[i].dtype) == 0 ||
                 (t[i].dtype != DT_F32 && t[i].dtype != DT_BF16 && t[i].dtype != DT_F16))
            rc = vel_fail(CKPT_EDTYPE, "tensor '%s': can only write F32, BF16, F16", t[i].name);
        else if (t[i].ndim < 0 || t[i].ndim > TENSOR_MAX_DIMS ||
                 (numel[i] = shape_numel_checked(t[i].ndim, t[i].shape)) < 0)
            rc = vel_fail(VEL_EINVAL, "tensor '%s': bad shape", t[i].name);
        else if (numel[i] > 0 && !t[i].data)
            rc = vel_fail(VEL_EINVAL, "tensor '%s': no data", t[i].name);
        else if (numel[i] > 0 && vel_first_nonfinite(t[i].data, numel[i]) >= 0)   // e.g. NaN optimizer state
            rc = vel_fail(VEL_ENONFINITE, "tensor '%s'[%lld] is not finite", t[i].name,
                          (long long)vel_first_nonfinite(t[i].data, numel[i]));
        else
            cap += 6 * strlen(t[i].name) + 96 + 24 * (size_t)t[i].ndim;
    }
    for (int i = 0; i < nmeta && rc == 0; i++) {
        if (!meta[i].key || !meta[i].value)
            rc = vel_fail(VEL_EINVAL, "metadata pair %d has a NULL key or value", i);
        else
            cap += 6 * (strlen(meta[i].key) + strlen(meta[i].value)) + 8;
    }
    if (rc == 0 && n > 1) {
        qsort(names, (size_t)n, sizeof *names, cmp_cstr);
        for (int i = 1; i < n && rc == 0; i++)
            if (strcmp(names[i - 1], names[i]) == 0)
                rc = vel_fail(CKPT_EDUP, "tensor '%s' given twice", names[i]);
    }
    free(names);
    char *hdr = rc == 0 ? malloc(cap + 8) : NULL;
    if (rc == 0 && !hdr) rc = vel_fail(VEL_ENOMEM, "out of memory");
    if (rc != 0) {
        free(numel);
        free(hdr);
        return rc;
    }
    size_t at = 0;
    uint64_t off = 0;
    hdr[at++] = '{';
    if (nmeta > 0) {
        at = json_str(hdr, at, "__metadata__");
        hdr[at++] = ':';
        hdr[at++] = '{';
        for (int i = 0; i < nmeta; i++) {
            if (i) hdr[at++] = ',';
            at = json_str(hdr, at, meta[i].key);
            hdr[at++] = ':';
            at = json_str(hdr, at, meta[i].value);
        }
        hdr[at++] = '}';
    }
    for (int i = 0; i < n; i++) {
        if (i || nmeta > 0) hdr[at++] = ',';
        at = json_str(hdr, at, t[i].name);
        at += (size_t)sprintf(hdr + at, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype_str(t[i].dtype));
        for (int d = 0; d < t[i].ndim; d++)
            at += (size_t)sprintf(hdr + at, d ? ",%lld" : "%lld", (long long)t[i].shape[d]);
        uint64_t bytes = (uint64_t)numel[i] * dtype_size(t[i].dtype);
        at += (size_t)sprintf(hdr + at, "],\"data_offsets\":[%llu,%llu]}",
                              (unsigned long long)off, (unsigned long long)(off + bytes));
        off += bytes;
    }
    hdr[at++] = '}';
    while (at % 8) hdr[at++] = ' ';   // data starts 8-byte aligned, as the official writer does
    CHECK(at <= cap + 8);

    // Temp file in the same directory, so rename() is atomic.
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) {
        free(numel);
        free(hdr);
        return vel_fail(VEL_ENOMEM, "out of memory");
    }
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rc = vel_fail(VEL_EIO, "cannot create temp file for '%s': %s", path, strerror(errno));
        goto done;
    }
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)((uint64_t)at >> (8 * i));
    int ok = fchmod(fd, 0644) == 0 && write_all(fd, lenb, 8) == 0 && write_all(fd, hdr, at) == 0;
    for (int i = 0; i < n && ok; i++) ok = write_tensor_data(fd, &t[i], numel[i]) == 0;
    ok = ok && fsync(fd) == 0;
    int e = errno;
    if (close(fd) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = 0;
        e = errno;
    }
    if (!ok) {
        unlink(tmp);
        rc = vel_fail(VEL_EIO, "writing '%s' failed: %s", path, strerror(e));
        goto done;
    }
    // fsync the directory so the rename itself survives a crash.
    {
        char *dir = strdup(path);
        if (dir) {
            char *slash = strrchr(dir, '/');
            const char *d = slash ? (slash == dir ? "/" : (*slash = 0, dir)) : ".";
            int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd >= 0) {
                (void)fsync(dfd);
                close(dfd);
            }
            free(dir);
        }
    }
done:
    free(tmp);
    free(numel);
    free(hdr);
    return rc;
}

int st_save_params(const char *path, const param_table *pt, dtype_t dtype, const st_kv *meta,
                   int nmeta) {
    if (!pt->values) return vel_fail(VEL_EINVAL, "parameter table not committed");
    st_tensor_out *t = calloc((size_t)pt->count + 1, sizeof *t);
    if (!t) return vel_fail(VEL_ENOMEM, "out of memory");
    for (int i = 0; i < pt->count; i++) {
        const param_info *p = &pt->info[i];
        t[i] = (st_tensor_out){p->name, dtype, p->ndim, p->shape, pt->values + p->offset};
    }
    int rc = st_write(path, t, pt->count, meta, nmeta);
    free(t);
    return rc;
}

// Uses only param_table's fields (no params.c calls) so the fuzzer, which
// links nn/base.c nn/tensor.c nn/safetensors.c only, still links.
int st_load_params(const char *path, param_table *pt) {
    if (!pt->values) return vel_fail(VEL_EINVAL, "parameter table not committed");
    st_file *f;
    int rc = st_open(&f, path);
    if (rc != 0) return rc;
    char *used = calloc((size_t)f->n + 1, 1);
    if (!used) {
        st_close(&f);
        return vel_fail(VEL_ENOMEM, "out of memory");
    }
    // Check everything before touching the table; name the first few culprits.
    char list[200] = "";
    int nmiss = 0, nshape = 0, nextra = 0;
    size_t ll = 0;
    for (int i = 0; i < pt->count; i++) {
        const param_info *p = &pt->info[i];
        int k = st_find(f, p->name);
        if (k < 0) {
            if (nmiss++ < 4 && ll < sizeof list)
                ll += (size_t)snprintf(list + ll, sizeof list - ll, "%s'%s'", nmiss > 1 ? ", " : "", p->name);
            continue;
        }
        used[k] = 1;
        if (!same_shape(&f->e[k], p->ndim, p->shape) && nmiss == 0 && nshape++ == 0) {
            char a[128], b[128];
            shape_str(a, sizeof a, f->e[k].ndim, f->e[k].shape);
            shape_str(b, sizeof b, p->ndim, p->shape);
            rc = vel_fail(CKPT_ESHAPE, "%s: tensor '%s' has shape %s, the model expects %s",
                      path, p->name, a, b);
        }
    }
    if (nmiss > 0) {
        rc = vel_fail(CKPT_EMISSING, "%s: %d tensor(s) missing: %s%s", path, nmiss, list,
                  nmiss > 4 ? ", ..." : "");
    } else if (rc == 0) {
        for (int k = 0; k < f->n; k++) {
            if (used[k]) continue;
            if (nextra++ < 4 && ll < sizeof list)
                ll += (size_t)snprintf(list + ll, sizeof list - ll, "%s'%s'", nextra > 1 ? ", " : "", f->e[k].name);
        }
        if (nextra > 0)
            rc = vel_fail(CKPT_EEXTRA, "%s: %d tensor(s) not in the model: %s%s", path, nextra,
                      list, nextra > 4 ? ", ..." : "");
    }
    for (int k = 0; k < f->n && rc == 0; k++)
        if (f->e[k].dtype != DT_F32 && f->e[k].dtype != DT_BF16 && f->e[k].dtype != DT_F16)
            rc = vel_fail(CKPT_EDTYPE, "%s: tensor '%s' is %s, not a float type", path,
                      f->e[k].name, st_dtype_str(f->e[k].dtype));
    for (int i = 0; i < pt->count && rc == 0; i++) {
        const param_info *p = &pt->info[i];
        rc = st_read_f32(f, st_find(f, p->name), pt->values + p->offset, p->numel);
    }
    free(used);
    st_close(&f);
    return rc;
}
