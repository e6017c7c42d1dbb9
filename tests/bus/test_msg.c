// test_msg.c: bus messages in one process: the msgpack reader on every
// encoding it accepts, header encode/decode, and socket round trips of every
// dtype at every rank 0..8 with extra header fields (copy and zero-copy
// tensors), replies, forwarding, timeouts, endpoint rules.
#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "bus/mp.h"
#include "core/base.h"
#include "tests/util.h"

// ---- msgpack reader ------------------------------------------------------

Test(bus_mp, every_integer_encoding) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    const int64_t vals[] = {0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295LL, 4294967296LL,
                            INT64_MAX, -1, -32, -33, -128, -129, -32768, -32769,
                            -2147483648LL, -2147483649LL, INT64_MIN};
    int nv = sizeof vals / sizeof vals[0];
    for (int i = 0; i < nv; i++) msgpack_pack_int64(&pk, vals[i]);
    // The explicit wide forms too (msgpack-c packs the shortest one above).
    const uint8_t wide[] = {0xcf, 0, 0, 0, 0, 0, 0, 0, 7, 0xd3, 0xff, 0xff, 0xff, 0xff, 0xff,
                            0xff, 0xff, 0xf9, 0xd0, 0x05};
    msgpack_sbuffer_write(&sb, (const char *)wide, sizeof wide);
    msgpack_pack_uint64(&pk, UINT64_MAX);
    mp_cursor c = mp_cursor_make(sb.data, sb.size);
    for (int i = 0; i < nv; i++) {
        int64_t v;
        cr_assert_eq(mp_read_i64(&c, &v), 0, "value %d", i);
        cr_assert_eq(v, vals[i]);
    }
    int64_t v;
    uint64_t u;
    cr_assert_eq(mp_read_i64(&c, &v), 0); cr_assert_eq(v, 7);
    cr_assert_eq(mp_read_i64(&c, &v), 0); cr_assert_eq(v, -7);
    cr_assert_eq(mp_read_u64(&c, &u), 0); cr_assert_eq(u, 5);
    // UINT64_MAX does not fit an int64: type error, cursor unchanged.
    cr_assert_eq(mp_read_i64(&c, &v), BUS_EFIELD);
    cr_assert_eq(mp_read_u64(&c, &u), 0); cr_assert_eq(u, UINT64_MAX);
    cr_assert_eq(mp_left(&c), 0);
    cr_assert_eq(mp_read_u64(&c, &u), BUS_EMSGPACK);
    // A negative value is not a u64.
    const uint8_t neg[] = {0xff};
    c = mp_cursor_make(neg, 1);
    cr_assert_eq(mp_read_u64(&c, &u), BUS_EFIELD);
    msgpack_sbuffer_destroy(&sb);
}

Test(bus_mp, floats_strings_containers_and_truncation) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_float(&pk, 1.5f);
    msgpack_pack_double(&pk, -2.25);
    char longs[300];
    memset(longs, 'x', sizeof longs);
    msgpack_pack_str(&pk, 300);
    msgpack_pack_str_body(&pk, longs, 300);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_nil(&pk);
    msgpack_pack_bin(&pk, 3);
    msgpack_pack_bin_body(&pk, "abc", 3);
    msgpack_pack_true(&pk);
    mp_cursor c = mp_cursor_make(sb.data, sb.size);
    double d;
    const char *s;
    uint32_t n;
    cr_assert_eq(mp_read_f64(&c, &d), 0); cr_assert_eq(d, 1.5);
    cr_assert_eq(mp_read_f64(&c, &d), 0); cr_assert_eq(d, -2.25);
    cr_assert_eq(mp_read_str(&c, &s, &n), 0);
    cr_assert_eq(n, 300); cr_assert_eq(memcmp(s, longs, 300), 0);
    mp_cursor arr = c;
    cr_assert_eq(mp_skip(&c), 0); // [ {nil: bin}, true ]
    cr_assert_eq(mp_left(&c), 0);
    // Every strict prefix of the array is rejected by skip, and the cursor
    // stays where it was.
    size_t full = (size_t)(c.p - arr.p);
    for (size_t k = 0; k < full; k++) {
        mp_cursor t = mp_cursor_make(arr.p, k);
        cr_assert_eq(mp_skip(&t), BUS_EMSGPACK, "prefix %zu", k);
        cr_assert_eq(t.p, arr.p);
    }
    // An array claiming more elements than bytes left is a lie.
    const uint8_t lie[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01};
    c = mp_cursor_make(lie, sizeof lie);
    cr_assert_eq(mp_read_array(&c, &n), BUS_EMSGPACK);
    // Deep nesting stops at MP_MAX_DEPTH instead of recursing.
    uint8_t deep[100];
    memset(deep, 0x91, sizeof deep);
    deep[99] = 0xc0;
    c = mp_cursor_make(deep, sizeof deep);
    cr_assert_eq(mp_skip(&c), BUS_EMSGPACK);
    // Reserved byte.
    const uint8_t c1[] = {0xc1};
    c = mp_cursor_make(c1, 1);
    cr_assert_eq(mp_skip(&c), BUS_EMSGPACK);
    msgpack_sbuffer_destroy(&sb);
}

