// test_pipeline.c: the stream protocol across processes (fork): 2 job
// sources -> 3 workers -> 1 sink, over ipc:// and tcp://127.0.0.1, with
// every item arriving exactly once (after the sink's duplicate filter) and
// carrying the result its seed determines; then the same with one worker
// killed by SIGKILL mid-stream. The parent only forks, reads pipes and checks;
// all ZeroMQ work happens in the children (bus.h: a child never uses its
// parent's sockets). Every child arms alarm() so nothing can hang the suite.
// Workers use bus_inbox (data + eos); the first sink is spelled out with the
// low-level pieces (eos tracker, dedupe, acker), the chain's with bus_sink.
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus/bus.h"
#include "core/base.h"
#include "tests/util.h"

#define NSRC 2
#define NJOBS 150
#define NWORK 3
#define RES_N 8
#define EP 256

static uint64_t job_seed(uint32_t src, uint64_t id) { return test_mix64(src * 1000003ull + id); }
// The "work": a deterministic function of the job's own seed only.
static float result_value(uint64_t seed, int k) {
    return (float)(test_mix64(seed + (uint64_t)k) >> 40) / (float)(1 << 24);
}


typedef struct {
    const char *scheme;   // "ipc" or "tcp"
    const char *dir;      // for ipc paths
    int deadline_ms;
    int slow_us[NWORK];   // per-worker delay per item
} setup;

static void endpoint(const setup *su, const char *name, char out[EP]) {
    if (!strcmp(su->scheme, "ipc")) snprintf(out, EP, "ipc://%s/%s", su->dir, name);
    else snprintf(out, EP, "tcp://127.0.0.1:*");
}

// ---- children ------------------------------------------------------------------

static void source_main(const setup *su, uint32_t s, int ep_fd, int stats_fd) {
    alarm(60);
    char j[EP], a[EP], c[EP], n[32];
    snprintf(n, sizeof n, "jobs%u", s); endpoint(su, n, j);
    snprintf(n, sizeof n, "acks%u", s); endpoint(su, n, a);
    snprintf(n, sizeof n, "ctl%u", s); endpoint(su, n, c);
    bus_source_opts o = {.src = s, .jobs_ep = j, .acks_ep = a, .ctl_ep = c,
                         .deadline_ms = su->deadline_ms, .max_inflight = 32};
    bus_source *src;
    if (bus_source_open(&src, &o)) _exit(10);
    for (uint64_t id = 0; id < NJOBS; id++) {
        bus_msg *m;
        if (bus_msg_new(&m, "job", s, id) || bus_msg_set_uint(m, "seed", job_seed(s, id)) ||
            bus_msg_set_int(m, "label", (int64_t)(id % 10)))
            _exit(11);
        if (bus_source_add(src, &m)) _exit(12);
    }
    char eps[3][EP] = {{0}};
    for (int k = 0; k < 3; k++)
        if (bus_source_endpoint(src, k, eps[k], EP)) _exit(13);
    test_write_full(ep_fd, eps, sizeof eps);
    int rc = bus_source_run(src, 45000);
    bus_source_stats st;
    bus_source_get_stats(src, &st);
    test_write_full(stats_fd, &st, sizeof st);
    bus_source_close(&src);
    _exit(rc == 0 ? 0 : 14);
}

static void worker_main(const setup *su, int w, const char *jobs, const char *ctl,
                        const char *sink, int progress_fd) {
    alarm(60);
    bus_inbox *in;
    bus_socket *out;
    bus_inbox_opts io = {.data_ep = jobs, .ctl_ep = ctl, .nproducers = NSRC};
    if (bus_inbox_open(&in, &io) || bus_socket_open(&out, BUS_PUSH, NULL) ||
        bus_connect(out, sink))
        _exit(20);
    if (progress_fd >= 0) test_write_full(progress_fd, "r", 1);   // connected (see run_pipeline)
    bus_msg *m, *r;
    int rc;
    while ((rc = bus_inbox_next(in, &m, 1000)) != BUS_EEOS) {
        if (rc) continue;   // timeout, or a bad message (counted): keep serving
        uint64_t seed;
        if (bus_msg_get_uint(m, "seed", &seed)) _exit(23);
        float res[RES_N];
        for (int k = 0; k < RES_N; k++) res[k] = result_value(seed, k);
        int64_t n = RES_N;
        tensor t = tensor_view(DT_F32, res, 1, &n);
        if (bus_msg_new_reply(&r, "result", m) || bus_msg_add_tensor(r, "y", &t) ||
            bus_msg_set_int(r, "worker", w))
            _exit(24);
        bus_msg_destroy(&m);
        if (su->slow_us[w]) usleep((useconds_t)su->slow_us[w]);
        rc = bus_inbox_send(in, out, &r);
        if (rc == BUS_EEOS) break;
        if (rc) _exit(25);
        if (progress_fd >= 0) test_write_full(progress_fd, "x", 1);
    }
    bus_inbox_close(&in);
    bus_socket_close(&out);
    _exit(0);
}

