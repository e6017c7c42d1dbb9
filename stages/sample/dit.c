// dit.c: `sample --model dit`, class-conditional LightningDiT sampling in two
// roles on one job stream (wiring: docs/PROTOCOL.md section 7):
//   --role source: the job source (stages/sample/source.h) for --n images in
//     jobs of --job-size; each job carries count, its own seed and a
//     "labels" tensor i32 (count): the class of global image i is i mod K
//     (--labels balanced, the default) or uniform in 0..K-1 from Philox
//     (--labels random: word i of (--seed, stream SAMPLE_LABEL_STREAM),
//     label = (word * K) >> 32), K = --classes.
//   --role worker (default): loads a DiT checkpoint (below), and per job
//     draws x0 ~ N(0, I) (count, C, S, S) from Philox (the job's seed,
//     stream SAMPLE_NOISE_STREAM, element offset = row * C*S*S, so the split
//     into --batch chunks changes nothing), integrates it from t = 0 to 1
//     with models/sampler.h (Euler or Heun on linspace(0, 1, --steps + 1),
//     optional time shift, classifier-free guidance with the conditional and
//     unconditional halves in one forward), and pushes "latents": z f32
//     (count, C, S, S) and labels i32 (count).
// Units on the wire: z is in the latent store's NORMALISED units, as the
// model produces them and as docs/PROTOCOL.md ("latents") specifies; the
// decoder (decode --model vae --store DIR) de-normalises with the store's
// __meta__ stats (store_denormalise) before decoding.
// Results depend only on the job list: the same bytes whatever the number of
// workers or which worker took a job (tests/stages/test_sample_dit.c).
//
// Checkpoint (what `train --model dit` writes, stages/train/dit*.c): a
// safetensors file with the model's PyTorch names and the architecture in
// __metadata__ (dit.depth, dit.hidden, dit.heads, dit.patch,
// dit.in_channels, dit.input_size, dit.num_classes, dit.qk_norm). Given
// --ckpt DIR/dit.safetensors the worker samples from the EMA weights
// DIR/dit-ema.safetensors when that file exists (--no-ema: the raw weights).
// --die-after K (tests): a worker exits abruptly after taking K jobs.
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus/bus.h"
#include "bus/worker.h"
#include "core/base.h"
#include "core/philox.h"
#include "models/dit_train.h"
#include "models/lightningdit.h"
#include "models/sampler.h"
#include "nn/safetensors.h"
#include "stages/common/flags.h"
#include "stages/sample/sample.h"
#include "stages/common/job_source.h"

static const char STAGE[] = "sample";
enum { DIT_MAX_N = 100000000, DIT_MAX_JOB = 1 << 20, DIT_MAX_SOURCES = 1024, DIT_MAX_BATCH = 4096,
       DIT_MAX_CLASSES = 1 << 20, DIT_MAX_STEPS = 100000 };
// Philox streams of the sampler's draws (core/philox.h).
enum { SAMPLE_NOISE_STREAM = 31, SAMPLE_LABEL_STREAM = 32 };