// ---- header encode / decode ------------------------------------------------

Test(bus_header, encode_decode_fields) {
    bus_msg *m;
    cr_assert_eq(bus_msg_new(&m, "latents", 3, 0xfedcba9876543210ull), 0);
    float x[6] = {1, 2, 3, 4, 5, 6};
    int64_t shape[2] = {2, 3};
    tensor t = tensor_view(DT_F32, x, 2, shape);
    cr_assert_eq(bus_msg_add_tensor(m, "z", &t), 0);
    cr_assert_eq(bus_msg_add_tensor(m, "z", &t), BUS_ENAME);
    cr_assert_eq(bus_msg_set_int(m, "step", -12), 0);
    cr_assert_eq(bus_msg_set_int(m, "step", 5), BUS_ENAME);
    cr_assert_eq(bus_msg_set_int(m, "id", 5), BUS_ENAME);
    cr_assert_eq(bus_msg_set_str(m, "ckpt", "abc123"), 0);
    uint8_t *hb;
    size_t hl;
    cr_assert_eq(bus_msg_encode_header(m, &hb, &hl), 0);
    bus_header h;
    size_t fl = 24;
    cr_assert_eq(bus_header_decode(hb, hl, &fl, 1, NULL, &h), 0);
    cr_assert_str_eq(h.kind, "latents");
    cr_assert_eq(h.id, 0xfedcba9876543210ull);
    cr_assert_eq(h.src, 3);
    cr_assert_eq(h.ntensors, 1);
    cr_assert_str_eq(h.tensors[0].name, "z");
    cr_assert_eq(h.tensors[0].nbytes, 24);
    int64_t step;
    char buf[16];
    cr_assert_eq(bus_field_int(hb, &h, "step", &step), 0);
    cr_assert_eq(step, -12);
    cr_assert_eq(bus_field_str(hb, &h, "ckpt", buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "abc123");
    cr_assert_eq(bus_field_str(hb, &h, "ckpt", buf, 6), VEL_ERANGE);
    cr_assert_eq(bus_field_str(hb, &h, "step", buf, sizeof buf), BUS_EFIELD);
    cr_assert_eq(bus_field_int(hb, &h, "nope", &step), VEL_ENOTFOUND);
    // Wrong frame length / count.
    fl = 20;
    cr_assert_eq(bus_header_decode(hb, hl, &fl, 1, NULL, &h), BUS_ESIZE);
    cr_assert_eq(bus_header_decode(hb, hl, &fl, 0, NULL, &h), BUS_EFRAMES);
    // Every truncation of the header is rejected (never read past the end).
    fl = 24;
    for (size_t k = 0; k < hl; k++) {
        int rc = bus_header_decode(hb, k, &fl, 1, NULL, &h);
        cr_assert(rc == BUS_EHDRSIZE || rc == BUS_EMSGPACK, "prefix %zu gave %d", k, rc);
    }
    free(hb);
    bus_msg_destroy(&m);
    cr_assert_null(m);
}

// ---- socket round trips ----------------------------------------------------

static atomic_int g_freed;
static void count_free(void *data, void *hint) {
    cr_assert_eq(data, hint);
    free(data);
    atomic_fetch_add(&g_freed, 1);
}

typedef struct { bus_socket *tx, *rx; char *dir; } pair;

static pair open_pair(const char *scheme) {
    pair p = {0};
    cr_assert_eq(bus_socket_open(&p.tx, BUS_PUSH, NULL), 0);
    cr_assert_eq(bus_socket_open(&p.rx, BUS_PULL, NULL), 0);
    char ep[512];
    if (!strcmp(scheme, "ipc")) {
        p.dir = test_tmpdir("bus");
        snprintf(ep, sizeof ep, "ipc://%s/s", p.dir);
    } else {
        snprintf(ep, sizeof ep, "tcp://127.0.0.1:*");
    }
    cr_assert_eq(bus_bind(p.rx, ep), 0);
    cr_assert_eq(bus_last_endpoint(p.rx, ep, sizeof ep), 0);
    cr_assert_eq(bus_connect(p.tx, ep), 0);
    return p;
}

static void close_pair(pair *p) {
    bus_socket_close(&p->tx);
    bus_socket_close(&p->rx);
    if (p->dir) { rm_rf(p->dir); free(p->dir); }
}

// Fills n bytes from a seed (splitmix64).
static void fill_bytes(uint8_t *b, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed += 0x9e3779b97f4a7c15ull;
        uint64_t z = seed;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        b[i] = (uint8_t)(z ^ (z >> 31));
    }
}

