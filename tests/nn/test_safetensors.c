// test_safetensors.c: the safetensors reader/writer. Reads the fixture the
// official Python package wrote (tests/fixtures/safetensors/) with exact
// values, round-trips every dtype, loads parameter tables by name, and feeds
// the parser malformed files (every truncation, byte flips, and one crafted
// file per error class). Also built under ASan+UBSan (Makefile.asan), so it
// uses nothing from nn/cpu/.
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/base.h"
#include "nn/params.h"
#include "nn/safetensors.h"
#include "tests/util.h"

#define FIXTURE "tests/fixtures/safetensors/fixture.safetensors"

static uint32_t bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

Test(safetensors, python_fixture_exact) {
    st_file *f;
    int rc = st_open(&f, FIXTURE);
    cr_assert_eq(rc, 0, "%s", vel_error_detail());
    cr_assert_eq(st_count(f), 5);
    cr_expect_str_eq(st_meta_get(f, "format"), "pt");
    cr_expect_str_eq(st_meta_get(f, "origin"), "make_fixture.py");
    cr_expect_null(st_meta_get(f, "nope"));
    cr_expect_eq(st_meta_count(f), 2);

    float w[6];
    cr_assert_eq(st_load_tensor(f, "encoder.conv_in.weight", w, 2, (int64_t[]){2, 3}), 0, "%s", vel_error_detail());
    const float ww[6] = {0.5f, -1.25f, 3.0e-3f, 1e10f, -0.0f, 7.0f};
    for (int i = 0; i < 6; i++) cr_expect_eq(bits(w[i]), bits(ww[i]), "w[%d]", i);

    float b[4];
    cr_assert_eq(st_load_tensor(f, "encoder.conv_in.bias", b, 1, (int64_t[]){4}), 0, "%s", vel_error_detail());
    const float bw[4] = {1.0f, -3.0f, 0.15625f, ldexpf(1.0f, -133)};
    for (int i = 0; i < 4; i++) cr_expect_eq(bits(b[i]), bits(bw[i]), "bf16[%d] %a", i, b[i]);
    int i = st_find(f, "encoder.conv_in.bias");
    cr_expect_eq(st_get(f, i)->dtype, DT_BF16);

    float h[4];
    cr_assert_eq(st_load_tensor(f, "decoder.norm_out.weight", h, 2, (int64_t[]){2, 2}), 0, "%s", vel_error_detail());
    const float hw[4] = {1.0f, -2.0f, 0x1.554p-2f, ldexpf(1.0f, -24)};
    for (int k = 0; k < 4; k++) cr_expect_eq(bits(h[k]), bits(hw[k]), "f16[%d] %a", k, h[k]);
    cr_expect_eq(st_get(f, st_find(f, "decoder.norm_out.weight"))->dtype, DT_F16);

    float s = 0;
    cr_assert_eq(st_load_tensor(f, "step", &s, 0, NULL), 0, "%s", vel_error_detail());
    cr_expect_eq(s, 42.0f);
    i = st_find(f, "empty");
    cr_assert_geq(i, 0);
    cr_expect_eq(st_get(f, i)->numel, 0);
    cr_expect_eq(st_read_f32(f, i, NULL, 0), 0);

    // Wrong expectations give clear errors.
    cr_expect_eq(st_load_tensor(f, "step", &s, 1, (int64_t[]){1}), CKPT_ESHAPE);
    cr_expect(strstr(vel_error_detail(), "step") != NULL, "%s", vel_error_detail());
    cr_expect_eq(st_load_tensor(f, "missing.weight", &s, 0, NULL), CKPT_EMISSING);
    cr_expect(strstr(vel_error_detail(), "missing.weight") != NULL, "%s", vel_error_detail());
    st_close(&f);
    cr_expect_null(f);
}