static void help(void) {
    printf("usage: sample --model dit --role source --n N --jobs-bind EP --acks-bind EP --ctl-bind EP [options]\n"
           "       sample --model dit [--role worker] --ckpt DIT.safetensors --jobs EP --ctl EP --out EP [options]\n"
           "source options:\n"
           "  --n N               images in total (default 10000)\n"
           "  --job-size K        images per job (default 64)\n"
           "  --classes K         class labels 0..K-1 (default 10, or the checkpoint's; must not exceed the model's)\n"
           "  --ckpt FILE         (optional) the DiT checkpoint the workers use: K defaults to its\n"
           "                      dit.num_classes and a larger --classes is refused\n"
           "  --labels MODE       balanced (image i gets class i mod K, default) or random (uniform)\n"
           "  --seed S            base seed: job j uses seed S * 1000003 + j, random labels use S (default 0)\n"
           "  --src I  --deadline-ms MS (5000)  --stall-s S (600)  --bind-any: as for --model toy-flow\n"
           "worker options:\n"
           "  --ckpt FILE         DiT checkpoint; its sibling NAME-ema.safetensors is used when present\n"
           "  --no-ema            sample from FILE itself even when an EMA file exists\n"
           "  --steps N           integration steps on linspace(0, 1, N + 1) (default 50; paper 250)\n"
           "  --method M          euler (default) or heun\n"
           "  --shift S           time shift t' = S t / (1 + (S - 1) t) (default 1: none; LightningDiT 0.3)\n"
           "  --cfg W             guidance scale: v = v_u + W (v_c - v_u) (default 1: none; paper 1.7)\n"
           "  --cfg-lo T --cfg-hi T  guide only where T_lo <= t <= T_hi, t after the shift\n"
           "                      (default 0 and 1; paper 0.21 and 1)\n"
           "  --guide-channels K  guide the first K latent channels only (default 0: all;\n"
           "                      3 = LightningDiT's inherited quirk)\n"
           "  --batch B           images per forward (default 16; a guided forward holds 2B)\n"
           "  --sources P         job sources to hear eos from (default 1)\n"
           "  --die-after K       (tests) exit abruptly after taking K jobs\n"
           DEVICE_HELP);
}

// ---------------------------------------------------------------- source
typedef struct { int classes, random; uint64_t seed; int32_t *buf; } label_ctx;

static int add_labels(void *ctx, bus_msg *job, uint64_t id, int64_t first, int count) {
    (void)id;
    label_ctx *c = ctx;
    for (int i = 0; i < count; i++) {
        uint64_t g = (uint64_t)(first + i);
        if (!c->random) { c->buf[i] = (int32_t)(g % (uint64_t)c->classes); continue; }
        uint32_t w[4];
        philox_block(w, c->seed, SAMPLE_LABEL_STREAM, g / 4);
        c->buf[i] = (int32_t)(((uint64_t)w[g % 4] * (uint64_t)c->classes) >> 32);
    }
    tensor t = tensor_view(DT_I32, c->buf, 1, (int64_t[]){count});
    return bus_msg_add_tensor(job, "labels", &t);
}

// ---------------------------------------------------------------- model
static int meta_int(const st_file *f, const char *key, int lo, int hi, int *out) {
    const char *v = st_meta_get(f, key);
    char *end = NULL;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || end == v || *end || x < lo || x > hi) return -1;
    *out = (int)x;
    return 0;
}

// Builds the model a checkpoint describes (for batches up to bmax) and loads
// its weights. 0, or a code with a sentence in msg.
static int dit_load(ldit **out, const char *path, int bmax, char *msg, size_t cap) {
    *out = NULL;
    st_file *f;
    int rc = st_open(&f, path);
    if (rc) { snprintf(msg, cap, "%s", vel_errmsg(rc)); return rc; }   // the detail names the file
    ldit_config c = {0};
    static const char *keys[] = {"dit.depth", "dit.hidden", "dit.heads", "dit.patch", "dit.in_channels",
                                 "dit.input_size", "dit.num_classes", "dit.qk_norm"};
    int *vals[] = {&c.depth, &c.hidden, &c.heads, &c.patch, &c.in_channels, &c.input_size,
                   &c.num_classes, &c.qk_norm};
    for (int i = 0; i < 8 && !rc; i++)
        if (meta_int(f, keys[i], 0, 1 << 24, vals[i])) {
            snprintf(msg, cap, "%s: missing or bad %s in the metadata (not a DiT checkpoint?)", path, keys[i]);
            rc = CKPT_EMETA;
        }
    st_close(&f);
    if (rc) return rc;
    if (ldit_config_validate(&c)) {
        snprintf(msg, cap, "%s: %s", path, vel_error_detail());
        return LDIT_ECONFIG;
    }
    if ((rc = ldit_create(out, &c, bmax))) { snprintf(msg, cap, "%s: %s", path, vel_strerror(rc)); return rc; }
    if ((rc = st_load_params(path, &(*out)->pt))) {
        snprintf(msg, cap, "%s", vel_errmsg(rc));
        ldit_destroy(out);
    }
    return rc;
}