static void roundtrip_dtype(dtype_t dt, const char *scheme) {
    pair p = open_pair(scheme);
    atomic_store(&g_freed, 0);
    for (int rank = 0; rank <= TENSOR_MAX_DIMS; rank++) {
        int64_t shape[TENSOR_MAX_DIMS];
        for (int d = 0; d < rank; d++) shape[d] = 1 + (d * 7 + rank) % 3; // 1..3, varied
        int64_t numel = shape_numel_checked(rank, shape);
        size_t nb = (size_t)numel * dtype_size(dt);
        uint8_t *a = malloc(nb), *b = malloc(nb);
        fill_bytes(a, nb, 100 + (uint64_t)rank);
        fill_bytes(b, nb, 200 + (uint64_t)rank);
        tensor ta = tensor_view(dt, a, rank, shape), tb = tensor_view(dt, b, rank, shape);
        bus_msg *m;
        cr_assert_eq(bus_msg_new(&m, "latents", 1, 1000 + (uint64_t)rank), 0);
        cr_assert_eq(bus_msg_add_tensor(m, "copied", &ta), 0);
        cr_assert_eq(bus_msg_add_tensor_zc(m, "zerocopy", &tb, count_free, b), 0);
        int64_t labels[3] = {7, -1, 9};
        cr_assert_eq(bus_msg_set_ints(m, "labels", labels, 3), 0);
        cr_assert_eq(bus_msg_set_uint(m, "seed", 0xffffffffffffff00ull + (uint64_t)rank), 0);
        cr_assert_eq(bus_msg_set_int(m, "step", -rank), 0);
        cr_assert_eq(bus_msg_set_float(m, "cfg", 1.5), 0);
        cr_assert_eq(bus_msg_set_str(m, "ckpt", "sha256:abcd"), 0);
        cr_assert_eq(bus_msg_set_bool(m, "flip", rank % 2), 0);
        cr_assert_eq(bus_send(p.tx, &m, 2000), 0);
        cr_assert_null(m);
        bus_msg *r;
        cr_assert_eq(bus_recv(p.rx, &r, 5000), 0, "rank %d", rank);
        cr_assert_str_eq(bus_msg_kind(r), "latents");
        cr_assert(bus_msg_is(r, "latents"));
        cr_assert_eq(bus_msg_id(r), 1000 + (uint64_t)rank);
        cr_assert_eq(bus_msg_src(r), 1);
        cr_assert_eq(bus_msg_ntensors(r), 2);
        tensor t;
        const char *name;
        cr_assert_eq(bus_msg_tensor(r, 0, &t, &name), 0);
        cr_assert_str_eq(name, "copied");
        cr_assert_eq(t.dtype, dt);
        cr_assert_eq(t.ndim, rank);
        for (int d = 0; d < rank; d++) cr_assert_eq(t.shape[d], shape[d]);
        cr_assert_eq((uintptr_t)t.data % dtype_size(dt), 0, "view aligned to its dtype");
        cr_assert_eq(memcmp(t.data, a, nb), 0);
        cr_assert_eq(bus_msg_find(r, "zerocopy", &t), 0);
        uint8_t *expect_b = malloc(nb);
        fill_bytes(expect_b, nb, 200 + (uint64_t)rank);
        cr_assert_eq(memcmp(t.data, expect_b, nb), 0);
        free(expect_b);
        cr_assert_eq(bus_msg_find(r, "nope", &t), VEL_ENOTFOUND);
        cr_assert_eq(bus_msg_tensor(r, 2, &t, NULL), VEL_ERANGE);
        int64_t got[4];
        size_t n;
        cr_assert_eq(bus_msg_get_ints(r, "labels", got, 4, &n), 0);
        cr_assert_eq(n, 3);
        cr_assert(got[0] == 7 && got[1] == -1 && got[2] == 9);
        cr_assert_eq(bus_msg_get_ints(r, "labels", got, 2, &n), VEL_ERANGE);
        uint64_t seed;
        cr_assert_eq(bus_msg_get_uint(r, "seed", &seed), 0);
        cr_assert_eq(seed, 0xffffffffffffff00ull + (uint64_t)rank);
        int64_t step;
        cr_assert_eq(bus_msg_get_int(r, "step", &step), 0);
        cr_assert_eq(step, -rank);
        cr_assert_eq(bus_msg_get_uint(r, "step", &seed), rank ? BUS_EFIELD : 0);
        double cfg;
        cr_assert_eq(bus_msg_get_float(r, "cfg", &cfg), 0);
        cr_assert_eq(cfg, 1.5);
        char s[32];
        cr_assert_eq(bus_msg_get_str(r, "ckpt", s, sizeof s), 0);
        cr_assert_str_eq(s, "sha256:abcd");
        int flip;
        cr_assert_eq(bus_msg_get_bool(r, "flip", &flip), 0);
        cr_assert_eq(flip, rank % 2);
        cr_assert_eq(bus_msg_get_int(r, "ckpt", &step), BUS_EFIELD);
        bus_msg_destroy(&r);
        free(a);
    }
    bus_stats st;
    bus_socket_stats(p.rx, &st);
    cr_log_info("%s %s: %llu messages, %llu payloads realigned", dtype_name(dt), scheme,
                (unsigned long long)st.received, (unsigned long long)st.realigned);
    close_pair(&p);   // closing terminates the context: every frame is released by now
    cr_assert_eq(atomic_load(&g_freed), TENSOR_MAX_DIMS + 1, "zero-copy free called once per message");
}

