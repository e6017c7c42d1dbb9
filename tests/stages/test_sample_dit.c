// Multi-process tests of `sample --model dit` (bin/sample as separate
// processes, a bus_sink in the test process as the final sink):
//   - 1 worker, 2 workers, and 2 workers of which one is killed after its
//     first job give byte-identical latents and labels (N images, each id
//     once, balanced labels i mod K);
//   - the bytes are exactly what the sampler module computes in-process from
//     the job's seed with the EMA weights (so the worker used the EMA file,
//     the Philox noise, Heun, shift and CFG as documented; the workers run
//     single-threaded, the test's reference with the default threads);
//   - sample workers -> decode --model vae -> sink: the decoder takes the
//     latents, passes the labels on, same image bytes with 1 and 2 workers;
//   - the source takes K from the checkpoint (balanced labels i mod 10), refuses
//     a larger --classes;
//   - --labels random gives the documented Philox labels;
//   - bad inputs: a checkpoint of another model, a bad guidance interval,
//     too many guided channels, unknown labels / method: clear errors, exit 2.
// A tiny random-weight DiT (the "tiny" preset, every parameter random so
// that guidance changes the output) is enough: this checks plumbing and
// determinism, not sample quality. Needs bin/sample (make).
#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus/bus.h"
#include "core/base.h"
#include "core/philox.h"
#include "models/lightningdit.h"
#include "models/sampler.h"
#include "models/toy_ckpt.h"
#include "models/toy_flow.h"
#include "models/vae.h"
#include "nn/safetensors.h"
#include "store/store.h"
#include "tests/util.h"

enum { N = 12, JOB = 5, NJOBS = 3, BATCH = 4, STEPS = 4 };
static const uint64_t SEED = 7;
// The worker's options (also the in-process reference below).
#define WORKER_OPTS "--steps 4 --method heun --shift 0.5 --cfg 1.5 --cfg-lo 0.3 --cfg-hi 1 --guide-channels 3 --batch 4"

static char *dir;

static void save_dit(const char *path, ldit *m, uint64_t seed) {
    fill_normal(m->pt.values, m->pt.total, seed, 0.05f);
    const ldit_config *c = &m->cfg;
    char v[8][16];
    int x[8] = {c->depth, c->hidden, c->heads, c->patch, c->in_channels, c->input_size, c->num_classes, c->qk_norm};
    for (int i = 0; i < 8; i++) snprintf(v[i], sizeof v[i], "%d", x[i]);
    st_kv kv[] = {{"dit.depth", v[0]}, {"dit.hidden", v[1]}, {"dit.heads", v[2]}, {"dit.patch", v[3]},
                  {"dit.in_channels", v[4]}, {"dit.input_size", v[5]}, {"dit.num_classes", v[6]},
                  {"dit.qk_norm", v[7]}, {"dit.preset", "tiny"}};
    cr_assert_eq(st_save_params(path, &m->pt, DT_F32, kv, 9), 0, "%s", vel_error_detail());
}

// DIR/dit.safetensors (raw) and DIR/dit-ema.safetensors (other weights).
static void setup(void) {
    cr_assert(access("bin/sample", X_OK) == 0, "bin/sample missing: run make first");
    dir = test_tmpdir("sample_dit");
    ldit_config c;
    cr_assert_eq(ldit_config_preset("tiny", &c), 0);
    ldit *m;
    cr_assert_eq(ldit_create(&m, &c, 1), 0);
    char p[600];
    snprintf(p, sizeof p, "%s/dit.safetensors", dir);
    save_dit(p, m, 1);
    snprintf(p, sizeof p, "%s/dit-ema.safetensors", dir);
    save_dit(p, m, 2);
    ldit_destroy(&m);
}

static void teardown(void) {
    rm_rf(dir);
    free(dir);
}

typedef struct {
    float z[N * 4 * 8 * 8];
    int32_t y[N];
    int got[NJOBS];
    uint8_t u8[N * 32 * 32];   // images, when a decoder ran
} result;

