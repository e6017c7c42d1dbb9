// Tests of the byte codecs: record header/decoder (store/record.h), meta
// encoder/decoder (store/meta.h) and the msgpack bounds scan, on valid and
// malformed input.
#include <criterion/criterion.h>
#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "store/meta.h"
#include "store/mpscan.h"
#include "store/record.h"
#include "tests/store/store_testdata.h"

// A record value: header packed by pk-callback fn, then nt*numel floats.
typedef void (*hdr_fn)(msgpack_packer *pk);
static size_t make_value(uint8_t *out, size_t cap, hdr_fn fn, size_t payload_floats) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    fn(&pk);
    size_t n = sb.size + payload_floats * 4;
    cr_assert(n <= cap);
    memcpy(out, sb.data, sb.size);
    for (size_t i = 0; i < payload_floats; i++) {
        float f = (float)i;
        memcpy(out + sb.size + 4 * i, &f, 4);
    }
    msgpack_sbuffer_destroy(&sb);
    return n;
}

static void kv_str(msgpack_packer *pk, const char *k) { msgpack_pack_str_with_body(pk, k, strlen(k)); }

Test(store_codec, record_roundtrip_and_alignment_agnostic) {
    uint8_t hdr[STORE_RECORD_HDR_MAX];
    size_t hl;
    cr_assert_eq(store_record_header(hdr, sizeof hdr, &hl, -1, 8192, true), 0);
    cr_assert(hl <= STORE_RECORD_HDR_MAX);
    size_t total = store_record_size(hl, 8192, true);
    cr_assert_eq(total, hl + 4 * 8192 * 4);
    // Decode at an odd offset: views are byte pointers, nothing assumes alignment.
    uint8_t *buf = malloc(total + 1);
    memcpy(buf + 1, hdr, hl);
    float pay[4] = {1.5f, -2.0f, 3.25f, 0.0f};
    for (int t = 0; t < 4; t++)
        for (int j = 0; j < 8192; j++) memcpy(buf + 1 + hl + (t * 8192 + j) * 4, &pay[t], 4);
    store_view v;
    cr_assert_eq(store_record_decode(&v, buf + 1, total, 8192, true), 0, "%s", vel_error_detail());
    cr_assert_eq(v.label, -1);
    cr_assert_eq(v.numel, 8192);
    cr_assert(v.has_flip);
    float f;
    memcpy(&f, (const uint8_t *)v.sigma_flip + 4 * 8191, 4);
    cr_assert_eq(f, 0.0f);
    memcpy(&f, v.mu_flip, 4);
    cr_assert_eq(f, 3.25f);
    // Layout disagreements and size errors.
    cr_assert_eq(store_record_decode(&v, buf + 1, total, 8192, false), STORE_ERECSIZE);
    cr_assert_eq(store_record_decode(&v, buf + 1, total, 4096, true), STORE_ERECSIZE);
    cr_assert_eq(store_record_decode(&v, buf + 1, total - 1, 8192, true), STORE_ERECSIZE);
    cr_assert_eq(store_record_decode(&v, buf + 1, total - 4 * 8192, 8192, true), STORE_ERECSIZE);
    cr_assert_eq(store_record_decode(&v, buf, total + 1, 8192, true), STORE_EHEADER);   // 1 junk byte first
    cr_assert_eq(store_record_decode(&v, buf + 1, hl - 1, 8192, true), STORE_EHEADER);  // truncated header
    cr_assert_eq(store_record_decode(&v, buf + 1, 0, 8192, true), STORE_EHEADER);
    cr_assert_eq(store_record_decode(&v, buf + 1, total, 0, true), VEL_EINVAL);
    free(buf);
    // Header into a too-small buffer.
    cr_assert_eq(store_record_header(hdr, 8, &hl, 1, 2, false), VEL_EINVAL);
    cr_assert_eq(store_record_header(hdr, sizeof hdr, &hl, 1, 0, false), VEL_EINVAL);
}