Test(bus_roundtrip, f32_ipc) { roundtrip_dtype(DT_F32, "ipc"); }
Test(bus_roundtrip, bf16_ipc) { roundtrip_dtype(DT_BF16, "ipc"); }
Test(bus_roundtrip, f16_ipc) { roundtrip_dtype(DT_F16, "ipc"); }
Test(bus_roundtrip, u8_ipc) { roundtrip_dtype(DT_U8, "ipc"); }
Test(bus_roundtrip, i32_ipc) { roundtrip_dtype(DT_I32, "ipc"); }
Test(bus_roundtrip, f32_tcp) { roundtrip_dtype(DT_F32, "tcp"); }
Test(bus_roundtrip, i32_tcp) { roundtrip_dtype(DT_I32, "tcp"); }

Test(bus_roundtrip, big_payload_and_reply_forwarding) {
    pair p = open_pair("ipc");
    pair q = open_pair("tcp");
    size_t n = (size_t)1 << 20; // 4 MiB of f32
    float *x = malloc(n * sizeof *x);
    fill_uniform(x, (int64_t)n, 42, -1, 1);
    int64_t shape[2] = {1024, 1024};
    tensor t = tensor_view(DT_F32, x, 2, shape);
    bus_msg *m, *r, *fwd, *r2;
    cr_assert_eq(bus_msg_new(&m, "job", 0, 77), 0);
    cr_assert_eq(bus_msg_set_uint(m, "seed", 1234), 0);
    cr_assert_eq(bus_msg_set_int(m, "label", 3), 0);
    cr_assert_eq(bus_msg_add_tensor(m, "x", &t), 0);
    cr_assert_eq(bus_send(p.tx, &m, 2000), 0);
    cr_assert_eq(bus_recv(p.rx, &r, 5000), 0);
    // Forward the received message as is (frames shared, not copied) ...
    cr_assert_eq(bus_send_copy(q.tx, r, 2000), 0);
    cr_assert_eq(bus_recv(q.rx, &r2, 5000), 0);
    tensor a, b;
    cr_assert_eq(bus_msg_find(r2, "x", &a), 0);
    cr_assert_eq(memcmp(a.data, x, n * sizeof *x), 0);
    bus_msg_destroy(&r2);
    // ... and answer it: same (src, id), extra fields carried over.
    cr_assert_eq(bus_msg_new_reply(&fwd, "latents", r), 0);
    cr_assert_eq(bus_msg_find(r, "x", &b), 0);
    cr_assert_eq(bus_msg_add_tensor(fwd, "z", &b), 0);
    cr_assert_eq(bus_send(q.tx, &fwd, 2000), 0);
    cr_assert_eq(bus_recv(q.rx, &r2, 5000), 0);
    cr_assert_eq(bus_msg_id(r2), 77);
    uint64_t seed;
    int64_t label;
    cr_assert_eq(bus_msg_get_uint(r2, "seed", &seed), 0);
    cr_assert_eq(seed, 1234);
    cr_assert_eq(bus_msg_get_int(r2, "label", &label), 0);
    cr_assert_eq(label, 3);
    cr_assert_eq(bus_msg_find(r2, "z", &a), 0);
    cr_assert_eq(memcmp(a.data, x, n * sizeof *x), 0);
    bus_stats st;
    bus_socket_stats(q.rx, &st);
    cr_assert_eq(st.received, 2);
    cr_assert_eq(st.rejected, 0);
    cr_assert_geq(st.bytes_received, 2 * n * sizeof *x);
    bus_msg_destroy(&r2);
    bus_msg_destroy(&r);
    free(x);
    close_pair(&p);
    close_pair(&q);
}