// "decode --model vae" between the workers and the sink: tokenizer weights
// prefix and store (set up by the test that wants it), else NULL.
static const char *decode_ckpt, *decode_store;

// Source + nworkers (the first with --die-after die when die > 0) + this
// process as the sink. Fills r by job id.
static void run(const char *tag, int nworkers, int die, const char *wopts, const char *sopts, result *r) {
    memset(r, 0, sizeof *r);
    double t0 = vel_now();
    char jobs[700], acks[700], ctl[700], lat[700];
    snprintf(jobs, sizeof jobs, "ipc://%s/%s-jobs", dir, tag);
    snprintf(acks, sizeof acks, "ipc://%s/%s-acks", dir, tag);
    snprintf(ctl, sizeof ctl, "ipc://%s/%s-ctl", dir, tag);
    snprintf(lat, sizeof lat, "ipc://%s/%s-lat", dir, tag);
    char img[700];
    snprintf(img, sizeof img, "ipc://%s/%s-img", dir, tag);
    pid_t pids[5];
    int np = 0;
    pids[np++] = test_spawn("OMP_NUM_THREADS=1 exec bin/sample --model dit --role source --n %d --job-size %d --seed %llu --deadline-ms 2000 "
                       "--stall-s 60 --ckpt %s/dit.safetensors %s --jobs-bind %s --acks-bind %s --ctl-bind %s 2>%s/%s-source.log",
                       N, JOB, (unsigned long long)SEED, dir, sopts, jobs, acks, ctl, dir, tag);
    for (int w = 0; w < nworkers; w++) {
        char extra[64] = "";
        if (w == 0 && die) snprintf(extra, sizeof extra, "--die-after %d", die);
        pids[np++] = test_spawn("OMP_NUM_THREADS=1 exec bin/sample --model dit --ckpt %s/dit.safetensors %s %s --jobs %s --ctl %s --out %s "
                           "2>%s/%s-worker%d.log", dir, wopts, extra, jobs, ctl, lat, dir, tag, w);
    }
    if (decode_ckpt)
        pids[np++] = test_spawn("OMP_NUM_THREADS=1 exec bin/decode --model vae --ckpt %s --store %s --in %s --ctl %s "
                           "--reply %s 2>%s/%s-decode.log", decode_ckpt, decode_store, lat, ctl, img, dir, tag);
    bus_sink_opts so = {.in = {.data_ep = decode_ckpt ? img : lat, .bind = 1, .ctl_ep = ctl, .nproducers = 1},
                        .acks_ep = acks};
    bus_sink *s;
    cr_assert_eq(bus_sink_open(&s, &so), 0);
    alarm(120);   // a hang fails the test instead of blocking the suite
    for (;;) {
        bus_msg *m = NULL;
        int e = bus_sink_next(s, &m, 1000);
        if (e == BUS_EEOS) break;
        if (e == BUS_ETIMEOUT) continue;
        cr_assert_eq(e, 0, "sink: %s", vel_strerror(e));
        uint64_t id = bus_msg_id(m);
        tensor tz, ty;
        int64_t cnt = id == NJOBS - 1 ? N - JOB * (NJOBS - 1) : JOB;
        cr_assert(id < NJOBS);
        cr_assert_eq(r->got[id], 0, "job %llu twice from the sink", (unsigned long long)id);
        r->got[id] = 1;
        cr_assert_eq(bus_msg_find(m, "labels", &ty), 0);
        cr_assert(ty.dtype == DT_I32 && ty.ndim == 1 && ty.shape[0] == cnt);
        memcpy(r->y + id * JOB, ty.data, sizeof(int32_t) * cnt);
        if (decode_ckpt) {   // images (n, 32, 32, 1) from the tokenizer's decoder
            cr_assert(bus_msg_is(m, "images"));
            cr_assert_eq(bus_msg_find(m, "u8", &tz), 0);
            cr_assert(tz.dtype == DT_U8 && tz.ndim == 4 && tz.shape[0] == cnt && tz.shape[1] == 32 &&
                      tz.shape[2] == 32 && tz.shape[3] == 1);
            memcpy(r->u8 + id * JOB * 1024, tz.data, (size_t)cnt * 1024);
            bus_msg_destroy(&m);
            continue;
        }
        cr_assert(bus_msg_is(m, "latents"));
        cr_assert_eq(bus_msg_find(m, "z", &tz), 0);
        cr_assert(tz.dtype == DT_F32 && tz.ndim == 4 && tz.shape[0] == cnt && tz.shape[1] == 4 &&
                  tz.shape[2] == 8 && tz.shape[3] == 8);
        memcpy(r->z + id * JOB * 256, tz.data, sizeof(float) * cnt * 256);
        bus_msg_destroy(&m);
    }
    alarm(0);
    bus_sink_close(&s);
    for (int i = 0; i < np; i++) {
        int rc = test_wait(pids[i]);
        cr_assert(rc == 0 || (i == 1 && die && rc == 3), "%s: process %d exited %d (logs in %s)", tag, i, rc, dir);
    }
    for (int j = 0; j < NJOBS; j++) cr_assert(r->got[j], "%s: job %d missing", tag, j);
    cr_log_info("%s: %d workers%s, %.1f s", tag, nworkers, die ? " (one killed)" : "", vel_now() - t0);
}