typedef struct {
    int got[NSRC][NJOBS];
    int dups, bad, eos;
    int per_worker[NWORK];
} sink_result;

static void sink_main(const setup *su, const char *acks, const char *ctl, int ep_fd, int res_fd) {
    alarm(60);
    static sink_result res;
    bus_socket *in, *sub;
    bus_acker *ack;
    bus_dedupe *seen;
    bus_eos *eos;
    char ep[EP] = {0};
    endpoint(su, "sink", ep);
    if (bus_socket_open(&in, BUS_PULL, NULL) || bus_bind(in, ep) ||
        bus_last_endpoint(in, ep, EP))
        _exit(30);
    test_write_full(ep_fd, ep, EP);
    if (bus_socket_open(&sub, BUS_SUB, NULL) || bus_connect(sub, ctl)) _exit(31);
    if (bus_acker_open(&ack, acks, NULL) || bus_dedupe_new(&seen) || bus_eos_new(&eos, NSRC))
        _exit(32);
    bus_socket *socks[2] = {sub, in};
    while (!bus_eos_done(eos)) {
        int which;
        bus_msg *m;
        if (bus_recv_any(socks, 2, 1000, &which, &m)) continue;
        if (which == 0) {
            bus_eos_note(eos, m);
            bus_msg_destroy(&m);
            continue;
        }
        uint32_t s = bus_msg_src(m);
        uint64_t id = bus_msg_id(m), seed;
        tensor t;
        int64_t w = -1;
        int ok = s < NSRC && id < NJOBS && bus_msg_is(m, "result") &&
                 bus_msg_get_uint(m, "seed", &seed) == 0 && seed == job_seed(s, id) &&
                 bus_msg_find(m, "y", &t) == 0 && t.dtype == DT_F32 && t.ndim == 1 &&
                 t.shape[0] == RES_N && bus_msg_get_int(m, "worker", &w) == 0 && w >= 0 &&
                 w < NWORK;
        for (int k = 0; ok && k < RES_N; k++)
            ok = ((const float *)t.data)[k] == result_value(seed, k);
        if (!ok) {
            res.bad++;
        } else if (bus_dedupe_add(seen, s, id) == 1) {
            res.got[s][id]++;
            res.per_worker[w]++;
        } else {
            res.dups++;
        }
        // Duplicates too (the first ack may be lost), but not to a source
        // that has ended (it may be gone; the ack would only time out).
        if (!bus_eos_ended(eos, s)) bus_ack(ack, m, 1000);
        bus_msg_destroy(&m);
    }
    res.eos = bus_eos_count(eos);
    test_write_full(res_fd, &res, sizeof res);
    bus_eos_destroy(&eos);
    bus_dedupe_destroy(&seen);
    bus_acker_close(&ack);
    bus_socket_close(&in);
    bus_socket_close(&sub);
    _exit(0);
}

// ---- the parent -----------------------------------------------------------------

