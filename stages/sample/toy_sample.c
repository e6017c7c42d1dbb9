// toy_sample.c: `sample --model toy-flow`, in two roles on one job stream
// (wiring in bus/bus.h):
//   --role source: the job source. Splits --n samples into jobs of
//     --job-size, each carrying (count, seed), issues them, re-issues any not
//     acked by the eval sink within --deadline-ms, publishes eos when all
//     are acked.
//   --role worker (default): pulls jobs, draws x0 ~ N(0, I) from the job's
//     own seed (numpy-compatible MT19937), runs Euler (--steps, uniform
//     grid, models/sampler.h) with the flow model and pushes the
//     normalised latents ("latents", tensor "z" (count, 2)) to the decoders.
// Results depend only on the job list, never on how many workers ran or
// which job a worker took, because every job carries its own seed.
// --exact: the worker integrates the exact velocity v* of the class-A
// mixture instead of a flow model (the sampler's own floor, docs/FORMULAS.md
// section 2 diagnostics). By default in the coordinates the flows use, the
// --store's normalised ones (x - mean) / std with x0 ~ N(0, I) there (pair it
// with `decode --identity --store` on the same store); --exact-coords raw
// integrates in data space (x0 ~ N(0, I) in data units, a different path and
// a different floor; pair it with `decode --identity` and no store).
// --die-after K (tests): a worker exits abruptly after taking K jobs,
// without answering the last one, to check that nothing is lost.
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "bus/worker.h"
#include "data/toy_gmm.h"
#include "models/toy_flow.h"
#include "models/sampler.h"
#include "core/base.h"
#include "core/mt19937.h"
#include "stages/common/flags.h"
#include "stages/sample/sample.h"
#include "stages/common/job_source.h"
#include "store/store.h"

static const char STAGE[] = "sample";
// Bounds: the eval sink holds every sample, the source one message per job.
enum { SAMPLE_MAX_N = 100000000, SAMPLE_MAX_JOB = 1 << 24, SAMPLE_MAX_SOURCES = 1024 };

static void help(void) {
    printf("usage: sample --model toy-flow --role source --n N --jobs-bind EP --acks-bind EP --ctl-bind EP [options]\n"
           "       sample --model toy-flow [--role worker] --ckpt FLOW.safetensors --jobs EP --ctl EP --out EP [options]\n"
           "source options:\n"
           "  --n N               samples in total (default 10000)\n"
           "  --job-size K        samples per job (default 500)\n"
           "  --seed S            base seed; job j uses seed S * 1000003 + j (default 0)\n"
           "  --src I             this source's producer id (default 0)\n"
           "  --deadline-ms MS    re-issue a job not acked this long (default 5000)\n"
           "  --stall-s S         give up when no job has been acked for S seconds (default 600;\n"
           "                      0 = wait forever): a dead eval sink ends the run with an error\n"
           "  --bind-any          allow binding tcp:// on any address, not only 127.0.0.1\n"
           "                      (default: loopback only)\n"
           "worker options:\n"
           "  --steps N           Euler steps on a uniform grid (default 20)\n"
           "  --sources P         job sources to hear eos from (default 1)\n"
           "  --exact             integrate the exact velocity v* of the mixture (no --ckpt), by\n"
           "                      default in the normalised coordinates of --store DIR (the flows'\n"
           "                      own: decode with --identity --store DIR)\n"
           "  --exact-coords normalised|raw   raw: in data coordinates, no --store (the floor of\n"
           "                      a flow trained on unnormalised data; decode --identity, no store)\n"
           "  --store DIR         the latent store whose per-coordinate mean/std define the\n"
           "                      normalised coordinates (with --exact)\n"
           "  --credit K          hold at most K jobs of each source at once (default 2): the\n"
           "                      source hands jobs only to workers with credit, so N workers\n"
           "                      share even a short run\n"
           "  --idle-s S          stop (exit 1) after S seconds without any message; live\n"
           "                      sources send a heartbeat every second (default 60; 0 = never)\n"
           "  --die-after K       (tests) exit abruptly after taking K jobs\n"
           DEVICE_HELP);
}

#define FLOW_BMAX 1024   // the flow model's batch buffers (toy_flow_load) and tb

typedef struct { toy_flow *f; float *tb; } flow_ctx;

// In chunks of FLOW_BMAX rows: a job may hold more points than the model's
// buffers (--job-size above 1024 used to overrun them).
static int flow_velocity(void *ctx, float *v, const float *x, double t, const int32_t *y, int64_t n) {
    (void)y;
    flow_ctx *c = ctx;
    for (int i = 0; i < FLOW_BMAX; i++) c->tb[i] = (float)t;
    for (int64_t i0 = 0; i0 < n; i0 += FLOW_BMAX) {
        int b = (int)(n - i0 < FLOW_BMAX ? n - i0 : FLOW_BMAX);
        toy_flow_velocity(c->f, v + 2 * i0, x + 2 * i0, c->tb, b);
    }
    return 0;
}