typedef struct { ldit *m; float t[2 * BATCH]; } ref_ctx;

static int ref_vel(void *cx, float *v, const float *x, double t, const int32_t *yy, int64_t n) {
    ref_ctx *c = cx;
    for (int64_t i = 0; i < n; i++) c->t[i] = (float)t;
    return ldit_forward(c->m, v, x, c->t, yy, NULL, (int)n);
}

// What a worker computes for job j: Philox noise of the job's seed, the
// sampler module with the same options, the EMA weights, chunks of BATCH.
static void reference(float *z, int j, int cnt, const int32_t *y) {
    ldit_config c;
    cr_assert_eq(ldit_config_preset("tiny", &c), 0);
    ldit *m;
    cr_assert_eq(ldit_create(&m, &c, 2 * BATCH), 0);
    char p[600];
    snprintf(p, sizeof p, "%s/dit-ema.safetensors", dir);
    cr_assert_eq(st_load_params(p, &m->pt), 0, "%s", vel_error_detail());
    smp_opts o = smp_opts_default();
    o.method = SMP_HEUN, o.cfg_scale = 1.5f, o.cfg_lo = 0.3, o.cfg_hi = 1.0;
    o.channels = 4, o.guide_channels = 3, o.null_class = 10;
    double ts[STEPS + 1];
    smp_time_grid(ts, STEPS, 0.5);
    uint64_t seed = SEED * 1000003u + (uint64_t)j;
    void *scratch = malloc(smp_scratch_bytes(&o, BATCH, 256, 1));
    ref_ctx ctx = {m, {0}};
    for (int i0 = 0; i0 < cnt; i0 += BATCH) {
        int b = cnt - i0 < BATCH ? cnt - i0 : BATCH;
        philox_normal(z + i0 * 256, b * 256, seed, 31, (uint64_t)i0 * 256);
        cr_assert_eq(smp_integrate(z + i0 * 256, y + i0, b, 256, ts, STEPS, &o, ref_vel, &ctx, scratch), 0);
    }
    free(scratch);
    ldit_destroy(&m);
}

