// toy_sample.c: `sample --model toy-flow`, in two roles on one job stream
// (wiring in bus/bus.h):
//   --role source: the job source. Splits --n samples into jobs of
//     --job-size, each carrying (count, seed), issues them, re-issues any not
//     acked by the eval sink within --deadline-ms, publishes eos when all
//     are acked.
//   --role worker (default): pulls jobs, draws x0 ~ N(0, I) from the job's
//     own seed (numpy-compatible MT19937), runs Euler (--steps, uniform
//     grid, models/toy_sampler.h) with the flow model and pushes the
//     normalised latents ("latents", tensor "z" (count, 2)) to the decoders.
// Results depend only on the job list, never on how many workers ran or
// which job a worker took, because every job carries its own seed.
// --exact: the worker integrates the exact velocity v* of the class-A
// mixture in data space instead of a flow model (the sampler's own floor,
// SPEC section 2 diagnostics; pair it with `decode --identity` and no store).
// --die-after K (tests): a worker exits abruptly after taking K jobs,
// without answering the last one, to check that nothing is lost.
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus/bus.h"
#include "data/toy_gmm.h"
#include "models/toy_mlp.h"
#include "models/toy_sampler.h"
#include "nn/base.h"
#include "nn/mt19937.h"
#include "stages/sample/sample.h"

static void help(void) {
    printf("usage: sample --model toy-flow --role source --n N --jobs-bind EP --acks-bind EP --ctl-bind EP [options]\n"
           "       sample --model toy-flow [--role worker] --ckpt FLOW.safetensors --jobs EP --ctl EP --out EP [options]\n"
           "source options:\n"
           "  --n N               samples in total (default 10000)\n"
           "  --job-size K        samples per job (default 500)\n"
           "  --seed S            base seed; job j uses seed S * 1000003 + j (default 0)\n"
           "  --src I             this source's producer id (default 0)\n"
           "  --deadline-ms MS    re-issue a job not acked this long (default 5000)\n"
           "worker options:\n"
           "  --steps N           Euler steps on a uniform grid (default 20)\n"
           "  --sources P         job sources to hear eos from (default 1)\n"
           "  --exact             integrate the exact velocity v* of the mixture (no --ckpt)\n"
           "  --die-after K       (tests) exit abruptly after taking K jobs\n");
}

typedef struct { toy_flow *f; float *tb; } flow_ctx;

static void flow_velocity(void *ctx, float *v, const float *x, double t, int64_t n) {
    flow_ctx *c = ctx;
    for (int64_t i = 0; i < n; i++) c->tb[i] = (float)t;
    toy_flow_velocity(c->f, v, x, c->tb, (int)n);
}

static void exact_velocity(void *ctx, float *v, const float *x, double t, int64_t n) {
    toy_gmm_velocity_batch(ctx, v, x, n, t);
}

static int run_source(int n, int job_size, int seed, int src, int deadline, const char *jobs_ep,
                      const char *acks_ep, const char *ctl_ep) {
    bus_source_opts o = {.src = (uint32_t)src, .jobs_ep = jobs_ep, .acks_ep = acks_ep, .ctl_ep = ctl_ep,
                         .deadline_ms = deadline};
    bus_source *s;
    int rc = bus_source_open(&s, &o);
    if (rc) { fprintf(stderr, "sample: cannot open job source: %s\n", bus_strerror(rc)); return 1; }
    uint64_t id = 0;
    for (int start = 0; start < n; start += job_size, id++) {
        bus_msg *m;
        int cnt = n - start < job_size ? n - start : job_size;
        if ((rc = bus_msg_new(&m, "job", (uint32_t)src, id)) ||
            (rc = bus_msg_set_int(m, "count", cnt)) ||
            (rc = bus_msg_set_uint(m, "seed", (uint64_t)seed * 1000003u + id)) ||
            (rc = bus_source_add(s, &m))) {
            fprintf(stderr, "sample: cannot queue job %llu: %s\n", (unsigned long long)id, bus_strerror(rc));
            bus_source_close(&s);
            return 1;
        }
    }
    double t0 = vel_now();
    rc = bus_source_run(s, -1);
    bus_source_stats st;
    bus_source_get_stats(s, &st);
    fprintf(stderr, "[sample source %d] %llu jobs, %llu issued, %llu re-issued, %llu acked (%.1f s)\n", src,
            (unsigned long long)st.jobs, (unsigned long long)st.issued, (unsigned long long)st.reissued,
            (unsigned long long)st.acked, vel_now() - t0);
    bus_source_close(&s);
    if (rc) { fprintf(stderr, "sample: job source failed: %s\n", bus_strerror(rc)); return 1; }
    return 0;
}