// The file to sample from: DIR/NAME-ema.safetensors beside DIR/NAME.safetensors
// when it exists and use_ema, else path itself. out holds cap bytes.
static const char *weights_path(const char *path, int use_ema, char *out, size_t cap) {
    size_t n = strlen(path), sfx = strlen(".safetensors");
    if (!use_ema || n <= sfx || strcmp(path + n - sfx, ".safetensors") != 0 || n + 8 > cap) return path;
    snprintf(out, cap, "%.*s-ema.safetensors", (int)(n - sfx), path);
    return access(out, R_OK) == 0 ? out : path;
}

// ---------------------------------------------------------------- worker
typedef struct {
    ldit *m;
    smp_opts so;
    const double *ts;
    int steps, batch, die_after, taken;
    int64_t numel;             // C*S*S per image
    dit_vel_ctx vel;           // the model and (2 * batch) times for its forward
    void *scratch;             // smp_scratch_bytes(so, batch, numel, 1)
    float *x;                  // (cap, numel), grown per job
    int32_t *y;                // (cap)
    int64_t cap;
} dit_ctx;

// One "job" -> its "latents" reply (bus/worker.h callback).
static int dit_item(void *ctx, const bus_msg *msg, bus_msg **reply) {
    dit_ctx *c = ctx;
    const ldit_config *mc = &c->m->cfg;
    int64_t count = 0;
    uint64_t seed = 0;
    tensor tl;
    if (!bus_msg_is(msg, "job") || bus_msg_get_int(msg, "count", &count) || count < 1 || count > DIT_MAX_JOB ||
        bus_msg_get_uint(msg, "seed", &seed) || bus_msg_find(msg, "labels", &tl) || tl.dtype != DT_I32 ||
        tl.ndim != 1 || tl.shape[0] != count) {
        fprintf(stderr, "sample: item %llu is not a DiT job (kind 'job', count 1..%d, seed, labels i32 (count)); "
                "dropped\n", (unsigned long long)bus_msg_id(msg), DIT_MAX_JOB);
        return 0;
    }
    const int32_t *labels = tl.data;
    for (int64_t i = 0; i < count; i++)
        if (labels[i] < 0 || labels[i] >= mc->num_classes) {
            fprintf(stderr, "sample: job %llu: label %d outside the model's 0..%d; dropped\n",
                    (unsigned long long)bus_msg_id(msg), labels[i], mc->num_classes - 1);
            return 0;
        }
    sample_die_after(&c->taken, c->die_after, bus_msg_id(msg));
    if (count > c->cap) {
        free(c->x); free(c->y);
        c->x = malloc(sizeof(float) * (size_t)(count * c->numel));
        c->y = malloc(sizeof(int32_t) * (size_t)count);
        c->cap = count;
        if (!c->x || !c->y) { fprintf(stderr, "sample: out of memory\n"); c->cap = 0; return VEL_ENOMEM; }
    }
    memcpy(c->y, labels, sizeof(int32_t) * (size_t)count);
    for (int64_t i0 = 0; i0 < count; i0 += c->batch) {
        int64_t b = count - i0 < c->batch ? count - i0 : c->batch;
        float *x = c->x + i0 * c->numel;
        philox_normal(x, b * c->numel, seed, SAMPLE_NOISE_STREAM, (uint64_t)(i0 * c->numel));
        int e = smp_integrate(x, c->y + i0, b, c->numel, c->ts, c->steps, &c->so, dit_velocity, &c->vel, c->scratch);
        if (e) {
            fprintf(stderr, "sample: job %llu: %s\n", (unsigned long long)bus_msg_id(msg),
                    vel_strerror(e));
            return e;
        }
    }
    int S = mc->input_size;
    tensor tz = tensor_view(DT_F32, c->x, 4, (int64_t[]){count, mc->in_channels, S, S});
    tensor ty = tensor_view(DT_I32, c->y, 1, (int64_t[]){count});
    int e;
    if ((e = bus_msg_new_reply(reply, "latents", msg)) || (e = bus_msg_add_tensor(*reply, "z", &tz)) ||
        (e = bus_msg_add_tensor(*reply, "labels", &ty))) {
        fprintf(stderr, "sample: cannot build latents: %s\n", vel_strerror(e));
        bus_msg_destroy(reply);
    }
    return 0;
}

