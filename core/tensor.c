// tensor.c: dtype table, contiguous views, half-precision conversions.
#include "core/tensor.h"

#include <string.h>

#include "core/base.h"

static const struct { const char *name; size_t size; } DTYPES[DT_COUNT] = {
    [DT_F32] = {"f32", 4}, [DT_BF16] = {"bf16", 2}, [DT_F16] = {"f16", 2},
    [DT_U8] = {"u8", 1},   [DT_I32] = {"i32", 4},
};

size_t dtype_size(dtype_t dt) {
    return (unsigned)dt < DT_COUNT ? DTYPES[dt].size : 0;
}

const char *dtype_name(dtype_t dt) {
    return (unsigned)dt < DT_COUNT ? DTYPES[dt].name : "?";
}

int dtype_from_name(const char *name, size_t len, dtype_t *out) {
    for (int i = 0; i < DT_COUNT; i++) {
        if (strlen(DTYPES[i].name) == len && memcmp(DTYPES[i].name, name, len) == 0) {
            *out = (dtype_t)i;
            return 0;
        }
    }
    return VEL_EFORMAT;
}

tensor tensor_view(dtype_t dt, void *data, int ndim, const int64_t *shape) {
    CHECK(ndim >= 0 && ndim <= TENSOR_MAX_DIMS);
    tensor t = {.dtype = dt, .ndim = ndim, .data = data};
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        t.shape[i] = shape[i];
        t.stride[i] = s;
        s *= shape[i];
    }
    return t;
}

int64_t tensor_numel(const tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t tensor_nbytes(const tensor *t) {
    return (size_t)tensor_numel(t) * dtype_size(t->dtype);
}

bool tensor_is_contiguous(const tensor *t) {
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s) return false;
        s *= t->shape[i];
    }
    return true;
}

int64_t shape_numel_checked(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] != 0 && n > INT64_MAX / shape[i]) return -1;
        n *= shape[i];
    }
    return n;
}

static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u); // round to nearest even
    return (uint16_t)(u >> 16);
}

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (exp == 0) {
        if (man == 0) return bits_f32(sign);
        float v = (float)man * (1.0f / 16777216.0f); // subnormal: man * 2^-24
        return sign ? -v : v;
    }
    if (exp == 31) return bits_f32(sign | 0x7f800000u | (man << 13));
    return bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

uint16_t f32_to_f16(float f) {
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u;           // NaN
    if (a >= 0x477ff000u) return sign | 0x7c00u;          // overflow -> inf
    if (a < 0x38800000u) {                                // subnormal or zero
        float v = bits_f32(a) * 16777216.0f;              // in units of 2^-24
        uint32_t m = (uint32_t)v;
        float r = v - (float)m;
        if (r > 0.5f || (r == 0.5f && (m & 1u))) m++;
        return sign | (uint16_t)m;
    }
    uint32_t e = ((a >> 23) - 112u) << 10, man = a & 0x7fffffu;
    uint32_t h = e | (man >> 13);
    uint32_t rest = man & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;
    return sign | (uint16_t)h;
}
