// meta.c: store_meta checks and the "__meta__" msgpack codec (see meta.h).
#include "store/meta.h"

#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "store/internal.h"
#include "store/mpscan.h"

// Shapes are bounded so that 4 tensors of a record stay far from size_t and
// LMDB limits; a 1024x1024x1024 latent is already absurd for this system.
#define DIM_MAX (1 << 20)
#define NUMEL_MAX (INT64_C(1) << 30)

static int copy_str(char *dst, const char *src, const char *what) {
    if (!src) src = "";
    size_t n = strlen(src);
    if (n >= STORE_STR_MAX)
        return vel_fail(VEL_ERANGE, "meta: %s is %zu bytes, at most %d allowed", what, n,
                          STORE_STR_MAX - 1);
    memcpy(dst, src, n + 1);
    return 0;
}

int store_meta_init(store_meta *m, const char *tokenizer_hash, int64_t C, int64_t H,
                    int64_t W, bool has_flip, const char *dataset, uint64_t dataset_size,
                    const char *code_version) {
    memset(m, 0, sizeof *m);
    int rc;
    if ((rc = copy_str(m->tokenizer_hash, tokenizer_hash, "tokenizer hash"))) return rc;
    if ((rc = copy_str(m->dataset, dataset, "dataset name"))) return rc;
    if ((rc = copy_str(m->code_version, code_version, "code version"))) return rc;
    m->shape[0] = C; m->shape[1] = H; m->shape[2] = W;
    m->dtype = DT_F32;
    m->has_flip = has_flip;
    m->dataset_size = dataset_size;
    return store_meta_validate(m);
}

int64_t store_meta_numel(const store_meta *m) {
    return m->shape[0] * m->shape[1] * m->shape[2];
}

static bool str_ok(const char *s) { return memchr(s, 0, STORE_STR_MAX) != NULL; }

int store_meta_validate(const store_meta *m) {
    for (int i = 0; i < 3; i++)
        if (m->shape[i] < 1 || m->shape[i] > DIM_MAX)
            return vel_fail(STORE_ESHAPE, "meta: latent shape dim %d = %lld outside 1..%d", i,
                              (long long)m->shape[i], DIM_MAX);
    if (m->shape[0] > STORE_MAX_CHANNELS)
        return vel_fail(STORE_ESHAPE, "meta: %lld channels, at most %d", (long long)m->shape[0],
                          STORE_MAX_CHANNELS);
    if (m->shape[1] * m->shape[2] > NUMEL_MAX / m->shape[0])
        return vel_fail(STORE_ESHAPE, "meta: latent %lldx%lldx%lld has more than 2^30 elements",
                          (long long)m->shape[0], (long long)m->shape[1], (long long)m->shape[2]);
    if (m->dtype != DT_F32)
        return vel_fail(STORE_ESHAPE, "meta: latent dtype %s, only f32 is supported",
                          dtype_name(m->dtype) ? dtype_name(m->dtype) : "?");
    if (!str_ok(m->tokenizer_hash) || !str_ok(m->dataset) || !str_ok(m->code_version))
        return vel_fail(STORE_EMETA, "meta: a string field is not NUL-terminated");
    if (m->has_stats)
        for (int64_t c = 0; c < m->shape[0]; c++)
            if (!isfinite(m->mean[c]) || !isfinite(m->std[c]) || !(m->std[c] > 0))
                return vel_fail(STORE_EMETA, "meta: channel %lld has mean %g std %g (need finite, std > 0)",
                                  (long long)c, m->mean[c], m->std[c]);
    return 0;
}

static int pack_cstr(msgpack_packer *pk, const char *s) {
    return msgpack_pack_str_with_body(pk, s, strlen(s));
}

int store_meta_encode(const store_meta *m, char **buf, size_t *len) {
    int rc = store_meta_validate(m);
    if (rc) return rc;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    // sbuffer_write fails only on allocation; every pack result is or'ed
    // into bad and checked once at the end.
    int bad = 0;
    bad |= msgpack_pack_map(&pk, 11);
    bad |= pack_cstr(&pk, "format"); bad |= pack_cstr(&pk, STORE_META_FORMAT);
    bad |= pack_cstr(&pk, "format_version"); bad |= msgpack_pack_uint32(&pk, STORE_META_VERSION);
    bad |= pack_cstr(&pk, "tokenizer_hash"); bad |= pack_cstr(&pk, m->tokenizer_hash);
    bad |= pack_cstr(&pk, "shape");
    bad |= msgpack_pack_array(&pk, 3);
    for (int i = 0; i < 3; i++) bad |= msgpack_pack_int64(&pk, m->shape[i]);
    bad |= pack_cstr(&pk, "dtype"); bad |= pack_cstr(&pk, dtype_name(m->dtype));
    const float *arrs[2] = {m->mean, m->std};
    const char *names[2] = {"mean", "std"};
    for (int a = 0; a < 2; a++) {
        bad |= pack_cstr(&pk, names[a]);
        if (!m->has_stats) { bad |= msgpack_pack_nil(&pk); continue; }
        bad |= msgpack_pack_array(&pk, (size_t)m->shape[0]);
        for (int64_t c = 0; c < m->shape[0]; c++) bad |= msgpack_pack_float(&pk, arrs[a][c]);
    }
    bad |= pack_cstr(&pk, "dataset"); bad |= pack_cstr(&pk, m->dataset);
    bad |= pack_cstr(&pk, "dataset_size"); bad |= msgpack_pack_uint64(&pk, m->dataset_size);
    bad |= pack_cstr(&pk, "code_version"); bad |= pack_cstr(&pk, m->code_version);
    bad |= pack_cstr(&pk, "has_flip");
    bad |= m->has_flip ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    if (bad || !sb.data) {
        msgpack_sbuffer_destroy(&sb);
        return vel_fail(VEL_ENOMEM, "meta encode: out of memory");
    }
    *buf = sb.data;   // sbuffer memory is malloc'ed; the caller frees it
    *len = sb.size;
    return 0;
}