// kill_one: 0 normal, 1 SIGKILL worker 0 mid-stream, 2 no kill but a
// deadline shorter than the queueing time, so the source re-issues jobs that
// are still in flight and the sink must drop real duplicates.
static void run_pipeline(const char *scheme, int mode) {
    int kill_one = mode == 1;
    setup su = {.scheme = scheme, .deadline_ms = mode == 1 ? 400 : mode == 2 ? 40 : 5000};
    char *dir = test_tmpdir("buspipe");
    su.dir = dir;
    if (kill_one) su.slow_us[0] = 20000;   // worker 0 is slow and holds queued jobs
    for (int w = kill_one; w < NWORK; w++) su.slow_us[w] = mode == 2 ? 3000 : 500;
    pid_t src_pid[NSRC], sink_pid, wpid[NWORK];
    int ep_pipe[NSRC][2], st_pipe[NSRC][2], sink_ep[2], sink_res[2], prog[2];
    char eps[NSRC][3][EP];
    for (uint32_t s = 0; s < NSRC; s++) {
        cr_assert_eq(pipe(ep_pipe[s]), 0);
        cr_assert_eq(pipe(st_pipe[s]), 0);
        src_pid[s] = fork();
        cr_assert_geq(src_pid[s], 0);
        if (src_pid[s] == 0) source_main(&su, s, ep_pipe[s][1], st_pipe[s][1]);
        cr_assert_eq(test_read_full(ep_pipe[s][0], eps[s], sizeof eps[s], 20000), 0, "source %u endpoints", s);
    }
    char jobs[2 * EP + 2], acks[2 * EP + 2], ctl[2 * EP + 2];
    snprintf(jobs, sizeof jobs, "%s,%s", eps[0][0], eps[1][0]);
    snprintf(acks, sizeof acks, "%s,%s", eps[0][1], eps[1][1]);
    snprintf(ctl, sizeof ctl, "%s,%s", eps[0][2], eps[1][2]);
    cr_assert_eq(pipe(sink_ep), 0);
    cr_assert_eq(pipe(sink_res), 0);
    sink_pid = fork();
    cr_assert_geq(sink_pid, 0);
    if (sink_pid == 0) sink_main(&su, acks, ctl, sink_ep[1], sink_res[1]);
    char sink[EP];
    cr_assert_eq(test_read_full(sink_ep[0], sink, EP, 20000), 0, "sink endpoint");
    cr_assert_eq(pipe(prog), 0);
    for (int w = 0; w < NWORK; w++) {
        wpid[w] = fork();
        cr_assert_geq(wpid[w], 0);
        if (wpid[w] == 0) worker_main(&su, w, jobs, ctl, sink, w == 0 && kill_one ? prog[1] : -1);
        if (w == 0 && kill_one) {
            // The worker to be killed must hold work: let its connections
            // finish before the fast workers arrive and drain the queue.
            char r;
            cr_assert_eq(test_read_full(prog[0], &r, 1, 20000), 0, "worker 0 connected");
            usleep(200000);
        }
    }
    if (kill_one) {
        char buf[5];
        cr_assert_eq(test_read_full(prog[0], buf, sizeof buf, 20000), 0, "worker 0 progress");
        cr_assert_eq(kill(wpid[0], SIGKILL), 0);
    }
    static sink_result res;
    cr_assert_eq(test_read_full(sink_res[0], &res, sizeof res, 55000), 0, "sink result");
    bus_source_stats st[NSRC];
    for (int s = 0; s < NSRC; s++)
        cr_assert_eq(test_read_full(st_pipe[s][0], &st[s], sizeof st[s], 20000), 0, "source %d stats", s);
    int status;
    for (int s = 0; s < NSRC; s++) {
        cr_assert_eq(waitpid(src_pid[s], &status, 0), src_pid[s]);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "source %d status %d", s, status);
    }
    cr_assert_eq(waitpid(sink_pid, &status, 0), sink_pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "sink status %d", status);
    for (int w = 0; w < NWORK; w++) {
        cr_assert_eq(waitpid(wpid[w], &status, 0), wpid[w]);
        if (kill_one && w == 0) cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        else cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "worker %d status %d", w, status);
    }
    for (int s = 0; s < NSRC; s++)
        for (int i = 0; i < NJOBS; i++)
            cr_assert_eq(res.got[s][i], 1, "item (%d, %d) arrived %d times", s, i, res.got[s][i]);
    cr_assert_eq(res.bad, 0, "results that do not match their seed");
    cr_assert_eq(res.eos, NSRC);
    uint64_t reissued = 0;
    for (int s = 0; s < NSRC; s++) {
        cr_assert_eq(st[s].acked, NJOBS);
        reissued += st[s].reissued;
    }
    cr_log_info("%s mode=%d: per worker %d %d %d, dups at sink %d, reissued %llu", scheme, mode,
                res.per_worker[0], res.per_worker[1], res.per_worker[2], res.dups,
                (unsigned long long)reissued);
    if (kill_one) {
        // The killed worker held jobs it never finished: they must have been
        // re-issued and done by the others.
        cr_assert_gt(reissued, 0);
        cr_assert_gt(res.per_worker[1] + res.per_worker[2], 0);
    }
    if (mode == 2) {
        cr_assert_gt(reissued, 0);
        cr_assert_gt(res.dups, 0, "re-issued copies reached the sink and were dropped");
    }
    rm_rf(dir);
    free(dir);
}

Test(bus_pipeline, ipc_2src_3workers_1sink, .timeout = 90) { run_pipeline("ipc", 0); }
Test(bus_pipeline, tcp_2src_3workers_1sink, .timeout = 90) { run_pipeline("tcp", 0); }
Test(bus_pipeline, ipc_worker_killed, .timeout = 90) { run_pipeline("ipc", 1); }
Test(bus_pipeline, tcp_worker_killed, .timeout = 90) { run_pipeline("tcp", 1); }
Test(bus_pipeline, ipc_short_deadline_duplicates, .timeout = 90) { run_pipeline("ipc", 2); }

