// test_checkpoint.c: checkpoint round trips (weights, Adam/AdamW/Muon state,
// EMA, step and RNG position) are bit-exact, the files are what PyTorch-side
// tools expect (names, metadata), and inconsistent checkpoints are refused
// with clear errors and without touching the caller's buffers.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "nn/checkpoint.h"
#include "tests/util.h"

static void make_table(param_table *pt, int64_t width) {
    param_table_init(pt);
    param_add(pt, "net.0.weight", 2, (int64_t[]){width, 3});
    param_add(pt, "net.0.bias", 1, (int64_t[]){width});
    param_add(pt, "net.2.weight", 4, (int64_t[]){2, width, 3, 3});
    param_add(pt, "net.2.bias", 1, (int64_t[]){2});
    cr_assert_eq(param_table_commit(pt), 0);
}

typedef struct {
    param_table pt;
    optim *o;
    ema *e;
} run;

static void make_run(run *r, optim_kind kind, int with_ema, int64_t width) {
    make_table(&r->pt, width);
    optim_config c = optim_defaults(kind);
    cr_assert_eq(optim_create(&r->o, &r->pt, &c), 0);
    r->e = NULL;
    if (with_ema) cr_assert_eq(ema_create(&r->e, &r->pt), 0);
}

static void free_run(run *r) {
    optim_destroy(&r->o);
    ema_destroy(&r->e);
    param_table_free(&r->pt);
}

// Random values in every parameter, the table's padding left at zero (the
// files hold parameters only, so whole-buffer comparisons need it).
static void fill_params(float *buf, const param_table *pt, uint64_t seed) {
    for (int i = 0; i < pt->count; i++)
        fill_normal(buf + pt->info[i].offset, pt->info[i].numel, seed + (uint64_t)i * 1000, 1.0f);
}

// A few real steps so every state buffer holds something nonzero.
static void train_a_bit(run *r, uint64_t seed) {
    fill_params(r->pt.values, &r->pt, seed);
    for (int s = 0; s < 3; s++) {
        fill_params(r->pt.grads, &r->pt, seed + 1 + (uint64_t)s);
        optim_step(r->o, &r->pt, 1e-2);
        if (r->e) ema_update(r->e, &r->pt, 0.9);
    }
}

static void expect_same(const run *a, const run *b) {
    size_t n = (size_t)a->pt.total * sizeof(float);
    for (int i = 0; i < a->pt.count; i++)
        cr_expect_eq(memcmp(param_data(&a->pt, i), param_data(&b->pt, i),
                            (size_t)a->pt.info[i].numel * 4), 0, "values of %s", a->pt.info[i].name);
    cr_expect_eq(memcmp(a->o->state, b->o->state, 2 * n), 0, "optimizer state");
    cr_expect_eq(a->o->step, b->o->step);
    if (a->e) cr_expect_eq(memcmp(a->e->shadow, b->e->shadow, n), 0, "ema");
}