static bool key_is(const msgpack_object *k, const char *name) {
    size_t n = strlen(name);
    return k->via.str.size == n && memcmp(k->via.str.ptr, name, n) == 0;
}

static int get_str(char *dst, const msgpack_object *v, const char *what) {
    if (v->type != MSGPACK_OBJECT_STR)
        return vel_fail(STORE_EMETA, "meta: '%s' is not a string", what);
    if (v->via.str.size >= STORE_STR_MAX || memchr(v->via.str.ptr, 0, v->via.str.size))
        return vel_fail(STORE_EMETA, "meta: '%s' is longer than %d bytes or holds NUL", what,
                          STORE_STR_MAX - 1);
    memcpy(dst, v->via.str.ptr, v->via.str.size);
    dst[v->via.str.size] = 0;
    return 0;
}

static int get_floats(float *dst, const msgpack_object *v, int64_t C, const char *what) {
    if (v->type != MSGPACK_OBJECT_ARRAY || (int64_t)v->via.array.size != C)
        return vel_fail(STORE_EMETA, "meta: '%s' is not an array of %lld floats", what, (long long)C);
    for (int64_t c = 0; c < C; c++) {
        const msgpack_object *e = &v->via.array.ptr[c];
        if (e->type != MSGPACK_OBJECT_FLOAT32 && e->type != MSGPACK_OBJECT_FLOAT64)
            return vel_fail(STORE_EMETA, "meta: '%s'[%lld] is not a float", what, (long long)c);
        dst[c] = (float)e->via.f64;
    }
    return 0;
}

enum { K_FORMAT, K_VERSION, K_HASH, K_SHAPE, K_DTYPE, K_MEAN, K_STD, K_DATASET, K_SIZE,
       K_CODE, K_FLIP, K_COUNT };
static const char *const key_names[K_COUNT] = {
    "format", "format_version", "tokenizer_hash", "shape", "dtype", "mean", "std",
    "dataset", "dataset_size", "code_version", "has_flip"};