static void h_array(msgpack_packer *pk) { msgpack_pack_array(pk, 4); for (int i = 0; i < 4; i++) msgpack_pack_int(pk, 1); }
static void h_nov(msgpack_packer *pk) {
    msgpack_pack_map(pk, 3);
    kv_str(pk, "label"); msgpack_pack_int(pk, 1);
    kv_str(pk, "n"); msgpack_pack_int(pk, 2);
    kv_str(pk, "flip"); msgpack_pack_false(pk);
}
static void h_v2(msgpack_packer *pk) {
    msgpack_pack_map(pk, 4);
    kv_str(pk, "v"); msgpack_pack_int(pk, 2);
    kv_str(pk, "label"); msgpack_pack_int(pk, 1);
    kv_str(pk, "n"); msgpack_pack_int(pk, 2);
    kv_str(pk, "flip"); msgpack_pack_false(pk);
}
static void h_biglabel(msgpack_packer *pk) {
    msgpack_pack_map(pk, 4);
    kv_str(pk, "v"); msgpack_pack_int(pk, 1);
    kv_str(pk, "label"); msgpack_pack_int64(pk, (int64_t)INT32_MAX + 1);
    kv_str(pk, "n"); msgpack_pack_int(pk, 2);
    kv_str(pk, "flip"); msgpack_pack_false(pk);
}
static void h_strn(msgpack_packer *pk) {
    msgpack_pack_map(pk, 4);
    kv_str(pk, "v"); msgpack_pack_int(pk, 1);
    kv_str(pk, "label"); msgpack_pack_int(pk, 3);
    kv_str(pk, "n"); kv_str(pk, "2");
    kv_str(pk, "flip"); msgpack_pack_false(pk);
}
static void h_dupkey(msgpack_packer *pk) {
    msgpack_pack_map(pk, 5);
    kv_str(pk, "v"); msgpack_pack_int(pk, 1);
    kv_str(pk, "label"); msgpack_pack_int(pk, 3);
    kv_str(pk, "n"); msgpack_pack_int(pk, 2);
    kv_str(pk, "flip"); msgpack_pack_false(pk);
    kv_str(pk, "n"); msgpack_pack_int(pk, 2);
}
static void h_intkey(msgpack_packer *pk) {
    msgpack_pack_map(pk, 1);
    msgpack_pack_int(pk, 7); msgpack_pack_int(pk, 1);
}
static void h_extra(msgpack_packer *pk) {   // valid + an unknown key (a later version)
    msgpack_pack_map(pk, 5);
    kv_str(pk, "v"); msgpack_pack_int(pk, 1);
    kv_str(pk, "label"); msgpack_pack_int(pk, -7);
    kv_str(pk, "future"); msgpack_pack_array(pk, 2); msgpack_pack_nil(pk); msgpack_pack_nil(pk);
    kv_str(pk, "n"); msgpack_pack_int(pk, 2);
    kv_str(pk, "flip"); msgpack_pack_false(pk);
}