Test(bus_socket, timeouts_and_unsent_zero_copy) {
    bus_socket *tx, *rx;
    char *dir = test_tmpdir("bus");
    char ep[512];
    snprintf(ep, sizeof ep, "ipc://%s/nobody", dir);
    cr_assert_eq(bus_socket_open(&rx, BUS_PULL, NULL), 0);
    cr_assert_eq(bus_bind(rx, ep), 0);
    bus_msg *m;
    double t0 = vel_now();
    cr_assert_eq(bus_recv(rx, &m, 100), BUS_ETIMEOUT);
    double dt = vel_now() - t0;
    cr_assert(dt >= 0.09 && dt < 2.0, "recv timeout took %g s", dt);
    cr_assert_null(m);
    // PUSH with no peer cannot send: timeout, message kept for a retry.
    cr_assert_eq(bus_socket_open(&tx, BUS_PUSH, &(bus_socket_opts){.linger_ms = -1}), 0);
    atomic_store(&g_freed, 0);
    cr_assert_eq(bus_msg_new(&m, "job", 0, 1), 0);
    float *x = malloc(16);
    int64_t four = 4;
    tensor t = tensor_view(DT_F32, x, 1, &four);
    cr_assert_eq(bus_msg_add_tensor_zc(m, "x", &t, count_free, x), 0);
    cr_assert_eq(bus_send(tx, &m, 50), BUS_ETIMEOUT);
    cr_assert_not_null(m);
    cr_assert_eq(atomic_load(&g_freed), 0);
    bus_msg_destroy(&m);
    cr_assert_eq(atomic_load(&g_freed), 1, "destroy frees an unsent zero-copy tensor");
    bus_socket_close(&tx);
    bus_socket_close(&rx);
    cr_assert_null(tx);
    rm_rf(dir);
    free(dir);
}