static int meta_fields(store_meta *m, const msgpack_object *o) {
    if (o->type != MSGPACK_OBJECT_MAP)
        return vel_fail(STORE_EMETA, "meta: msgpack type %d, not a map", (int)o->type);
    const msgpack_object *val[K_COUNT] = {0};
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR)
            return vel_fail(STORE_EMETA, "meta: key %u is not a string", i);
        for (int j = 0; j < K_COUNT; j++)
            if (key_is(k, key_names[j])) {
                if (val[j]) return vel_fail(STORE_EMETA, "meta: key '%s' repeated", key_names[j]);
                val[j] = &o->via.map.ptr[i].val;
            }
    }
    for (int j = 0; j < K_COUNT; j++)
        if (!val[j]) return vel_fail(STORE_EMETA, "meta: key '%s' missing", key_names[j]);
    const msgpack_object *f = val[K_FORMAT];
    if (f->type != MSGPACK_OBJECT_STR || !key_is(f, STORE_META_FORMAT))
        return vel_fail(STORE_EMETA, "meta: 'format' is not \"%s\"", STORE_META_FORMAT);
    if (val[K_VERSION]->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        val[K_VERSION]->via.u64 != STORE_META_VERSION)
        return vel_fail(STORE_EMETA, "meta: format_version is not %d", STORE_META_VERSION);
    int rc;
    if ((rc = get_str(m->tokenizer_hash, val[K_HASH], "tokenizer_hash"))) return rc;
    if ((rc = get_str(m->dataset, val[K_DATASET], "dataset"))) return rc;
    if ((rc = get_str(m->code_version, val[K_CODE], "code_version"))) return rc;
    const msgpack_object *s = val[K_SHAPE];
    if (s->type != MSGPACK_OBJECT_ARRAY || s->via.array.size != 3)
        return vel_fail(STORE_EMETA, "meta: 'shape' is not an array of 3 ints");
    for (int i = 0; i < 3; i++) {
        const msgpack_object *e = &s->via.array.ptr[i];
        if (e->type != MSGPACK_OBJECT_POSITIVE_INTEGER || e->via.u64 > DIM_MAX)
            return vel_fail(STORE_EMETA, "meta: shape[%d] is not an int in 1..%d", i, DIM_MAX);
        m->shape[i] = (int64_t)e->via.u64;
    }
    const msgpack_object *d = val[K_DTYPE];
    if (d->type != MSGPACK_OBJECT_STR ||
        dtype_from_name(d->via.str.ptr, d->via.str.size, &m->dtype) != 0)
        return vel_fail(STORE_EMETA, "meta: 'dtype' is not a known dtype name");
    if (val[K_SIZE]->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return vel_fail(STORE_EMETA, "meta: 'dataset_size' is not an unsigned int");
    m->dataset_size = val[K_SIZE]->via.u64;
    if (val[K_FLIP]->type != MSGPACK_OBJECT_BOOLEAN)
        return vel_fail(STORE_EMETA, "meta: 'has_flip' is not a bool");
    m->has_flip = val[K_FLIP]->via.boolean;
    // Shape first: the stats arrays are checked against C.
    if ((rc = store_meta_validate(m))) return rc == STORE_ESHAPE ? STORE_EMETA : rc;
    bool mean_nil = val[K_MEAN]->type == MSGPACK_OBJECT_NIL;
    bool std_nil = val[K_STD]->type == MSGPACK_OBJECT_NIL;
    if (mean_nil != std_nil)
        return vel_fail(STORE_EMETA, "meta: one of 'mean'/'std' is nil, the other is not");
    if (!mean_nil) {
        if ((rc = get_floats(m->mean, val[K_MEAN], m->shape[0], "mean"))) return rc;
        if ((rc = get_floats(m->std, val[K_STD], m->shape[0], "std"))) return rc;
        m->has_stats = true;
    }
    return store_meta_validate(m);
}

int store_meta_decode(store_meta *m, const void *buf, size_t len) {
    memset(m, 0, sizeof *m);
    if (len > STORE_META_LIMIT)
        return vel_fail(STORE_EMETA, "meta: %zu bytes, more than the %u allowed", len, STORE_META_LIMIT);
    size_t obj_len;
    if (store_mp_scan(buf, len, &obj_len) != 0 || obj_len != len)
        return vel_fail(STORE_EMETA, "meta: %zu bytes are not exactly one msgpack object", len);
    msgpack_zone zone;
    if (!msgpack_zone_init(&zone, 4096)) return vel_fail(VEL_ENOMEM, "meta decode: zone");
    msgpack_object o;
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack(buf, len, &off, &zone, &o);
    int rc;
    if (ur == MSGPACK_UNPACK_NOMEM_ERROR) rc = vel_fail(VEL_ENOMEM, "meta decode: out of memory");
    else if (ur != MSGPACK_UNPACK_SUCCESS || off != len)
        rc = vel_fail(STORE_EMETA, "meta: msgpack rejected it (%d)", (int)ur);
    else rc = meta_fields(m, &o);
    msgpack_zone_destroy(&zone);
    if (rc) memset(m, 0, sizeof *m);
    return rc;
}

int store_meta_expect(const store_meta *have, const char *hash, const int64_t *shape) {
    if (hash && strcmp(have->tokenizer_hash, hash) != 0)
        return vel_fail(STORE_EHASH, "cache tokenizer hash \"%s\", expected \"%s\"",
                          have->tokenizer_hash, hash);
    if (shape && (have->shape[0] != shape[0] || have->shape[1] != shape[1] ||
                  have->shape[2] != shape[2]))
        return vel_fail(STORE_ESHAPE, "cache latent shape %lldx%lldx%lld, expected %lldx%lldx%lld",
                          (long long)have->shape[0], (long long)have->shape[1],
                          (long long)have->shape[2], (long long)shape[0], (long long)shape[1],
                          (long long)shape[2]);
    return 0;
}

int store_meta_compatible(const store_meta *have, const store_meta *want) {
    int rc = store_meta_expect(have, want->tokenizer_hash, want->shape);
    if (rc) return rc;
    if (have->dtype != want->dtype)
        return vel_fail(STORE_ESHAPE, "cache dtype %s, expected %s", dtype_name(have->dtype),
                          dtype_name(want->dtype));
    if (have->has_flip != want->has_flip)
        return vel_fail(STORE_EMETA, "cache has_flip=%d, writer wants %d", (int)have->has_flip,
                          (int)want->has_flip);
    if (strcmp(have->dataset, want->dataset) != 0 || have->dataset_size != want->dataset_size)
        return vel_fail(STORE_EMETA, "cache holds dataset \"%s\" (%llu images), writer has \"%s\" (%llu)",
                          have->dataset, (unsigned long long)have->dataset_size, want->dataset,
                          (unsigned long long)want->dataset_size);
    return 0;
}