static int exact_velocity(void *ctx, float *v, const float *x, double t, const int32_t *y, int64_t n) {
    (void)y;
    toy_gmm_velocity_batch(ctx, v, x, n, t);
    return 0;
}

typedef struct {
    toy_flow *f;               // NULL with --exact
    toy_gmm *g;                // the mixture for --exact
    flow_ctx fc;
    const double *ts;          // Euler grid (steps + 1)
    smp_opts so;               // Euler, unconditional
    int steps, die_after, taken;
    float *x, *scratch;        // (cap, 2) each, grown on demand
    int64_t cap;
} sample_ctx;

// One "job" (count, seed) -> its "latents" reply (bus/worker.h callback).
static int sample_item(void *ctx, const bus_msg *m, bus_msg **reply) {
    sample_ctx *c = ctx;
    int64_t count = 0;
    if (!bus_msg_is(m, "job") || bus_msg_get_int(m, "count", &count) || count < 1 || count > (1 << 24)) {
        fprintf(stderr, "sample: dropped a message that is not a valid job (kind '%s')\n", bus_msg_kind(m));
        return 0;
    }
    uint64_t seed = 0;
    if (bus_msg_get_uint(m, "seed", &seed)) {
        fprintf(stderr, "sample: job %llu has no seed; dropped\n", (unsigned long long)bus_msg_id(m));
        return 0;
    }
    sample_die_after(&c->taken, c->die_after, bus_msg_id(m));
    if (count > c->cap) {
        free(c->x); free(c->scratch);
        c->x = malloc(sizeof(float) * 2 * count);
        c->scratch = malloc(smp_scratch_bytes(&c->so, count, 2, 0));
        c->cap = count;
        if (!c->x || !c->scratch) { fprintf(stderr, "sample: out of memory\n"); c->cap = 0; return VEL_ENOMEM; }
    }
    mt19937 r;
    mt_seed(&r, (uint32_t)(seed ^ (seed >> 32)));
    for (int64_t i = 0; i < 2 * count; i++) c->x[i] = (float)mt_randn(&r);
    int e = smp_integrate(c->x, NULL, count, 2, c->ts, c->steps, &c->so, c->f ? flow_velocity : exact_velocity,
                          c->f ? (void *)&c->fc : (void *)c->g, c->scratch);
    if (e) { fprintf(stderr, "sample: %s\n", vel_strerror(e)); return e; }
    tensor t = tensor_view(DT_F32, c->x, 2, (int64_t[]){count, 2});
    if ((e = bus_msg_new_reply(reply, "latents", m)) || (e = bus_msg_add_tensor(*reply, "z", &t))) {
        fprintf(stderr, "sample: cannot build latents: %s\n", vel_strerror(e));
        bus_msg_destroy(reply);
    }
    return 0;
}

// The class-A mixture in the store's normalised coordinates (spath) or raw
// ones (spath NULL). Returns 0 or an exit code.
static int exact_mixture(toy_gmm **g, const char *spath) {
    if (toy_gmm_build(g, "A")) { fprintf(stderr, "sample: cannot build the mixture\n"); return 1; }
    if (!spath) return 0;
    store *st = NULL;
    int e = store_open(&st, spath, NULL, (int64_t[]){2, 1, 1}, NULL);
    if (e) {
        fprintf(stderr, "sample: cannot open store %s: %s (%s)\n", spath, vel_strerror(e), vel_error_detail());
        return vel_exit_code(e);
    }
    const store_meta *m = store_get_meta(st);
    double mean[2] = {m->mean[0], m->mean[1]}, std[2] = {m->std[0], m->std[1]};
    int ok = m->has_stats && std[0] > 0 && std[1] > 0;
    store_close(&st);
    if (!ok) { fprintf(stderr, "sample: store %s has no latent statistics\n", spath); return 2; }
    toy_gmm_normalise(*g, mean, std);
    fprintf(stderr, "[sample worker] exact velocity in %s's coordinates: mean (%g, %g) std (%g, %g)\n", spath,
            mean[0], mean[1], std[0], std[1]);
    return 0;
}