Test(store_codec, record_malformed_headers) {
    uint8_t buf[256];
    store_view v;
    struct { hdr_fn fn; int want; const char *what; } cases[] = {
        {h_array, STORE_EHEADER, "array, not map"},
        {h_nov, STORE_EHEADER, "missing v"},
        {h_v2, STORE_EHEADER, "version 2"},
        {h_biglabel, STORE_EHEADER, "label beyond int32"},
        {h_strn, STORE_EHEADER, "n as string"},
        {h_dupkey, STORE_EHEADER, "repeated key"},
        {h_intkey, STORE_EHEADER, "integer key"},
        {h_extra, 0, "unknown extra key"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = make_value(buf, sizeof buf, cases[i].fn, 4);
        int rc = store_record_decode(&v, buf, n, 2, false);
        cr_assert_eq(rc, cases[i].want, "%s: got %d (%s)", cases[i].what, rc, vel_error_detail());
        if (rc) cr_assert(strlen(vel_error_detail()) > 10, "%s: detail given", cases[i].what);
    }
    size_t n = make_value(buf, sizeof buf, h_extra, 4);
    cr_assert_eq(store_record_decode(&v, buf, n, 2, false), 0);
    cr_assert_eq(v.label, -7);
}

Test(store_codec, hostile_container_counts_rejected_without_allocating) {
    // array32 / map32 claiming 2^32-1 elements in 5 bytes: msgpack-c would
    // try to allocate ~100-200 GB; the scan must refuse first.
    uint8_t a32[8] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02, 0x03};
    uint8_t m32[5] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    store_view v;
    cr_assert_eq(store_record_decode(&v, a32, sizeof a32, 2, false), STORE_EHEADER);
    cr_assert_eq(store_record_decode(&v, m32, sizeof m32, 2, false), STORE_EHEADER);
    store_meta m;
    cr_assert_eq(store_meta_decode(&m, a32, sizeof a32), STORE_EMETA);
    size_t len;
    cr_assert_eq(store_mp_scan(a32, sizeof a32, &len), -1);
    // Scan lengths of valid objects.
    uint8_t ok1[] = {0x92, 0x01, 0xa2, 'h', 'i', 0xff};    // [1, "hi"] + trailing byte
    cr_assert_eq(store_mp_scan(ok1, sizeof ok1, &len), 0);
    cr_assert_eq(len, 5);
    uint8_t str32[] = {0xdb, 0x00, 0x00, 0x00, 0x02, 'a', 'b'};
    cr_assert_eq(store_mp_scan(str32, sizeof str32, &len), 0);
    cr_assert_eq(len, 7);
    cr_assert_eq(store_mp_scan(str32, 6, &len), -1);        // body cut
    uint8_t bad[] = {0xc1};
    cr_assert_eq(store_mp_scan(bad, 1, &len), -1);
    uint8_t ext8[] = {0xc7, 0x02, 0x05, 'x', 'y'};          // ext8: len, type, body
    cr_assert_eq(store_mp_scan(ext8, sizeof ext8, &len), 0);
    cr_assert_eq(len, 5);
    uint8_t fixext4[] = {0xd6, 0x01, 1, 2, 3, 4};
    cr_assert_eq(store_mp_scan(fixext4, sizeof fixext4, &len), 0);
    cr_assert_eq(len, 6);
    uint8_t nested[] = {0x91, 0x91, 0x91};                  // [[[ ... truncated
    cr_assert_eq(store_mp_scan(nested, sizeof nested, &len), -1);
}

Test(store_codec, meta_roundtrip_bit_exact) {
    store_meta m = td_meta(3, 8, 8, true), g;
    char *buf;
    size_t len;
    cr_assert_eq(store_meta_encode(&m, &buf, &len), 0);
    cr_assert_eq(store_meta_decode(&g, buf, len), 0, "%s", vel_error_detail());
    free(buf);
    cr_assert(!g.has_stats && g.has_flip);
    cr_assert_eq(memcmp(g.shape, m.shape, sizeof m.shape), 0);
    cr_assert_str_eq(g.tokenizer_hash, m.tokenizer_hash);
    m.has_stats = true;
    float vals[3] = {0.1f, -3.4028235e38f, 1.17549435e-38f};
    for (int c = 0; c < 3; c++) { m.mean[c] = vals[c]; m.std[c] = 0.3f + c * 1e-7f; }
    cr_assert_eq(store_meta_encode(&m, &buf, &len), 0);
    cr_assert_eq(store_meta_decode(&g, buf, len), 0, "%s", vel_error_detail());
    cr_assert(g.has_stats);
    cr_assert_eq(memcmp(g.mean, m.mean, 3 * 4), 0, "mean bit-exact");
    cr_assert_eq(memcmp(g.std, m.std, 3 * 4), 0, "std bit-exact");
    // Trailing bytes are not one object.
    char *b2 = malloc(len + 1);
    memcpy(b2, buf, len);
    b2[len] = 0;
    cr_assert_eq(store_meta_decode(&g, b2, len + 1), STORE_EMETA);
    // Every truncation fails cleanly.
    for (size_t k = 0; k < len; k++) cr_assert_eq(store_meta_decode(&g, buf, k), STORE_EMETA, "cut at %zu", k);
    free(b2);
    free(buf);
    // Invalid metas are refused by the encoder.
    m.std[1] = 0;
    cr_assert_eq(store_meta_encode(&m, &buf, &len), STORE_EMETA);
    m.std[1] = NAN;
    cr_assert_eq(store_meta_encode(&m, &buf, &len), STORE_EMETA);
}