// Writes every float dtype and reads back: F32 bit-exact, BF16/F16 equal to
// the converters' round trip; names and metadata with characters JSON escapes.
Test(safetensors, roundtrip_all_dtypes) {
    char *dir = test_tmpdir("st_rt");
    char path[512];
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);
    enum { N = 1000 };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
    fill_normal(x, N, 7, 3.0f);
    x[0] = 0.0f; x[1] = -0.0f; x[2] = 1e-40f; x[3] = 65504.0f; x[4] = 1e30f;
    const char *odd = "we\"ird\\name\n\x01.é";
    // 1e30 overflows f16 to inf, which loading refuses (non-finite); that
    // case is checked separately below.
    float *x16 = malloc(N * sizeof(float));
    memcpy(x16, x, N * sizeof(float));
    x16[4] = 60000.0f;
    st_tensor_out t[4] = {
        {"a.weight", DT_F32, 2, (int64_t[]){10, 100}, x},
        {"a.bias", DT_BF16, 1, (int64_t[]){N}, x},
        {odd, DT_F16, 3, (int64_t[]){10, 10, 10}, x16},
        {"overflow", DT_F16, 1, (int64_t[]){N}, x},
    };
    st_kv meta[2] = {{"format", "pt"}, {"quote\"key", "line\nvalue\t\\"}};
    cr_assert_eq(st_write(path, t, 4, meta, 2), 0, "%s", vel_error_detail());

    st_file *f;
    cr_assert_eq(st_open(&f, path), 0, "%s", vel_error_detail());
    cr_expect_eq(st_count(f), 4);
    cr_expect_str_eq(st_meta_get(f, "quote\"key"), "line\nvalue\t\\");
    cr_assert_eq(st_load_tensor(f, "a.weight", y, 2, (int64_t[]){10, 100}), 0, "%s", vel_error_detail());
    cr_expect_eq(memcmp(x, y, N * sizeof(float)), 0);
    cr_assert_eq(st_load_tensor(f, "a.bias", y, 1, (int64_t[]){N}), 0, "%s", vel_error_detail());
    for (int i = 0; i < N; i++) cr_expect_eq(bits(y[i]), bits(bf16_to_f32(f32_to_bf16(x[i]))), "bf16 %d", i);
    cr_assert_eq(st_load_tensor(f, odd, y, 3, (int64_t[]){10, 10, 10}), 0, "%s", vel_error_detail());
    for (int i = 0; i < N; i++) cr_expect_eq(bits(y[i]), bits(f16_to_f32(f32_to_f16(x16[i]))), "f16 %d", i);
    // Issue 15 item 9: a non-finite value is refused at load, naming tensor and index.
    cr_expect_eq(st_load_tensor(f, "overflow", y, 1, (int64_t[]){N}), VEL_ENONFINITE);
    cr_expect(strstr(vel_error_detail(), "tensor 'overflow'[4] = inf"), "%s", vel_error_detail());
    st_close(&f);
    // st_meta_read: one value straight from the path, truncated to the buffer
    char val[8];
    cr_expect_eq(st_meta_read(path, "format", val, sizeof val), 0);
    cr_expect_str_eq(val, "pt");
    cr_expect_eq(st_meta_read(path, "quote\"key", val, 5), 0);
    cr_expect_str_eq(val, "line");
    cr_expect_eq(st_meta_read(path, "absent", val, sizeof val), VEL_ENOTFOUND);
    char nofile[600];
    snprintf(nofile, sizeof nofile, "%s/absent.safetensors", dir);
    cr_expect_eq(st_meta_read(nofile, "format", val, sizeof val), VEL_ENOTFOUND);

    // Overwrite atomically; no temp files are left behind.
    cr_assert_eq(st_write(path, t, 1, NULL, 0), 0, "%s", vel_error_detail());
    cr_assert_eq(st_open(&f, path), 0, "%s", vel_error_detail());
    cr_expect_eq(st_count(f), 1);
    cr_expect_eq(st_meta_count(f), 0);
    st_close(&f);
    DIR *d = opendir(dir);
    int files = 0;
    for (struct dirent *de; (de = readdir(d));)
        if (de->d_name[0] != '.') files++;
    closedir(d);
    cr_expect_eq(files, 1, "temp files left behind");

    // Writing into a missing directory fails cleanly.
    char bad[600];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.safetensors", dir);
    cr_expect_eq(st_write(bad, t, 1, NULL, 0), VEL_EIO);
    cr_expect(strstr(vel_error_detail(), "x.safetensors") != NULL, "%s", vel_error_detail());
    // Duplicate names and unsupported dtypes are refused by the writer.
    st_tensor_out dup[2] = {t[0], t[0]};
    cr_expect_eq(st_write(path, dup, 2, NULL, 0), CKPT_EDUP);
    st_tensor_out u8 = {"u", DT_U8, 1, (int64_t[]){4}, x};
    cr_expect_eq(st_write(path, &u8, 1, NULL, 0), CKPT_EDTYPE);
    // A NaN (say, optimizer state after a bad step) is refused by the writer.
    x16[7] = NAN;
    st_tensor_out nan = {"state.exp_avg", DT_F32, 1, (int64_t[]){N}, x16};
    cr_expect_eq(st_write(path, &nan, 1, NULL, 0), VEL_ENONFINITE);
    cr_expect(strstr(vel_error_detail(), "tensor 'state.exp_avg'[7] is not finite"), "%s", vel_error_detail());
    free(x16);
    free(x);
    free(y);
    rm_rf(dir);
    free(dir);
}