static int run_worker(const char *ckpt, const char *jobs_ep, const char *ctl_ep, const char *out_ep,
                      int sources, int steps, int die_after) {
    char err[600];
    toy_flow *f = NULL;
    toy_gmm *g = NULL;
    int rc = ckpt ? toy_flow_load(&f, ckpt, 1024, err, sizeof err) : toy_gmm_build(&g, "A");
    if (rc) { fprintf(stderr, "sample: cannot load flow model: %s\n", ckpt ? err : "mixture"); return 1; }
    bus_socket *in = NULL, *ctl = NULL, *out = NULL;
    bus_eos *eos = NULL;
    float *x = NULL, *scratch = NULL, *tb = malloc(sizeof(float) * 1024);
    double *ts = malloc(sizeof(double) * (steps + 1));
    int cap = 0, taken = 0, done = 0;
    rc = 1;
    int e;
    if ((e = bus_socket_open(&in, BUS_PULL, NULL)) || (e = bus_connect(in, jobs_ep)) ||
        (e = bus_socket_open(&ctl, BUS_SUB, NULL)) || (e = bus_connect(ctl, ctl_ep)) ||
        (e = bus_socket_open(&out, BUS_PUSH, NULL)) || (e = bus_connect(out, out_ep)) ||
        (e = bus_eos_new(&eos, sources))) {
        fprintf(stderr, "sample: cannot set up sockets: %s\n", bus_strerror(e));
        goto done;
    }
    toy_time_grid_uniform(ts, steps);
    flow_ctx fc = {f, tb};
    while (!bus_eos_done(eos)) {
        bus_socket *socks[2] = {ctl, in};   // ctl first: eos is cheap to notice
        int which = -1;
        bus_msg *m = NULL;
        e = bus_recv_any(socks, 2, 1000, &which, &m);
        if (e == BUS_ETIMEOUT) continue;
        if (e) { fprintf(stderr, "sample: rejected a message: %s\n", bus_strerror(e)); continue; }
        if (which == 0) {
            if (bus_eos_note(eos, m) < 0) fprintf(stderr, "sample: eos from an unknown source %u\n", bus_msg_src(m));
            bus_msg_destroy(&m);
            continue;
        }
        int64_t count = 0;
        if (!bus_msg_is(m, "job") || bus_msg_get_int(m, "count", &count) || count < 1 || count > (1 << 24)) {
            fprintf(stderr, "sample: dropped a message that is not a valid job (kind '%s')\n", bus_msg_kind(m));
            bus_msg_destroy(&m);
            continue;
        }
        uint64_t seed = 0;
        if (bus_msg_get_uint(m, "seed", &seed)) {
            fprintf(stderr, "sample: job %llu has no seed; dropped\n", (unsigned long long)bus_msg_id(m));
            bus_msg_destroy(&m);
            continue;
        }
        if (++taken == die_after) {
            fprintf(stderr, "[sample worker] --die-after %d: exiting with job %llu unanswered\n", die_after,
                    (unsigned long long)bus_msg_id(m));
            _exit(3);
        }
        if (count > cap) {
            free(x); free(scratch);
            x = malloc(sizeof(float) * 2 * count);
            scratch = malloc(sizeof(float) * 2 * count);
            cap = (int)count;
            if (!x || !scratch) { fprintf(stderr, "sample: out of memory\n"); bus_msg_destroy(&m); goto done; }
        }
        mt19937 r;
        mt_seed(&r, (uint32_t)(seed ^ (seed >> 32)));
        for (int64_t i = 0; i < 2 * count; i++) x[i] = (float)mt_randn(&r);
        if (f) toy_euler(x, count, 2, ts, steps, flow_velocity, &fc, scratch);
        else toy_euler(x, count, 2, ts, steps, exact_velocity, g, scratch);
        bus_msg *rep = NULL;
        tensor t = tensor_view(DT_F32, x, 2, (int64_t[]){count, 2});
        if ((e = bus_msg_new_reply(&rep, "latents", m)) || (e = bus_msg_add_tensor(rep, "z", &t)) ||
            (e = bus_send(out, &rep, -1))) {
            fprintf(stderr, "sample: cannot send latents: %s\n", bus_strerror(e));
            bus_msg_destroy(&rep);
        } else {
            done++;
        }
        bus_msg_destroy(&m);
    }
    fprintf(stderr, "[sample worker] answered %d jobs\n", done);
    rc = 0;
done:
    bus_socket_close(&in); bus_socket_close(&ctl); bus_socket_close(&out);
    bus_eos_destroy(&eos);
    free(x); free(scratch); free(tb); free(ts);
    toy_flow_destroy(&f);
    toy_gmm_destroy(&g);
    return rc;
}