// ---- the documented wiring with the stage helpers ----------------------------
// 1 source -> 2 samplers -> 2 decoders -> 1 sink (bus.h), every stage built
// on bus_inbox / bus_sink; optionally one decoder is SIGKILLed mid-stream.

#define CHAIN_JOBS 120

static void chain_sampler(const char *jobs, const char *ctl, const char *lat) {
    alarm(60);
    bus_inbox *in;
    bus_socket *out;
    if (bus_socket_open(&out, BUS_PUSH, NULL) || bus_connect(out, lat)) _exit(40);
    // The decoders are bound before any sampler starts (run_chain waits for
    // them), but ZMQ_IMMEDIATE routes only over finished connections: give
    // both a moment before taking jobs, or one decoder could take every item.
    usleep(200000);
    if (bus_inbox_open(&in, &(bus_inbox_opts){.data_ep = jobs, .ctl_ep = ctl, .nproducers = 1}))
        _exit(40);
    bus_msg *m, *r;
    int rc;
    while ((rc = bus_inbox_next(in, &m, 1000)) != BUS_EEOS) {
        if (rc) continue;
        uint64_t seed;
        if (bus_msg_get_uint(m, "seed", &seed)) _exit(41);
        float z[RES_N];
        for (int k = 0; k < RES_N; k++) z[k] = result_value(seed, k);
        int64_t n = RES_N;
        tensor t = tensor_view(DT_F32, z, 1, &n);
        if (bus_msg_new_reply(&r, "latents", m) || bus_msg_add_tensor(r, "z", &t)) _exit(42);
        bus_msg_destroy(&m);
        if ((rc = bus_inbox_send(in, out, &r)) == BUS_EEOS) break;
        if (rc) _exit(43);
    }
    bus_inbox_close(&in);
    bus_socket_close(&out);
    _exit(0);
}

static void chain_decoder(const char *lat, const char *ctl, const char *img, int ready_fd,
                          int progress_fd, int slow_us) {
    alarm(60);
    bus_inbox *in;
    bus_socket *out;
    if (bus_inbox_open(&in, &(bus_inbox_opts){.data_ep = lat, .bind = 1, .ctl_ep = ctl,
                                              .nproducers = 1}) ||
        bus_socket_open(&out, BUS_PUSH, NULL) || bus_connect(out, img))
        _exit(50);
    test_write_full(ready_fd, "b", 1);
    bus_msg *m, *r;
    int rc;
    while ((rc = bus_inbox_next(in, &m, 1000)) != BUS_EEOS) {
        if (rc) continue;
        tensor z;
        if (bus_msg_find(m, "z", &z)) _exit(51);
        float y[RES_N];
        for (int k = 0; k < RES_N; k++) y[k] = 2 * ((const float *)z.data)[k];
        int64_t n = RES_N;
        tensor t = tensor_view(DT_F32, y, 1, &n);
        if (bus_msg_new_reply(&r, "images", m) || bus_msg_add_tensor(r, "y", &t)) _exit(52);
        bus_msg_destroy(&m);
        if (slow_us) usleep((useconds_t)slow_us);
        if ((rc = bus_inbox_send(in, out, &r)) == BUS_EEOS) break;
        if (rc) _exit(53);
        if (progress_fd >= 0) test_write_full(progress_fd, "x", 1);
    }
    bus_inbox_close(&in);
    bus_socket_close(&out);
    _exit(0);
}

typedef struct { int got[CHAIN_JOBS]; int bad; uint64_t dups; } chain_result;

static void chain_sink(const char *img, const char *ctl, const char *acks, int res_fd) {
    alarm(60);
    static chain_result res;
    bus_sink *s;
    bus_sink_opts o = {.in = {.data_ep = img, .bind = 1, .ctl_ep = ctl, .nproducers = 1},
                       .acks_ep = acks};
    if (bus_sink_open(&s, &o)) _exit(60);
    bus_msg *m;
    int rc;
    while ((rc = bus_sink_next(s, &m, 1000)) != BUS_EEOS) {
        if (rc) continue;
        uint64_t id = bus_msg_id(m), seed;
        tensor y;
        int ok = id < CHAIN_JOBS && bus_msg_get_uint(m, "seed", &seed) == 0 &&
                 seed == job_seed(0, id) && bus_msg_find(m, "y", &y) == 0 && y.shape[0] == RES_N;
        for (int k = 0; ok && k < RES_N; k++)
            ok = ((const float *)y.data)[k] == 2 * result_value(seed, k);
        if (ok) res.got[id]++;
        else res.bad++;
        bus_msg_destroy(&m);
    }
    res.dups = bus_sink_duplicates(s);
    test_write_full(res_fd, &res, sizeof res);
    bus_sink_close(&s);
    _exit(0);
}