static void make_table(param_table *pt, int variant) {
    param_table_init(pt);
    param_add(pt, "net.0.weight", 2, (int64_t[]){8, 4});
    param_add(pt, "net.0.bias", 1, (int64_t[]){8});
    if (variant == 1) param_add(pt, "net.2.weight", 2, (int64_t[]){3, 8});
    else if (variant == 2) param_add(pt, "net.2.weight", 2, (int64_t[]){8, 3});
    else if (variant != 3) param_add(pt, "net.2.weight", 2, (int64_t[]){3, 8});
    if (variant == 1) param_add(pt, "net.2.bias", 1, (int64_t[]){3});
    cr_assert_eq(param_table_commit(pt), 0);
}

Test(safetensors, params_by_name) {
    char *dir = test_tmpdir("st_params");
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    param_table a, b;
    make_table(&a, 0);
    fill_normal(a.values, a.total, 11, 1.0f);
    cr_assert_eq(st_save_params(path, &a, DT_F32, (st_kv[]){{"step", "5"}}, 1), 0, "%s", vel_error_detail());

    make_table(&b, 0);
    cr_assert_eq(st_load_params(path, &b), 0, "%s", vel_error_detail());
    for (int i = 0; i < a.count; i++)
        cr_expect_eq(memcmp(param_data(&a, i), param_data(&b, i), (size_t)a.info[i].numel * 4), 0);
    param_table_free(&b);

    // Model has a tensor the file lacks: named; values untouched.
    make_table(&b, 1);
    cr_expect_eq(st_load_params(path, &b), CKPT_EMISSING);
    cr_expect(strstr(vel_error_detail(), "net.2.bias") != NULL, "%s", vel_error_detail());
    for (int64_t i = 0; i < b.total; i++) cr_assert_eq(b.values[i], 0.0f);
    param_table_free(&b);
    // Shape mismatch: named with both shapes.
    make_table(&b, 2);
    cr_expect_eq(st_load_params(path, &b), CKPT_ESHAPE);
    cr_expect(strstr(vel_error_detail(), "net.2.weight") && strstr(vel_error_detail(), "(3, 8)") && strstr(vel_error_detail(), "(8, 3)"), "%s", vel_error_detail());
    for (int64_t i = 0; i < b.total; i++) cr_assert_eq(b.values[i], 0.0f);
    param_table_free(&b);
    // File has a tensor the model lacks.
    make_table(&b, 3);
    cr_expect_eq(st_load_params(path, &b), CKPT_EEXTRA);
    cr_expect(strstr(vel_error_detail(), "net.2.weight") != NULL, "%s", vel_error_detail());
    param_table_free(&b);
    // Missing file.
    make_table(&b, 0);
    cr_expect_eq(st_load_params("/nonexistent/x.safetensors", &b), VEL_ENOTFOUND);
    cr_expect(strstr(vel_error_detail(), "/nonexistent/x.safetensors") != NULL, "%s", vel_error_detail());
    param_table_free(&b);
    param_table_free(&a);
    rm_rf(dir);
    free(dir);
}