typedef struct {
    const char *ckpt, *jobs, *ctl, *out;
    int use_ema, sources, steps, batch, die_after;
    double shift;
    smp_opts so;
    device_kind dev;   // --device (parsed; the worker activates it)
    int dev_index;
} worker_opts;

static int run_worker(const worker_opts *o) {
    char wbuf[4096], msg[8192];   // msg holds a path and a sentence
    double *ts = NULL;
    const char *wpath = weights_path(o->ckpt, o->use_ema, wbuf, sizeof wbuf);
    int guided = o->so.cfg_scale != 1.0f;
    dit_ctx c = {.so = o->so, .steps = o->steps, .batch = o->batch, .die_after = o->die_after};
    int rc = dit_load(&c.m, wpath, guided ? 2 * o->batch : o->batch, msg, sizeof msg);
    if (rc) {
        fprintf(stderr, "sample: cannot load the DiT: %s\n", msg);
        return rc == VEL_ENOMEM ? 1 : 2;   // a missing or wrong checkpoint is an input error
    }
    if (o->dev == DEVICE_CUDA) {   // the model, then every forward, on the GPU
        if (device_activate(o->dev, o->dev_index, msg, sizeof msg)) {
            fprintf(stderr, "sample: %s\n", msg);
            ldit_destroy(&c.m);
            return 2;
        }
        if ((rc = ldit_to_device(c.m, DEVICE_CUDA))) {
            fprintf(stderr, "sample: placing the DiT on the GPU: %s\n", vel_errmsg(rc));
            ldit_destroy(&c.m);
            device_release();
            return 1;
        }
    }
    const ldit_config *mc = &c.m->cfg;
    fprintf(stderr, "[sample worker] %s (%s weights): depth %d, hidden %d, %d x %d x %d latents, %d classes\n",
            wpath, wpath == o->ckpt ? "given" : "EMA", mc->depth, mc->hidden, mc->in_channels, mc->input_size,
            mc->input_size, mc->num_classes);
    c.numel = (int64_t)mc->in_channels * mc->input_size * mc->input_size;
    c.so.channels = mc->in_channels;
    c.so.null_class = mc->num_classes;
    rc = 2;
    if (smp_opts_check(&c.so, c.numel)) {
        fprintf(stderr, "sample: --guide-channels %d exceeds the model's %d latent channels\n",
                c.so.guide_channels, mc->in_channels);
        goto done;
    }
    rc = 1;
    ts = malloc(sizeof(double) * (size_t)(o->steps + 1));
    c.vel = (dit_vel_ctx){c.m, malloc(sizeof(float) * 2 * (size_t)o->batch)};
    c.scratch = malloc(smp_scratch_bytes(&c.so, o->batch, c.numel, 1));
    c.ts = ts;
    if (!ts || !c.vel.t || !c.scratch) { fprintf(stderr, "sample: out of memory\n"); goto done; }
    smp_time_grid(ts, o->steps, o->shift);
    bus_worker_opts wo = {.name = "sample",
                          .in = {.data_ep = o->jobs, .bind = 0, .ctl_ep = o->ctl, .nproducers = o->sources,
                                 .credit = BUS_CREDIT_DEFAULT, .idle_ms = BUS_IDLE_DEFAULT_MS},
                          .out_ep = o->out};
    bus_worker_stats ws;
    double t0 = vel_now();
    rc = vel_exit_code(bus_worker_run(&wo, dit_item, &c, &ws));   // 2: bad endpoint; 1: run failed
    if (!rc)
        fprintf(stderr, "[sample worker] answered %llu jobs (%.1f s)\n", (unsigned long long)ws.answered,
                vel_now() - t0);
done:
    free(ts); free(c.vel.t); free(c.scratch); free(c.x); free(c.y);
    ldit_destroy(&c.m);
    device_release();
    return rc;
}