Test(bus_socket, endpoint_rules) {
    bus_socket *s, *r;
    cr_assert_eq(bus_socket_open(&s, BUS_PULL, NULL), 0);
    cr_assert_eq(bus_bind(s, "tcp://0.0.0.0:*"), BUS_EREMOTE);
    cr_expect_str_eq(vel_errmsg(BUS_EREMOTE), "bus: binding an address other than 127.0.0.1 needs --bind-any: "
                                              "'tcp://0.0.0.0:*'");
    // Ports: ZeroMQ itself read 99999 as 34463 (modulo 65536) and bound that.
    const char *bad_ports[] = {"tcp://127.0.0.1:99999", "tcp://127.0.0.1:0", "tcp://127.0.0.1:abc",
                               "tcp://127.0.0.1:-1", "tcp://127.0.0.1:+80", "tcp://127.0.0.1:", "tcp://127.0.0.1:065536"};
    for (int i = 0; i < 7; i++) cr_expect_eq(bus_bind(s, bad_ports[i]), BUS_EPORT, "%s", bad_ports[i]);
    cr_expect_str_eq(vel_errmsg(BUS_EPORT), "bus: bad tcp port (a number in 1..65535, or * when binding): "
                                            "'065536' in 'tcp://127.0.0.1:065536'");
    cr_expect_eq(bus_connect(s, "tcp://127.0.0.1:*"), BUS_EPORT, "* only when binding");
    cr_assert_eq(bus_bind(s, "udp://127.0.0.1:5"), BUS_EENDPOINT);
    cr_assert_eq(bus_bind(s, "ipc://"), BUS_EENDPOINT);
    cr_assert_eq(bus_bind(s, ""), BUS_EENDPOINT);
    cr_assert_eq(bus_bind(s, "tcp://127.0.0.1"), BUS_EENDPOINT);
    cr_assert_eq(bus_bind(s, "inproc://a,,inproc://b"), BUS_EENDPOINT);
    cr_assert_eq(bus_bind(s, "inproc://x1,inproc://x2"), 0);
    // The same tcp port twice: in use.
    char ep[256];
    cr_assert_eq(bus_bind(s, "tcp://127.0.0.1:*"), 0);
    cr_assert_eq(bus_last_endpoint(s, ep, sizeof ep), 0);
    cr_assert_eq(bus_socket_open(&r, BUS_PULL, NULL), 0);
    cr_expect_eq(bus_bind(r, ep), BUS_EADDRINUSE, "%s", ep);
    bus_socket_close(&r);
    cr_assert_eq(bus_socket_open(&r, BUS_PULL, &(bus_socket_opts){.allow_remote = 1}), 0);
    cr_assert_eq(bus_bind(r, "tcp://0.0.0.0:*"), 0, "explicit choice allows it");
    bus_socket_close(&s);
    bus_socket_close(&r);
    cr_assert_eq(bus_socket_open(&s, (bus_socket_type)9, NULL), VEL_EINVAL);
    bus_msg *m;
    cr_assert_eq(bus_msg_new(&m, "", 0, 0), BUS_ENAME);
    cr_assert_eq(bus_msg_new(&m, "a_kind_name_that_is_much_too_long_for_the_bus", 0, 0), BUS_ENAME);
    cr_assert_str_eq(vel_strerror(BUS_ESIZE), "bus: payload frame length differs from shape x dtype size");
    cr_assert_str_eq(vel_strerror(VEL_ENOMEM), vel_strerror(VEL_ENOMEM));
}