static void roundtrip(optim_kind kind) {
    char *dir = test_tmpdir("ckpt_rt");
    char prefix[512];
    snprintf(prefix, sizeof prefix, "%s/step3", dir);
    run a, b;
    make_run(&a, kind, 1, 8);
    train_a_bit(&a, 42);
    ckpt_state st = {.step = 3, .rng_seed = 0xfeedbeefcafe1234ull, .rng_offset = 987654321ull};
    st_kv extra[] = {{"config", "{\"width\": 8}"}};
    cr_assert_eq(ckpt_save(prefix, &a.pt, a.o, a.e, &st, extra, 1), 0, "%s", vel_error_detail());

    make_run(&b, kind, 1, 8);
    ckpt_state got = {0};
    cr_assert_eq(ckpt_load(prefix, &b.pt, b.o, b.e, &got), 0, "%s", vel_error_detail());
    expect_same(&a, &b);
    cr_expect_eq(got.step, st.step);
    cr_expect_eq(got.rng_seed, st.rng_seed);
    cr_expect_eq(got.rng_offset, st.rng_offset);

    // The weights file is a plain model file: PyTorch names, extra metadata.
    char path[600];
    snprintf(path, sizeof path, "%s.safetensors", prefix);
    st_file *f;
    cr_assert_eq(st_open(&f, path), 0, "%s", vel_error_detail());
    cr_expect_eq(st_count(f), 4);
    cr_expect_geq(st_find(f, "net.2.weight"), 0);
    cr_expect_str_eq(st_meta_get(f, "format"), "pt");
    cr_expect_str_eq(st_meta_get(f, "config"), "{\"width\": 8}");
    cr_expect_str_eq(st_meta_get(f, "train.step"), "3");
    st_close(&f);
    snprintf(path, sizeof path, "%s.optim.safetensors", prefix);
    cr_assert_eq(st_open(&f, path), 0, "%s", vel_error_detail());
    cr_expect_str_eq(st_meta_get(f, "optim.kind"), optim_kind_name(kind));
    cr_expect_str_eq(st_meta_get(f, "optim.step"), "3");
    cr_expect_geq(st_find(f, "ema.net.0.bias"), 0);
    if (kind == OPTIM_MUON) {
        cr_expect_geq(st_find(f, "momentum_buffer.net.2.weight"), 0);
        cr_expect_lt(st_find(f, "exp_avg.net.2.weight"), 0);
        cr_expect_geq(st_find(f, "exp_avg_sq.net.0.bias"), 0);
    } else {
        cr_expect_geq(st_find(f, "exp_avg_sq.net.2.weight"), 0);
    }
    st_close(&f);

    // Weights only into a bare table.
    param_table w;
    make_table(&w, 8);
    cr_assert_eq(ckpt_load(prefix, &w, NULL, NULL, NULL), 0, "%s", vel_error_detail());
    cr_expect_eq(memcmp(w.values, a.pt.values, (size_t)w.total * 4), 0);
    // EMA weights as a model file (f32 exact; bf16 = the converter's rounding).
    snprintf(path, sizeof path, "%s/ema.safetensors", dir);
    cr_assert_eq(ckpt_save_ema_weights(path, &a.pt, a.e, DT_F32, extra, 1), 0, "%s", vel_error_detail());
    cr_assert_eq(st_load_params(path, &w), 0, "%s", vel_error_detail());
    cr_expect_eq(memcmp(w.values, a.e->shadow, (size_t)w.total * 4), 0);
    cr_assert_eq(ckpt_save_ema_weights(path, &a.pt, a.e, DT_BF16, NULL, 0), 0, "%s", vel_error_detail());
    cr_assert_eq(st_load_params(path, &w), 0, "%s", vel_error_detail());
    for (int64_t k = 0; k < w.total; k++)
        cr_assert_eq(w.values[k], bf16_to_f32(f32_to_bf16(a.e->shadow[k])), "bf16 ema %lld", (long long)k);
    param_table_free(&w);
    free_run(&a);
    free_run(&b);
    rm_rf(dir);
    free(dir);
}

Test(checkpoint, roundtrip_adam) { roundtrip(OPTIM_ADAM); }
Test(checkpoint, roundtrip_adamw) { roundtrip(OPTIM_ADAMW); }
Test(checkpoint, roundtrip_muon) { roundtrip(OPTIM_MUON); }

// Loading a bad checkpoint fails with a message and leaves b untouched.
static void expect_refused(const char *prefix, run *b, int code, const char *needle) {
    size_t n = (size_t)b->pt.total * 4;
    float *v = malloc(n), *s = malloc(2 * n);
    memcpy(v, b->pt.values, n);
    memcpy(s, b->o->state, 2 * n);
    int64_t step = b->o->step;
    ckpt_state got = {0};
    int rc = ckpt_load(prefix, &b->pt, b->o, b->e, &got);
    cr_expect_eq(rc, code, "got %d (%s), want %d", rc, vel_error_detail(), code);
    cr_expect(strstr(vel_error_detail(), needle) != NULL, "message '%s' lacks '%s'", vel_error_detail(), needle);
    cr_expect_eq(memcmp(v, b->pt.values, n), 0, "values changed by a failed load");
    cr_expect_eq(memcmp(s, b->o->state, 2 * n), 0, "state changed by a failed load");
    cr_expect_eq(b->o->step, step);
    free(v);
    free(s);
}