// Builds a meta map with one field replaced (or dropped when val_fn is NULL).
typedef void (*val_fn)(msgpack_packer *pk);
static const char *drop_or_swap;
static val_fn swap_fn;
static void pack_meta_variant(msgpack_packer *pk) {
    static const char *keys[11] = {"format", "format_version", "tokenizer_hash", "shape", "dtype",
                                   "mean", "std", "dataset", "dataset_size", "code_version", "has_flip"};
    int n = 11;
    for (int i = 0; i < 11; i++) if (!strcmp(keys[i], drop_or_swap) && !swap_fn) n--;
    msgpack_pack_map(pk, n);
    for (int i = 0; i < 11; i++) {
        bool target = !strcmp(keys[i], drop_or_swap);
        if (target && !swap_fn) continue;
        kv_str(pk, keys[i]);
        if (target) { swap_fn(pk); continue; }
        switch (i) {
        case 0: kv_str(pk, STORE_META_FORMAT); break;
        case 1: msgpack_pack_int(pk, 1); break;
        case 2: kv_str(pk, "hash"); break;
        case 3: msgpack_pack_array(pk, 3); msgpack_pack_int(pk, 2); msgpack_pack_int(pk, 1); msgpack_pack_int(pk, 1); break;
        case 4: kv_str(pk, "f32"); break;
        case 5: case 6: msgpack_pack_array(pk, 2); msgpack_pack_float(pk, 0.5f); msgpack_pack_float(pk, 2.0f); break;
        case 7: kv_str(pk, "toy"); break;
        case 8: msgpack_pack_int(pk, 100); break;
        case 9: kv_str(pk, "v1"); break;
        case 10: msgpack_pack_true(pk); break;
        }
    }
}
static void v_nil(msgpack_packer *pk) { msgpack_pack_nil(pk); }
static void v_int(msgpack_packer *pk) { msgpack_pack_int(pk, 5); }
static void v_str_wrong(msgpack_packer *pk) { kv_str(pk, "something-else"); }
static void v_shape2(msgpack_packer *pk) { msgpack_pack_array(pk, 2); msgpack_pack_int(pk, 2); msgpack_pack_int(pk, 1); }
static void v_shape0(msgpack_packer *pk) { msgpack_pack_array(pk, 3); msgpack_pack_int(pk, 2); msgpack_pack_int(pk, 0); msgpack_pack_int(pk, 1); }
static void v_shapeneg(msgpack_packer *pk) { msgpack_pack_array(pk, 3); msgpack_pack_int(pk, -2); msgpack_pack_int(pk, 1); msgpack_pack_int(pk, 1); }
static void v_longstr(msgpack_packer *pk) { char s[300]; memset(s, 'x', 300); msgpack_pack_str_with_body(pk, s, 300); }
static void v_nulstr(msgpack_packer *pk) { msgpack_pack_str_with_body(pk, "a\0b", 3); }
static void v_arr3(msgpack_packer *pk) { msgpack_pack_array(pk, 3); for (int i = 0; i < 3; i++) msgpack_pack_float(pk, 1.0f); }
static void v_arrneg(msgpack_packer *pk) { msgpack_pack_array(pk, 2); msgpack_pack_float(pk, 1.0f); msgpack_pack_float(pk, -1.0f); }
static void v_arrint(msgpack_packer *pk) { msgpack_pack_array(pk, 2); msgpack_pack_int(pk, 1); msgpack_pack_int(pk, 1); }
static void v_dtype_bf16(msgpack_packer *pk) { kv_str(pk, "bf16"); }
static void v_dtype_bad(msgpack_packer *pk) { kv_str(pk, "f64"); }