static int run_worker(const char *ckpt, const char *spath, const char *jobs_ep, const char *ctl_ep,
                      const char *out_ep, int sources, int steps, int die_after, int credit, int idle_s) {
    sample_ctx c = {.steps = steps, .die_after = die_after, .so = smp_opts_default()};
    int rc = ckpt ? toy_flow_load(&c.f, ckpt, FLOW_BMAX) : exact_mixture(&c.g, spath);
    if (rc && ckpt) fprintf(stderr, "sample: cannot load flow model: %s\n", vel_errmsg(rc));
    if (rc) return ckpt ? vel_exit_code(rc) : rc;   // a missing or wrong checkpoint: 2
    float *tb = malloc(sizeof(float) * FLOW_BMAX);
    double *ts = malloc(sizeof(double) * (steps + 1));
    rc = 1;
    if (!tb || !ts) { fprintf(stderr, "sample: out of memory\n"); goto done; }
    smp_time_grid(ts, steps, 1.0);
    c.fc = (flow_ctx){c.f, tb};
    c.ts = ts;
    bus_worker_opts wo = {.name = "sample",
                          .in = {.data_ep = jobs_ep, .bind = 0, .ctl_ep = ctl_ep, .nproducers = sources,
                                 .credit = credit, .idle_ms = idle_s * 1000},
                          .out_ep = out_ep};
    bus_worker_stats ws;
    rc = vel_exit_code(bus_worker_run(&wo, sample_item, &c, &ws));   // 2: bad endpoint; 1: run failed
    if (!rc) fprintf(stderr, "[sample worker] answered %llu jobs\n", (unsigned long long)ws.answered);
done:
    free(c.x); free(c.scratch); free(tb); free(ts);
    toy_flow_destroy(&c.f);
    toy_gmm_destroy(&c.g);
    return rc;
}

int sample_toy_flow_main(int argc, char **argv) {
    const char *role = "worker", *ckpt = NULL, *jobs = NULL, *ctl = NULL, *out = NULL;
    const char *jobs_bind = NULL, *acks_bind = NULL, *ctl_bind = NULL, *spath = NULL;
    int n = 10000, job_size = 500, seed = 0, src = 0, deadline = 5000, steps = 20, sources = 1, die_after = 0, stall_s = 600;
    int exact = 0, bind_any = 0, coords_raw = 0, credit = BUS_CREDIT_DEFAULT, idle_s = BUS_IDLE_DEFAULT_MS / 1000;
    static const char *const COORDS[] = {"normalised", "raw", NULL};
    const flag_spec F[] = {
        FLAG_STR_("role", &role), FLAG_STR_("ckpt", &ckpt), FLAG_STR_("jobs", &jobs), FLAG_STR_("ctl", &ctl),
        FLAG_STR_("out", &out), FLAG_STR_("jobs-bind", &jobs_bind), FLAG_STR_("acks-bind", &acks_bind),
        FLAG_STR_("ctl-bind", &ctl_bind), FLAG_INT_("n", &n, 1, SAMPLE_MAX_N),
        FLAG_INT_("job-size", &job_size, 1, SAMPLE_MAX_JOB), FLAG_INT_("seed", &seed, INT_MIN, INT_MAX),
        FLAG_INT_("src", &src, 0, SAMPLE_MAX_SOURCES - 1), FLAG_INT_("deadline-ms", &deadline, 1, INT_MAX),
        FLAG_INT_("steps", &steps, 1, 100000), FLAG_INT_("sources", &sources, 1, SAMPLE_MAX_SOURCES),
        FLAG_INT_("stall-s", &stall_s, 0, INT_MAX), FLAG_INT_("die-after", &die_after, 0, INT_MAX),
        FLAG_INT_("credit", &credit, 1, 64), FLAG_INT_("idle-s", &idle_s, 0, 86400),
        FLAG_BOOL_("exact", &exact), FLAG_BOOL_("bind-any", &bind_any), FLAG_STR_("store", &spath),
        FLAG_CHOICE_("exact-coords", &coords_raw, COORDS), FLAG_DEVICE_};
    int help_asked;
    if (flag_parse(STAGE, argc, argv, F, FLAG_COUNT(F), &help_asked, NULL)) return 2;
    if (help_asked) { help(); return 0; }
    if (!strcmp(role, "source")) {
        if (!jobs_bind || !acks_bind || !ctl_bind) {
            fprintf(stderr, "sample: the source needs --jobs-bind, --acks-bind and --ctl-bind\n");
            return 2;
        }
        sample_source_opts so = {.n = n, .job_size = job_size, .seed = (uint64_t)seed, .src = src,
                                 .deadline_ms = deadline, .stall_s = stall_s, .bind_any = bind_any,
                                 .jobs_ep = jobs_bind, .acks_ep = acks_bind, .ctl_ep = ctl_bind};
        return sample_run_source(&so, NULL, NULL);
    }
    if (strcmp(role, "worker") != 0) { fprintf(stderr, "sample: --role must be source or worker\n"); return 2; }
    if ((!ckpt == !exact) || !jobs || !ctl || !out) {
        fprintf(stderr, "sample: a worker needs exactly one of --ckpt/--exact, and --jobs, --ctl, --out\n");
        return 2;
    }
    if (spath && (!exact || coords_raw)) {
        fprintf(stderr, "sample: --store is for --exact in normalised coordinates only\n");
        return 2;
    }
    if (exact && !coords_raw && !spath) {
        fprintf(stderr, "sample: --exact integrates in the normalised coordinates of --store DIR "
                        "(the flows'); pass --store DIR, or --exact-coords raw for data coordinates\n");
        return 2;
    }
    return run_worker(ckpt, spath, jobs, ctl, out, sources, steps, die_after, credit, idle_s);
}