Test(sample_dit, same_bytes_for_1_2_workers_and_a_kill, .init = setup, .fini = teardown) {
    static result a, b, k;
    run("w1", 1, 0, WORKER_OPTS, "", &a);
    for (int i = 0; i < N; i++) cr_assert_eq(a.y[i], i % 10, "label %d", i);
    run("w2", 2, 0, WORKER_OPTS, "", &b);
    cr_assert_eq(memcmp(a.z, b.z, sizeof a.z), 0, "1 and 2 workers differ");
    cr_assert_eq(memcmp(a.y, b.y, sizeof a.y), 0);
    run("kill", 2, 1, WORKER_OPTS, "", &k);
    cr_assert_eq(memcmp(a.z, k.z, sizeof a.z), 0, "a killed worker changed the result");
    // exactly the sampler module's result with the EMA weights
    float *z = malloc(sizeof(float) * JOB * 256);
    for (int j = 0; j < NJOBS; j++) {
        int cnt = j == NJOBS - 1 ? N - JOB * (NJOBS - 1) : JOB;
        reference(z, j, cnt, a.y + j * JOB);
        cr_assert_eq(memcmp(z, a.z + j * JOB * 256, sizeof(float) * cnt * 256), 0, "job %d differs from "
                     "the in-process sampler", j);
    }
    char cmd[900];
    snprintf(cmd, sizeof cmd, "grep -q 'dit-ema.safetensors (EMA weights)' %s/w1-worker0.log", dir);
    cr_assert_eq(system(cmd), 0, "the worker did not say it used the EMA file");
    // without guidance, and from the raw weights (--no-ema): other samples
    static result r;
    run("nocfg", 1, 0, "--no-ema --steps 4 --method heun --shift 0.5 --batch 4", "", &r);
    cr_assert_neq(memcmp(a.z, r.z, sizeof a.z), 0);
    snprintf(cmd, sizeof cmd, "grep -q 'dit.safetensors (given weights)' %s/nocfg-worker0.log", dir);
    cr_assert_eq(system(cmd), 0, "--no-ema did not use the given file");
    free(z);
}

// The whole generation leg: DiT workers -> decode --model vae (a random
// 1-channel f4c4 tokenizer, a store with per-channel stats) -> sink. The
// decoder accepts the workers' latents (normalised units, labels passed on),
// and the images are the same bytes with 1 and 2 sample workers.
Test(sample_dit, through_the_vae_decoder, .init = setup, .fini = teardown) {
    if (access("bin/decode", X_OK)) cr_skip_test("bin/decode not built (make)");
    vae_config vc;
    cr_assert_eq(vae_config_preset("f4c4", 1, &vc), 0);
    vae *m = NULL;
    cr_assert_eq(vae_create(&m, &vc, 1, 0), 0);
    vae_init_params(m, 3);
    char ck[600], wpath[700], spath[600];
    snprintf(ck, sizeof ck, "%s/tok", dir);
    snprintf(wpath, sizeof wpath, "%s.safetensors", ck);
    st_kv meta[2] = {{"vae.config", "f4c4"}, {"vae.in_ch", "1"}};
    cr_assert_eq(st_save_params(wpath, &m->pt, DT_F32, meta, 2), 0, "%s", vel_error_detail());
    vae_destroy(&m);
    snprintf(spath, sizeof spath, "%s/store", dir);
    store_meta sm;
    cr_assert_eq(store_meta_init(&sm, "dit-test", 4, 8, 8, false, "fashion-mnist", 1, "test"), 0);
    store *st = NULL;
    cr_assert_eq(store_create(&st, spath, &sm, NULL), 0);
    float mean[4] = {0.1f, -0.2f, 0.3f, 0.0f}, sd[4] = {0.9f, 1.1f, 0.7f, 1.3f};
    cr_assert_eq(store_set_stats(st, mean, sd), 0);
    store_close(&st);
    decode_ckpt = ck, decode_store = spath;
    static result a, b;
    run("dec1", 1, 0, "--steps 2 --cfg 2 --batch 4", "", &a);
    run("dec2", 2, 0, "--steps 2 --cfg 2 --batch 4", "", &b);
    decode_ckpt = decode_store = NULL;
    for (int i = 0; i < N; i++) cr_assert_eq(a.y[i], i % 10, "label %d", i);
    cr_assert_eq(memcmp(a.u8, b.u8, sizeof a.u8), 0, "images differ between 1 and 2 sample workers");
    cr_assert_eq(memcmp(a.y, b.y, sizeof a.y), 0);
    int distinct = 0;   // not a constant image
    for (int i = 1; i < N * 1024; i++) distinct |= a.u8[i] != a.u8[0];
    cr_assert(distinct);
}