Test(checkpoint, refuses_inconsistent) {
    char *dir = test_tmpdir("ckpt_bad");
    char p1[512], p2[512], cmd[1200];
    snprintf(p1, sizeof p1, "%s/a", dir);
    snprintf(p2, sizeof p2, "%s/b", dir);
    run a, b;
    make_run(&a, OPTIM_ADAMW, 1, 8);
    train_a_bit(&a, 1);
    ckpt_state st = {.step = 3};
    cr_assert_eq(ckpt_save(p1, &a.pt, a.o, a.e, &st, NULL, 0), 0, "%s", vel_error_detail());
    st.step = 4;
    cr_assert_eq(ckpt_save(p2, &a.pt, a.o, a.e, &st, NULL, 0), 0, "%s", vel_error_detail());

    // Optimizer kind differs.
    make_run(&b, OPTIM_MUON, 1, 8);
    expect_refused(p1, &b, CKPT_EMETA, "adamw");
    free_run(&b);
    // Model of another width: shapes named.
    make_run(&b, OPTIM_ADAMW, 1, 16);
    expect_refused(p1, &b, CKPT_ESHAPE, "net.0.weight");
    free_run(&b);
    // Weights of step 4 beside optimizer state of step 3 (crash between renames).
    snprintf(cmd, sizeof cmd, "cp %s.optim.safetensors %s.optim.safetensors", p1, p2);
    cr_assert_eq(system(cmd), 0);
    make_run(&b, OPTIM_ADAMW, 1, 8);
    expect_refused(p2, &b, CKPT_EMETA, "train.step");
    // Missing optimizer file.
    snprintf(cmd, sizeof cmd, "rm %s.optim.safetensors", p2);
    cr_assert_eq(system(cmd), 0);
    expect_refused(p2, &b, VEL_ENOTFOUND, "b.optim.safetensors");
    // Truncated weights file.
    snprintf(cmd, sizeof cmd, "truncate -s 100 %s.safetensors", p1);
    cr_assert_eq(system(cmd), 0);
    expect_refused(p1, &b, CKPT_ETRUNC, "a.safetensors");
    free_run(&b);
    // The run has an EMA, the checkpoint not.
    snprintf(p2, sizeof p2, "%s/noema", dir);
    st.step = 3;
    cr_assert_eq(ckpt_save(p2, &a.pt, a.o, NULL, &st, NULL, 0), 0, "%s", vel_error_detail());
    make_run(&b, OPTIM_ADAMW, 1, 8);
    expect_refused(p2, &b, CKPT_EMISSING, "EMA");
    free_run(&b);
    // ... while a run without an EMA may resume from one that has it.
    snprintf(p1, sizeof p1, "%s/withema", dir);
    cr_assert_eq(ckpt_save(p1, &a.pt, a.o, a.e, &st, NULL, 0), 0, "%s", vel_error_detail());
    make_run(&b, OPTIM_ADAMW, 0, 8);
    ckpt_state got;
    cr_expect_eq(ckpt_load(p1, &b.pt, b.o, NULL, &got), 0, "%s", vel_error_detail());
    cr_expect_eq(memcmp(b.o->state, a.o->state, (size_t)(2 * a.pt.total) * 4), 0);
    free_run(&b);
    free_run(&a);
    rm_rf(dir);
    free(dir);
}

// FNV-1a 64 over the file's bytes with the project's offset basis
// 1469598103934665603 (see nn/checkpoint.h): values from a Python
// implementation of the same loop, and a file longer than the read buffer
// (64 KiB) against the loop over memory.
static void write_bytes(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    cr_assert_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

Test(checkpoint, file_hash_fnv1a64) {
    char *dir = test_tmpdir("ckpt_hash");
    char path[512], h[17];
    snprintf(path, sizeof path, "%s/f.bin", dir);
    const struct { const char *s, *hash; } vec[] = {
        {"", "14650fb0739d0383"}, {"a", "44bd8ad473cd9906"}, {"foobar", "88fad7c0a8ff07f2"}};
    for (int i = 0; i < 3; i++) {
        write_bytes(path, (const unsigned char *)vec[i].s, strlen(vec[i].s));
        cr_assert_eq(ckpt_file_hash(path, h), 0);
        cr_expect_str_eq(h, vec[i].hash, "'%s': %s", vec[i].s, h);
    }
    enum { N = 200000 };
    unsigned char *b = malloc(N);
    for (int i = 0; i < N; i++) b[i] = (unsigned char)(i * 2654435761u >> 13);
    write_bytes(path, b, N);
    uint64_t want = 1469598103934665603ull;
    for (int i = 0; i < N; i++) want = (want ^ b[i]) * 1099511628211ull;
    char ws[17];
    snprintf(ws, sizeof ws, "%016llx", (unsigned long long)want);
    cr_assert_eq(ckpt_file_hash(path, h), 0);
    cr_expect_str_eq(h, ws);
    snprintf(path, sizeof path, "%s/absent.bin", dir);
    cr_expect_eq(ckpt_file_hash(path, h), VEL_EIO);
    free(b);
    rm_rf(dir);
    free(dir);
}