static void chain_source(const char *dir, int deadline_ms) {
    alarm(60);
    char j[EP], a[EP], c[EP];
    snprintf(j, EP, "ipc://%s/jobs", dir);
    snprintf(a, EP, "ipc://%s/acks", dir);
    snprintf(c, EP, "ipc://%s/ctl", dir);
    bus_source *src;
    bus_source_opts o = {.jobs_ep = j, .acks_ep = a, .ctl_ep = c, .deadline_ms = deadline_ms,
                         .max_inflight = 16};
    if (bus_source_open(&src, &o)) _exit(70);
    for (uint64_t id = 0; id < CHAIN_JOBS; id++) {
        bus_msg *m;
        if (bus_msg_new(&m, "job", 0, id) || bus_msg_set_uint(m, "seed", job_seed(0, id)) ||
            bus_source_add(src, &m))
            _exit(71);
    }
    int rc = bus_source_run(src, 45000);
    bus_source_close(&src);
    _exit(rc == 0 ? 0 : 72);
}

static void run_chain(int kill_decoder) {
    char *dir = test_tmpdir("buschain");
    char jobs[EP], acks[EP], ctl[EP], lat[2][EP], lat_all[2 * EP + 2], img[EP];
    snprintf(jobs, EP, "ipc://%s/jobs", dir);
    snprintf(acks, EP, "ipc://%s/acks", dir);
    snprintf(ctl, EP, "ipc://%s/ctl", dir);
    snprintf(lat[0], EP, "ipc://%s/lat0", dir);
    snprintf(lat[1], EP, "ipc://%s/lat1", dir);
    snprintf(lat_all, sizeof lat_all, "%s,%s", lat[0], lat[1]);
    snprintf(img, EP, "ipc://%s/img", dir);
    int res_pipe[2], prog[2], ready[2];
    cr_assert_eq(pipe(res_pipe), 0);
    cr_assert_eq(pipe(prog), 0);
    cr_assert_eq(pipe(ready), 0);
    pid_t pid[6];
    // Bind-side processes first. The samplers start only once both decoders
    // have bound: the samplers' PUSH uses ZMQ_IMMEDIATE, so a decoder that
    // binds late would get no work and the kill below would hit an idle one
    // (seen once in CI on a loaded machine).
    if ((pid[0] = fork()) == 0) chain_source(dir, kill_decoder ? 400 : 5000);
    if ((pid[1] = fork()) == 0) chain_sink(img, ctl, acks, res_pipe[1]);
    for (int d = 0; d < 2; d++)
        if ((pid[2 + d] = fork()) == 0)
            chain_decoder(lat[d], ctl, img, ready[1], d == 0 && kill_decoder ? prog[1] : -1,
                          d == 0 && kill_decoder ? 20000 : 0);
    char bound[2];
    cr_assert_eq(test_read_full(ready[0], bound, sizeof bound, 20000), 0, "decoders bound");
    for (int s = 0; s < 2; s++)
        if ((pid[4 + s] = fork()) == 0) chain_sampler(jobs, ctl, lat_all);
    for (int i = 0; i < 6; i++) cr_assert_gt(pid[i], 0);
    if (kill_decoder) {
        char buf[3];
        cr_assert_eq(test_read_full(prog[0], buf, sizeof buf, 20000), 0, "decoder 0 progress");
        cr_assert_eq(kill(pid[2], SIGKILL), 0);
    }
    static chain_result res;
    cr_assert_eq(test_read_full(res_pipe[0], &res, sizeof res, 55000), 0, "sink result");
    for (int i = 0; i < 6; i++) {
        int status;
        cr_assert_eq(waitpid(pid[i], &status, 0), pid[i]);
        if (kill_decoder && i == 2) cr_assert(WIFSIGNALED(status));
        else cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d status %d", i, status);
    }
    for (int i = 0; i < CHAIN_JOBS; i++)
        cr_assert_eq(res.got[i], 1, "item %d arrived %d times", i, res.got[i]);
    cr_assert_eq(res.bad, 0);
    cr_log_info("chain kill=%d: dups dropped at sink %llu", kill_decoder, (unsigned long long)res.dups);
    rm_rf(dir);
    free(dir);
}

Test(bus_pipeline, chain_2samplers_2decoders, .timeout = 90) { run_chain(0); }
Test(bus_pipeline, chain_decoder_killed, .timeout = 90) { run_chain(1); }