// --labels random: label of image i = (word i of Philox (seed, stream 32) * K) >> 32.
Test(sample_dit, random_labels, .init = setup, .fini = teardown) {
    static result r;
    run("random", 1, 0, "--steps 1 --batch 4", "--labels random --classes 7", &r);
    int balanced = 1;
    for (int i = 0; i < N; i++) {
        uint32_t w[4];
        philox_block(w, SEED, 32, (uint64_t)i / 4);
        int32_t want = (int32_t)(((uint64_t)w[i % 4] * 7) >> 32);
        cr_assert_eq(r.y[i], want, "label %d: %d, want %d", i, r.y[i], want);
        balanced &= r.y[i] == i % 7;
    }
    cr_assert(!balanced);
}

static int log_has(const char *what) {
    char cmd[900];
    snprintf(cmd, sizeof cmd, "grep -q -- '%s' %s/err.log", what, dir);
    return system(cmd) == 0;
}

Test(sample_dit, bad_inputs_are_clear_errors, .init = setup, .fini = teardown) {
    const char *w = "--jobs ipc:///nonexistent/j --ctl ipc:///nonexistent/c --out ipc:///nonexistent/o";
    // a toy flow checkpoint is not a DiT
    toy_flow *f;
    cr_assert_eq(toy_flow_create(&f, 1, 8, 4, TOY_TIME_RAW, 0), 0);
    char p[600];
    snprintf(p, sizeof p, "%s/flow.safetensors", dir);
    cr_assert_eq(toy_flow_save(p, f, NULL, 0), 0, "%s", vel_error_detail());
    toy_flow_destroy(&f);
    cr_assert_eq(test_sh("bin/sample --model dit --ckpt %s %s 2>%s/err.log", p, w, dir), 2);
    cr_assert(log_has("dit.depth"), "no clear message for a toy checkpoint");
    cr_assert_eq(test_sh("bin/sample --model dit --ckpt %s/missing.safetensors %s 2>%s/err.log", dir, w, dir), 2);
    cr_assert(log_has("missing.safetensors"));
    cr_assert_eq(test_sh("bin/sample --model dit --ckpt %s/dit.safetensors --cfg 2 --cfg-lo 0.8 --cfg-hi 0.2 %s "
                    "2>%s/err.log", dir, w, dir), 2);
    cr_assert(log_has("--cfg-lo"));
    cr_assert_eq(test_sh("bin/sample --model dit --ckpt %s/dit.safetensors --guide-channels 5 %s 2>%s/err.log",
                    dir, w, dir), 2);
    cr_assert(log_has("4 latent channels"));
    cr_assert_eq(test_sh("bin/sample --model dit --ckpt %s/dit.safetensors --method rk4 %s 2>%s/err.log", dir, w, dir), 2);
    cr_assert(log_has("euler or heun"));
    cr_assert_eq(test_sh("bin/sample --model dit --ckpt %s/dit.safetensors --steps 0 %s 2>%s/err.log", dir, w, dir), 2);
    cr_assert_eq(test_sh("bin/sample --model dit --role source --labels sorted --jobs-bind ipc://%s/j --acks-bind "
                    "ipc://%s/a --ctl-bind ipc://%s/c 2>%s/err.log", dir, dir, dir, dir), 2);
    cr_assert(log_has("balanced or random"));
    // the source checks --classes against the checkpoint the workers will use
    cr_assert_eq(test_sh("bin/sample --model dit --role source --ckpt %s/dit.safetensors --classes 11 --jobs-bind "
                         "ipc://%s/j --acks-bind ipc://%s/a --ctl-bind ipc://%s/c 2>%s/err.log", dir, dir, dir, dir, dir), 2);
    cr_assert(log_has("exceeds the 10 classes"));
    cr_assert_eq(test_sh("bin/sample --model dit --role source --ckpt %s --jobs-bind ipc://%s/j --acks-bind "
                         "ipc://%s/a --ctl-bind ipc://%s/c 2>%s/err.log", p, dir, dir, dir, dir), 2);
    cr_assert(log_has("dit.num_classes"));
    cr_assert_eq(test_sh("bin/sample --model dit %s 2>%s/err.log", w, dir), 2);
    cr_assert(log_has("--ckpt"));
}