// The fuzzer's seed corpus (written by tests/bus/gen_fuzz_corpus.py) must be
// valid headers, or the fuzzer starts from nothing useful. Layout as in
// fuzz/fuzz_bus_header.c: n, n x 24-bit frame lengths, header bytes.
Test(bus_header, fuzz_seed_corpus_is_valid) {
    const char *names[] = {"job", "latents", "images", "eos", "halfs"};
    for (int k = 0; k < 5; k++) {
        char path[256];
        snprintf(path, sizeof path, "fuzz/corpus/bus_header/%s", names[k]);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f, "missing %s (run from the repository root)", path);
        uint8_t buf[4096];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        int nf = buf[0];
        size_t flen[8], off = 1;
        for (int i = 0; i < nf; i++, off += 3)
            flen[i] = (size_t)buf[off] | (size_t)buf[off + 1] << 8 | (size_t)buf[off + 2] << 16;
        bus_header h;
        bus_limits lim = {.max_header = 4096, .max_total = 1 << 20};
        int rc = bus_header_decode(buf + off, n - off, flen, nf, &lim, &h);
        cr_assert_eq(rc, 0, "%s: %s", names[k], vel_strerror(rc));
        cr_assert_str_eq(h.kind, !strcmp(names[k], "halfs") ? "points" : names[k]);
    }
}

Test(bus_msg, builder_rejects_bad_tensors_and_fields) {
    bus_msg *m;
    cr_assert_eq(bus_msg_new(&m, "job", 0, 1), 0);
    int64_t shape[2] = {2, 3};
    float x[6] = {0};
    tensor t = tensor_view(DT_F32, x, 2, shape);
    tensor bad = t;
    bad.data = NULL;
    cr_assert_eq(bus_msg_add_tensor(m, "x", &bad), VEL_EINVAL, "NULL data");
    bad = t;
    bad.stride[0] = 1; bad.stride[1] = 2;   // transposed view
    cr_assert_eq(bus_msg_add_tensor(m, "x", &bad), VEL_EINVAL, "not contiguous");
    bad = t;
    bad.shape[0] = -1;
    cr_assert_eq(bus_msg_add_tensor(m, "x", &bad), VEL_EINVAL, "negative dim");
    bad = t;
    bad.dtype = DT_COUNT;
    cr_assert_eq(bus_msg_add_tensor(m, "x", &bad), VEL_EINVAL, "unknown dtype");
    cr_assert_eq(bus_msg_add_tensor(m, "", &t), BUS_ENAME);
    cr_assert_eq(bus_msg_add_tensor_zc(m, "x", &t, NULL, NULL), VEL_EINVAL, "zero-copy needs a free fn");
    for (int i = 0; i < BUS_MAX_TENSORS; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        cr_assert_eq(bus_msg_add_tensor(m, name, &t), 0);
    }
    cr_assert_eq(bus_msg_add_tensor(m, "one_too_many", &t), VEL_ERANGE);
    for (int i = 0; i < BUS_MAX_FIELDS; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        cr_assert_eq(bus_msg_set_int(m, key, i), 0);
    }
    cr_assert_eq(bus_msg_set_int(m, "one_too_many", 1), VEL_ERANGE);
    cr_assert_eq(bus_msg_set_str(m, "k0", NULL), VEL_EINVAL);
    cr_assert_eq(bus_msg_set_int(m, "tensors", 1), BUS_ENAME, "reserved key");
    int64_t v;
    cr_assert_eq(bus_msg_get_int(m, "k63", &v), 0);
    cr_assert_eq(v, 63);
    // The full message still encodes into a header the decoder accepts.
    uint8_t *hb;
    size_t hl, fl[BUS_MAX_TENSORS];
    for (int i = 0; i < BUS_MAX_TENSORS; i++) fl[i] = sizeof x;
    cr_assert_eq(bus_msg_encode_header(m, &hb, &hl), 0);
    bus_header h;
    cr_assert_eq(bus_header_decode(hb, hl, fl, BUS_MAX_TENSORS, NULL, &h), 0);
    cr_assert_eq(h.nfields, BUS_MAX_FIELDS);
    free(hb);
    bus_msg_destroy(&m);
}