int sample_dit_main(int argc, char **argv) {
    const char *role = "worker", *jobs_bind = NULL, *acks_bind = NULL, *ctl_bind = NULL, *labels = "balanced";
    int64_t n = 10000;
    int job_size = 64, src = 0, deadline = 5000, stall_s = 600, bind_any = 0, classes = 0;
    uint64_t seed = 0;
    worker_opts w = {.use_ema = 1, .sources = 1, .steps = 50, .batch = 16, .shift = 1.0, .so = smp_opts_default()};
    static struct option L[] = {
        {"model", 1, 0, 'm'}, {"role", 1, 0, 'r'}, {"ckpt", 1, 0, 'c'}, {"jobs", 1, 0, 'j'},
        {"ctl", 1, 0, 'C'}, {"out", 1, 0, 'o'}, {"jobs-bind", 1, 0, 'J'}, {"acks-bind", 1, 0, 'A'},
        {"ctl-bind", 1, 0, 'B'}, {"n", 1, 0, 'n'}, {"job-size", 1, 0, 'k'}, {"seed", 1, 0, 'S'},
        {"src", 1, 0, 'i'}, {"deadline-ms", 1, 0, 'd'}, {"stall-s", 1, 0, 'T'}, {"bind-any", 0, 0, 'a'},
        {"classes", 1, 0, 'K'}, {"labels", 1, 0, 'L'}, {"no-ema", 0, 0, 'N'}, {"steps", 1, 0, 's'},
        {"method", 1, 0, 'M'}, {"shift", 1, 0, 'f'}, {"cfg", 1, 0, 'w'}, {"cfg-lo", 1, 0, 'l'},
        {"cfg-hi", 1, 0, 'u'}, {"guide-channels", 1, 0, 'g'}, {"batch", 1, 0, 'b'}, {"sources", 1, 0, 'P'},
        {"die-after", 1, 0, 'X'}, {"device", 1, 0, 'x'}, {"help", 0, 0, 'h'}, {"threads", 1, 0, 300}, {0, 0, 0, 0}};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", L, NULL)) != -1) {
        switch (c) {
        case 'm': break;
        case 'r': role = optarg; break;
        case 'c': w.ckpt = optarg; break;
        case 'j': w.jobs = optarg; break;
        case 'C': w.ctl = optarg; break;
        case 'o': w.out = optarg; break;
        case 'J': jobs_bind = optarg; break;
        case 'A': acks_bind = optarg; break;
        case 'B': ctl_bind = optarg; break;
        case 'L': labels = optarg; break;
        case 'n': if (flag_i64(STAGE, "--n", optarg, 1, DIT_MAX_N, &n)) return 2; break;
        case 'k': if (flag_int(STAGE, "--job-size", optarg, 1, DIT_MAX_JOB, &job_size)) return 2; break;
        case 'S': if (flag_u64(STAGE, "--seed", optarg, &seed)) return 2; break;
        case 'i': if (flag_int(STAGE, "--src", optarg, 0, DIT_MAX_SOURCES - 1, &src)) return 2; break;
        case 'd': if (flag_int(STAGE, "--deadline-ms", optarg, 1, INT_MAX, &deadline)) return 2; break;
        case 'T': if (flag_int(STAGE, "--stall-s", optarg, 0, INT_MAX, &stall_s)) return 2; break;
        case 'a': bind_any = 1; break;
        case 'K': if (flag_int(STAGE, "--classes", optarg, 1, DIT_MAX_CLASSES, &classes)) return 2; break;
        case 'N': w.use_ema = 0; break;
        case 's': if (flag_int(STAGE, "--steps", optarg, 1, DIT_MAX_STEPS, &w.steps)) return 2; break;
        case 'M':
            if (smp_method_parse(optarg, &w.so.method)) {
                fprintf(stderr, "sample: --method must be euler or heun, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'f': if (flag_f64(STAGE, "--shift", optarg, 0, 1e6, FLAG_OPEN_LO, &w.shift)) return 2; break;
        case 'w': if (flag_f32(STAGE, "--cfg", optarg, -1e6, 1e6, 0, &w.so.cfg_scale)) return 2; break;
        case 'l': if (flag_f64(STAGE, "--cfg-lo", optarg, 0, 1, 0, &w.so.cfg_lo)) return 2; break;
        case 'u': if (flag_f64(STAGE, "--cfg-hi", optarg, 0, 1, 0, &w.so.cfg_hi)) return 2; break;
        case 'g': if (flag_int(STAGE, "--guide-channels", optarg, 0, 1 << 20, &w.so.guide_channels)) return 2; break;
        case 'b': if (flag_int(STAGE, "--batch", optarg, 1, DIT_MAX_BATCH, &w.batch)) return 2; break;
        case 'P': if (flag_int(STAGE, "--sources", optarg, 1, DIT_MAX_SOURCES, &w.sources)) return 2; break;
        case 'X': if (flag_int(STAGE, "--die-after", optarg, 0, INT_MAX, &w.die_after)) return 2; break;
        case 'x': if (flag_device(STAGE, optarg, &w.dev, &w.dev_index)) return 2; break;
        case 300: if (flag_threads(STAGE, optarg)) return 2; break;
        case 'h': help(); return 0;
        default: fprintf(stderr, "sample: unknown or incomplete option '%s' (see --help)\n", argv[optind - 1]); return 2;
        }
    }
    if (optind < argc) { fprintf(stderr, "sample: unexpected argument '%s'\n", argv[optind]); return 2; }
    if (!strcmp(role, "source")) {
        if (!jobs_bind || !acks_bind || !ctl_bind) {
            fprintf(stderr, "sample: the source needs --jobs-bind, --acks-bind and --ctl-bind\n");
            return 2;
        }
        if (strcmp(labels, "balanced") != 0 && strcmp(labels, "random") != 0) {
            fprintf(stderr, "sample: --labels must be balanced or random, not '%s'\n", labels);
            return 2;
        }
        // Workers drop (and the source re-issues until --stall-s) jobs whose
        // labels the model does not have: check against the checkpoint now.
        if (w.ckpt) {
            char v[32], *end = NULL;
            int e = st_meta_read(w.ckpt, "dit.num_classes", v, sizeof v);
            long k = e ? 0 : strtol(v, &end, 10);
            if (e || !end || *end || k < 1) {
                fprintf(stderr, "sample: %s: no dit.num_classes in the metadata (%s)\n", w.ckpt,
                        e ? vel_strerror(e) : "bad value");
                return 2;
            }
            if (classes > k) {
                fprintf(stderr, "sample: --classes %d exceeds the %ld classes of %s\n", classes, k, w.ckpt);
                return 2;
            }
            if (!classes) classes = (int)k;
        }
        if (!classes) classes = 10;
        label_ctx lc = {.classes = classes, .random = !strcmp(labels, "random"), .seed = seed,
                        .buf = malloc(sizeof(int32_t) * (size_t)job_size)};
        if (!lc.buf) { fprintf(stderr, "sample: out of memory\n"); return 1; }
        sample_source_opts so = {.n = n, .job_size = job_size, .seed = seed, .src = src, .deadline_ms = deadline,
                                 .stall_s = stall_s, .bind_any = bind_any, .jobs_ep = jobs_bind,
                                 .acks_ep = acks_bind, .ctl_ep = ctl_bind};
        int rc = sample_run_source(&so, add_labels, &lc);
        free(lc.buf);
        return rc;
    }
    if (strcmp(role, "worker") != 0) { fprintf(stderr, "sample: --role must be source or worker\n"); return 2; }
    if (!w.ckpt || !w.jobs || !w.ctl || !w.out) {
        fprintf(stderr, "sample: a worker needs --ckpt, --jobs, --ctl and --out\n");
        return 2;
    }
    if (w.so.cfg_lo > w.so.cfg_hi) {
        fprintf(stderr, "sample: --cfg-lo %g is above --cfg-hi %g\n", w.so.cfg_lo, w.so.cfg_hi);
        return 2;
    }
    return run_worker(&w);
}