// A file from a header string and a number of zero data bytes.
static unsigned char *craft(const char *hdr, size_t data_len, size_t *len) {
    size_t h = strlen(hdr);
    *len = 8 + h + data_len;
    unsigned char *b = calloc(*len + 1, 1);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(b + 8, hdr, h);
    return b;
}

static int parse_str(const char *hdr, size_t data_len) {
    size_t len;
    unsigned char *b = craft(hdr, data_len, &len);
    st_file *f = NULL;
    int rc = st_parse(&f, b, len);
    if (rc == 0) cr_expect_not_null(f);
    else cr_expect_null(f);
    st_close(&f);
    free(b);
    return rc;
}

#define T1 "\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"

Test(safetensors, malformed_headers) {
    cr_expect_eq(parse_str("{" T1 "}", 8), 0, "%s", vel_error_detail());
    cr_expect_eq(parse_str("{" T1 "}   \n", 8), 0, "%s", vel_error_detail());   // padding is fine
    cr_expect_eq(parse_str("{}", 0), 0, "%s", vel_error_detail());
    struct { const char *hdr; size_t data; int code; const char *needle; } cases[] = {
        {"{" T1, 8, CKPT_EJSON, NULL},
        {"[1,2]", 0, CKPT_EJSON, NULL},
        {"", 0, CKPT_EJSON, NULL},
        {"{" T1 "}x", 8, CKPT_EJSON, "trailing"},
        {"{\"t\":5}", 0, CKPT_EHEADER, "'t'"},
        {"{\"t\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, CKPT_EHEADER, "'t'"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", 8, CKPT_EHEADER, "shape"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, CKPT_EHEADER, "shape"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8, CKPT_EHEADER, "shape"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8, CKPT_EHEADER, "dims"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, CKPT_EHEADER, "data_offsets"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,9]}}", 8, CKPT_EHEADER, "data_offsets"},
        {"{\"t\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, CKPT_EDTYPE, "F64"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", 8, CKPT_EOFFSETS, "outside"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, CKPT_EOFFSETS, NULL},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, CKPT_ESIZE, "'t'"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, CKPT_ESIZE, NULL},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[9223372036854775807,4],\"data_offsets\":[0,8]}}", 8, CKPT_EHEADER, "shape"},  // > 2^53: not exact in JSON doubles
        {"{" T1 ",\"u\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, CKPT_EOFFSETS, "overlaps"},
        {"{" T1 ",\"u\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}", 16, CKPT_EOFFSETS, "gap"},
        {"{" T1 "}", 12, CKPT_EOFFSETS, "cover"},
        {"{" T1 "," T1 "}", 8, CKPT_EDUP, "'t'"},
        {"{\"__metadata__\":5}", 0, CKPT_EMETA, NULL},
        {"{\"__metadata__\":{\"k\":1}}", 0, CKPT_EMETA, "'k'"},
        {"{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, CKPT_EDUP, "'k'"},
        {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, CKPT_EDUP, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vel_error_clear();
        int rc = parse_str(cases[i].hdr, cases[i].data);
        cr_expect_eq(rc, cases[i].code, "case %zu (%s): got %d (%s), want %d", i, cases[i].hdr, rc,
                     vel_error_detail(), cases[i].code);
        cr_expect(vel_error_detail()[0] != 0, "case %zu: no message", i);
        if (cases[i].needle)
            cr_expect(strstr(vel_error_detail(), cases[i].needle) != NULL, "case %zu: message '%s' lacks '%s'", i,
                      vel_error_detail(), cases[i].needle);
        cr_expect(strcmp(vel_strerror(rc), "unknown error") != 0);
    }
}

Test(safetensors, length_field) {
    st_file *f = NULL;
    unsigned char b[16] = {0};
    cr_expect_eq(st_parse(&f, b, 7), CKPT_ETRUNC);
    cr_expect(strstr(vel_error_detail(), "7 bytes") != NULL, "%s", vel_error_detail());
    b[0] = 9;   // header of 9 bytes in a 16-byte file: 8 are there
    cr_expect_eq(st_parse(&f, b, 16), CKPT_ETRUNC);
    memset(b, 0xff, 8);   // 2^64-1: no overflow in the bounds check
    cr_expect_eq(st_parse(&f, b, 16), CKPT_ETRUNC);
    cr_expect_null(f);
    // Empty and short files on disk.
    char *dir = test_tmpdir("st_len");
    char path[512];
    snprintf(path, sizeof path, "%s/empty.safetensors", dir);
    FILE *fp = fopen(path, "wb");
    fclose(fp);
    cr_expect_eq(st_open(&f, path), CKPT_ETRUNC);
    cr_expect(strstr(vel_error_detail(), "empty.safetensors") != NULL, "%s", vel_error_detail());
    rm_rf(dir);
    free(dir);
}

// Every prefix of a valid file and every single-byte change of its header
// must be refused or parsed, never crash or read out of bounds (ASan build).
Test(safetensors, truncations_and_flips) {
    FILE *fp = fopen(FIXTURE, "rb");
    cr_assert_not_null(fp);
    unsigned char buf[4096];
    size_t len = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    for (size_t n = 0; n < len; n++) {
        unsigned char *copy = malloc(n + 1);   // exact size: ASan catches over-reads
        memcpy(copy, buf, n);
        st_file *f = NULL;
        int rc = st_parse(&f, copy, n);
        cr_expect_neq(rc, 0, "prefix of %zu bytes accepted", n);
        st_close(&f);
        free(copy);
    }
    float out[64];
    int accepted = 0;
    for (size_t pos = 0; pos < 8 + hlen; pos++) {
        for (int v = 0; v < 3; v++) {
            unsigned char *copy = malloc(len);
            memcpy(copy, buf, len);
            copy[pos] = (unsigned char)(v == 0 ? copy[pos] ^ 1 : v == 1 ? '"' : 0);
            st_file *f = NULL;
            if (st_parse(&f, copy, len) == 0) {
                accepted++;
                for (int i = 0; i < st_count(f); i++)
                    if (st_get(f, i)->numel <= 64) (void)st_read_f32(f, i, out, st_get(f, i)->numel);
                st_close(&f);
            }
            free(copy);
        }
    }
    cr_log_info("byte changes accepted: %d of %d", accepted, (int)(3 * (8 + hlen)));
}

// Duplicate metadata keys far apart are found too (sorted, not a window).
Test(safetensors, duplicate_meta_far_apart) {
    char hdr[8192];
    size_t at = (size_t)sprintf(hdr, "{\"__metadata__\":{\"dup\":\"a\"");
    for (int i = 0; i < 300; i++) at += (size_t)sprintf(hdr + at, ",\"k%d\":\"v\"", i);
    sprintf(hdr + at, ",\"dup\":\"b\"}}");
    cr_expect_eq(parse_str(hdr, 0), CKPT_EDUP);
    cr_expect(strstr(vel_error_detail(), "'dup'") != NULL, "%s", vel_error_detail());
}

// Parsing is O(n log n): 20000 tensors must take well under a second.
Test(safetensors, many_tensors_fast) {
    int n = 20000;
    size_t cap = (size_t)n * 96 + 16;
    char *hdr = malloc(cap);
    size_t at = (size_t)sprintf(hdr, "{");
    for (int i = 0; i < n; i++)
        at += (size_t)sprintf(hdr + at, "%s\"layer.%d.w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%d,%d]}",
                              i ? "," : "", n - 1 - i, 4 * i, 4 * i + 4);
    sprintf(hdr + at, "}");
    double t0 = vel_now();
    cr_expect_eq(parse_str(hdr, (size_t)n * 4), 0, "%s", vel_error_detail());
    double dt = vel_now() - t0;
    cr_expect_lt(dt, 2.0, "20000 tensors took %.3f s", dt);
    free(hdr);
}