Test(store_codec, meta_malformed_fields) {
    struct { const char *key; val_fn fn; int want; } cases[] = {
        {"none", NULL, 0},   // baseline: the valid meta
        {"format", NULL, STORE_EMETA}, {"format", v_str_wrong, STORE_EMETA},
        {"format_version", v_str_wrong, STORE_EMETA}, {"format_version", NULL, STORE_EMETA},
        {"tokenizer_hash", v_int, STORE_EMETA}, {"tokenizer_hash", v_longstr, STORE_EMETA},
        {"tokenizer_hash", v_nulstr, STORE_EMETA},
        {"shape", v_shape2, STORE_EMETA}, {"shape", v_shape0, STORE_EMETA},
        {"shape", v_shapeneg, STORE_EMETA}, {"shape", v_nil, STORE_EMETA},
        {"dtype", v_dtype_bf16, STORE_EMETA}, {"dtype", v_dtype_bad, STORE_EMETA},
        {"mean", v_arr3, STORE_EMETA}, {"mean", v_nil, STORE_EMETA}, {"mean", v_arrint, STORE_EMETA},
        {"std", v_arrneg, STORE_EMETA}, {"std", NULL, STORE_EMETA},
        {"dataset_size", v_str_wrong, STORE_EMETA}, {"has_flip", v_int, STORE_EMETA},
        {"code_version", v_longstr, STORE_EMETA}, {"dataset", NULL, STORE_EMETA},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        drop_or_swap = cases[i].key;
        swap_fn = cases[i].fn;
        uint8_t buf[1024];
        size_t n = make_value(buf, sizeof buf, pack_meta_variant, 0);
        store_meta m;
        int rc = store_meta_decode(&m, buf, n);
        cr_assert_eq(rc, cases[i].want, "case %zu (%s %s): got %d (%s)", i, cases[i].key,
                     cases[i].fn ? "swapped" : "dropped", rc, vel_error_detail());
        if (i == 0) {
            cr_assert(m.has_stats && m.has_flip && m.shape[0] == 2 && m.mean[1] == 2.0f);
            cr_assert_str_eq(m.dataset, "toy");
        }
    }
    // Both stats nil is fine (not yet computed).
    drop_or_swap = "none";
    store_meta m;
    uint8_t big[8];
    memset(big, 0xc1, sizeof big);
    cr_assert_eq(store_meta_decode(&m, big, sizeof big), STORE_EMETA);
    cr_assert_eq(store_meta_decode(&m, big, STORE_META_LIMIT + 1), STORE_EMETA);   // size check first
}

Test(store_codec, meta_expect_and_compat) {
    store_meta a = td_meta(4, 8, 8, false), b = a;
    int64_t sh[3] = {4, 8, 8}, sh2[3] = {4, 8, 4};
    cr_assert_eq(store_meta_expect(&a, "sha256:tok-test", sh), 0);
    cr_assert_eq(store_meta_expect(&a, NULL, NULL), 0);
    cr_assert_eq(store_meta_expect(&a, "sha256:other", sh), STORE_EHASH);
    cr_assert(strstr(vel_error_detail(), "sha256:other"));
    cr_assert_eq(store_meta_expect(&a, NULL, sh2), STORE_ESHAPE);
    cr_assert(strstr(vel_error_detail(), "4x8x4"));
    cr_assert_eq(store_meta_compatible(&a, &b), 0);
    b.dataset_size = 5;
    cr_assert_eq(store_meta_compatible(&a, &b), STORE_EMETA);
    b = a;
    strcpy(b.code_version, "other");   // a new code version may resume
    cr_assert_eq(store_meta_compatible(&a, &b), 0);
}