int sample_toy_flow_main(int argc, char **argv) {
    const char *role = "worker", *ckpt = NULL, *jobs = NULL, *ctl = NULL, *out = NULL;
    const char *jobs_bind = NULL, *acks_bind = NULL, *ctl_bind = NULL;
    int n = 10000, job_size = 500, seed = 0, src = 0, deadline = 5000, steps = 20, sources = 1, die_after = 0;
    int exact = 0;
    static struct option L[] = {
        {"model", 1, 0, 'm'}, {"role", 1, 0, 'r'}, {"ckpt", 1, 0, 'c'}, {"jobs", 1, 0, 'j'},
        {"ctl", 1, 0, 'C'}, {"out", 1, 0, 'o'}, {"jobs-bind", 1, 0, 'J'}, {"acks-bind", 1, 0, 'A'},
        {"ctl-bind", 1, 0, 'B'}, {"n", 1, 0, 'n'}, {"job-size", 1, 0, 'k'}, {"seed", 1, 0, 'S'},
        {"src", 1, 0, 'i'}, {"deadline-ms", 1, 0, 'd'}, {"steps", 1, 0, 's'}, {"sources", 1, 0, 'P'},
        {"die-after", 1, 0, 'X'}, {"exact", 0, 0, 'E'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", L, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'm': break;
        case 'r': role = optarg; break;
        case 'c': ckpt = optarg; break;
        case 'j': jobs = optarg; break;
        case 'C': ctl = optarg; break;
        case 'o': out = optarg; break;
        case 'J': jobs_bind = optarg; break;
        case 'A': acks_bind = optarg; break;
        case 'B': ctl_bind = optarg; break;
        case 'n': n = (int)strtol(optarg, &end, 10); break;
        case 'k': job_size = (int)strtol(optarg, &end, 10); break;
        case 'S': seed = (int)strtol(optarg, &end, 10); break;
        case 'i': src = (int)strtol(optarg, &end, 10); break;
        case 'd': deadline = (int)strtol(optarg, &end, 10); break;
        case 's': steps = (int)strtol(optarg, &end, 10); break;
        case 'P': sources = (int)strtol(optarg, &end, 10); break;
        case 'X': die_after = (int)strtol(optarg, &end, 10); break;
        case 'E': exact = 1; break;
        case 'h': help(); return 0;
        default: fprintf(stderr, "sample: unknown or incomplete option '%s' (see --help)\n", argv[optind - 1]); return 2;
        }
        if (end && *end) { fprintf(stderr, "sample: bad number '%s'\n", optarg); return 2; }
    }
    if (!strcmp(role, "source")) {
        if (!jobs_bind || !acks_bind || !ctl_bind) {
            fprintf(stderr, "sample: the source needs --jobs-bind, --acks-bind and --ctl-bind\n");
            return 2;
        }
        if (n < 1 || job_size < 1 || src < 0 || deadline < 1) { fprintf(stderr, "sample: need --n, --job-size, --deadline-ms >= 1\n"); return 2; }
        return run_source(n, job_size, seed, src, deadline, jobs_bind, acks_bind, ctl_bind);
    }
    if (strcmp(role, "worker") != 0) { fprintf(stderr, "sample: --role must be source or worker\n"); return 2; }
    if ((!ckpt == !exact) || !jobs || !ctl || !out) {
        fprintf(stderr, "sample: a worker needs exactly one of --ckpt/--exact, and --jobs, --ctl, --out\n");
        return 2;
    }
    if (steps < 1 || steps > 100000 || sources < 1) { fprintf(stderr, "sample: need 1 <= --steps <= 100000 and --sources >= 1\n"); return 2; }
    return run_worker(ckpt, jobs, ctl, out, sources, steps, die_after);
}
