// test_faults.c: fault injection on a small pipeline (issue 15). One job
// source (credit mode) -> 3 workers -> 1 sink, each a forked process built on
// the bus helpers the stages use (bus_source_step, bus_worker_run,
// bus_sink_next), over ipc:// in a temporary folder. Each seed picks one fault
// and the point where it strikes (from the seed, at a point in the run's own
// progress, never at a wall-clock time):
//   worker  SIGKILL one worker after it has finished K = 1..2 items;
//   inject  after the sink has K = 1..10 items: garbage, a header without its
//           frame, an item with an id nobody issued, an item of an unknown
//           source, a forged eos and an oversized frame to the sink; garbage
//           and a stray ack to the source; a bad credit and a "black hole"
//           worker that takes 2 jobs and never answers;
//   sink    SIGKILL the sink after it has K = 1..10 items;
//   source  SIGKILL the source after K = 5..25 acks (it sends at most
//           MAX_INFLIGHT = 8 jobs ahead of its acks, so the step that reaches
//           K acks cannot have taken all 40 and published eos).
// Invariants checked on every seed:
//   - the sink never reports an item twice, an item no source issued, or a
//     result that does not match its job;
//   - when the run can finish (worker, inject) it does: the source and the
//     sink exit 0 and every issued item is reported exactly once;
//   - when it cannot (sink, source), it fails loudly: the source (sink
//     killed) or the sink (source killed) exits non-zero;
//   - every process has exited within BOUND_S of the fault; none is left.
// Determinism on a loaded machine: the process where the fault strikes holds
// at its fault point (it says so on a pipe and blocks on another) until the
// parent has killed it or, for the injection, sent everything; so the fault
// always lands at that point and never after the run has ended. The worker
// to be killed starts alone and the others only after it has its first item
// (with credit 2 it then holds a second one, so it always reaches K). Timeouts
// (idle, stall) are seconds apart from the 1 s heartbeat, so load cannot fire
// them in a healthy run.
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "bus/bus.h"
#include "bus/worker.h"
#include "core/base.h"
#include "tests/util.h"

#define NJOBS 40
#define NWORK 3
#define RES_N 4
#define EP 300
#define IDLE_MS 4000     // workers and the sink stop after this long without a message
#define STALL_S 4.0      // the source gives up after this long without an ack
#define BOUND_S 20.0     // every process must have exited this long after the fault
#define WORK_US 10000    // per item
#define MAX_INFLIGHT 8   // the source's window (3 workers x credit 2 fit in it)

enum { F_WORKER, F_INJECT, F_SINK, F_SOURCE, F_KINDS };
static const char *const kind_name[F_KINDS] = {"worker", "inject", "sink", "source"};

static uint64_t job_seed(uint64_t id) { return test_mix64(77 + id); }
static float result_value(uint64_t seed, int k) { return (float)(test_mix64(seed + (uint64_t)k) >> 40); }

typedef struct { char jobs[EP], acks[EP], ctl[EP], sink[EP]; } eps;

// The fault point of this process (set before its fork): at the hold_at-th
// ack (source), item done (worker) or item received (sink) it writes '!' on
// hold_fd[1] and blocks reading hold_fd[0] (the parent kills it there, or
// writes a byte to let it go on). 0: never.
static int g_hold_at, g_hold_fd[2] = {-1, -1};
static void hold_point(int count) {
    if (count != g_hold_at) return;
    test_write_full(g_hold_fd[1], "!", 1);
    char b;
    while (read(g_hold_fd[0], &b, 1) < 0 && errno == EINTR) {}
}


// ---- children ---------------------------------------------------------------

// The source: bus_source_step until every job is acked; without an ack for
// STALL_S it aborts the run (like sample --stall-s) and exits 3.
static void source_main(const eps *e, int ready_fd) {
    alarm(60);
    bus_source *s;
    bus_source_opts o = {.jobs_ep = e->jobs, .acks_ep = e->acks, .ctl_ep = e->ctl, .deadline_ms = 500,
                         .credit = 1, .eos_linger_ms = 300, .max_inflight = MAX_INFLIGHT};
    if (bus_source_open(&s, &o)) _exit(10);
    for (uint64_t id = 0; id < NJOBS; id++) {
        bus_msg *m;
        if (bus_msg_new(&m, "job", 0, id) || bus_msg_set_uint(m, "seed", job_seed(id)) || bus_source_add(s, &m))
            _exit(11);
    }
    test_write_full(ready_fd, "s", 1);
    double last = vel_now();
    uint64_t acked = 0;
    for (;;) {
        int rc = bus_source_step(s, 50);
        if (rc == 1) break;
        if (rc < 0) _exit(12);
        bus_source_stats st;
        bus_source_get_stats(s, &st);
        if (st.acked > acked) last = vel_now();
        while (acked < st.acked) hold_point((int)++acked);
        if (vel_now() - last > STALL_S) {
            bus_source_abort(s, 500);
            bus_source_close(&s);
            _exit(3);
        }
    }
    bus_source_close(&s);
    _exit(0);
}

typedef struct { int first_fd, done; } work_ctx;   // first_fd: 'f' after the first item

static int work(void *ctx, const bus_msg *item, bus_msg **reply) {
    work_ctx *w = ctx;
    uint64_t seed;
    if (bus_msg_get_uint(item, "seed", &seed)) return 0;   // not a job of ours: dropped
    float y[RES_N];
    for (int k = 0; k < RES_N; k++) y[k] = result_value(seed, k);
    int64_t n = RES_N;
    tensor t = tensor_view(DT_F32, y, 1, &n);
    usleep(WORK_US);
    int rc = bus_msg_new_reply(reply, "result", item);
    if (!rc) rc = bus_msg_add_tensor(*reply, "y", &t);
    if (rc) return rc;
    if (++w->done == 1 && w->first_fd >= 0) test_write_full(w->first_fd, "f", 1);
    hold_point(w->done);   // the reply of this item is sent, if ever, after the hold
    return 0;
}

static void worker_main(const eps *e, int first_fd) {
    alarm(60);
    work_ctx w = {first_fd, 0};
    bus_worker_opts o = {.name = "fault-worker",
                         .in = {.data_ep = e->jobs, .ctl_ep = e->ctl, .nproducers = 1, .credit = 2,
                                .idle_ms = IDLE_MS},
                         .out_ep = e->sink};
    _exit(bus_worker_run(&o, work, &w, NULL) == 0 ? 0 : 1);
}

typedef struct {
    int got[NJOBS];
    int bad, unissued, rejected, stop;   // stop: the code that ended the sink
    uint64_t dups;
} sink_result;

// The sink: every fresh item is checked against its job's seed. Writes its
// result on res_fd at the end, whatever ended it; exit 0 only on eos.
static void sink_main(const eps *e, int ready_fd, int res_fd) {
    alarm(60);
    static sink_result r;
    int held = 0;
    bus_sink *s;
    bus_sink_opts o = {.in = {.data_ep = e->sink, .bind = 1, .ctl_ep = e->ctl, .nproducers = 1, .idle_ms = IDLE_MS,
                              .sock = {.limits = {.max_frame = 64 << 10}}},
                       .acks_ep = e->acks};
    if (bus_sink_open(&s, &o)) _exit(20);
    test_write_full(ready_fd, "k", 1);
    for (;;) {
        bus_msg *m;
        int rc = bus_sink_next(s, &m, 1000);
        if (rc == BUS_ETIMEOUT) continue;
        if (rc == BUS_EEOS || rc == BUS_EABORT || rc == BUS_EIDLE) { r.stop = rc; break; }
        if (rc == BUS_EUNISSUED) { r.unissued++; continue; }
        if (rc) { r.rejected++; continue; }
        uint64_t id = bus_msg_id(m), seed;
        tensor y;
        int ok = bus_msg_src(m) == 0 && id < NJOBS && bus_msg_is(m, "result") &&
                 !bus_msg_get_uint(m, "seed", &seed) && seed == job_seed(id) && !bus_msg_find(m, "y", &y) &&
                 y.dtype == DT_F32 && y.ndim == 1 && y.shape[0] == RES_N;
        for (int k = 0; ok && k < RES_N; k++) ok = ((const float *)y.data)[k] == result_value(seed, k);
        if (ok) r.got[id]++;
        else r.bad++;
        bus_msg_destroy(&m);
        if (ok) hold_point(++held);
    }
    r.dups = bus_sink_duplicates(s);
    test_write_full(res_fd, &r, sizeof r);
    bus_sink_close(&s);
    _exit(r.stop == BUS_EEOS ? 0 : 1);
}

// Raw ZeroMQ: one message of n frames.
static void raw_send(void *sock, const void *const *frames, const size_t *len, int n) {
    for (int i = 0; i < n; i++)
        if (zmq_send(sock, frames[i], len[i], i + 1 < n ? ZMQ_SNDMORE : 0) < 0) _exit(81);
}

// A well-formed result item (src, id) with a matching tensor, over the bus.
static void send_item(bus_socket *out, uint32_t src, uint64_t id) {
    bus_msg *m;
    float y[RES_N] = {0};
    int64_t n = RES_N;
    tensor t = tensor_view(DT_F32, y, 1, &n);
    if (bus_msg_new(&m, "result", src, id) || bus_msg_set_uint(m, "seed", job_seed(id)) ||
        bus_msg_add_tensor(m, "y", &t) || bus_send(out, &m, 5000))
        _exit(82);
}

// The malformed traffic of F_INJECT (see the top of the file). Writes 'i' on
// sent_fd once the forgeries are out (the sink, held, lets them queue), then
// plays the black hole; exits 0 once it has its 2 jobs or waited 2 s.
static void injector_main(const eps *e, int sent_fd) {
    alarm(30);
    void *ctx = zmq_ctx_new();
    void *sink = zmq_socket(ctx, ZMQ_PUSH), *acks = zmq_socket(ctx, ZMQ_PUSH);
    int linger = 2000;
    zmq_setsockopt(sink, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(acks, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(sink, e->sink) || zmq_connect(acks, e->acks)) _exit(80);
    static const char garbage[] = "\xc1\xff not msgpack";
    const void *f1[1] = {garbage};
    size_t l1[1] = {sizeof garbage};
    raw_send(sink, f1, l1, 1);
    raw_send(acks, f1, l1, 1);
    // A header that announces one tensor, sent without its frame.
    bus_msg *h;
    float one[RES_N] = {0};
    int64_t n = RES_N;
    tensor t = tensor_view(DT_F32, one, 1, &n);
    uint8_t *hb;
    size_t hl;
    if (bus_msg_new(&h, "result", 0, 3) || bus_msg_add_tensor(h, "y", &t) || bus_msg_encode_header(h, &hb, &hl))
        _exit(83);
    const void *f2[1] = {hb};
    raw_send(sink, f2, &hl, 1);
    free(hb);
    bus_msg_destroy(&h);
    zmq_close(sink);
    zmq_close(acks);
    zmq_ctx_term(ctx);
    // Bus-built forgeries: unissued id, unknown source, eos on the data
    // socket, a stray ack; then a frame over the sink's 64 KiB frame cap
    // (ZeroMQ drops that connection), last.
    bus_socket *out, *ack, *big;
    if (bus_socket_open(&out, BUS_PUSH, &(bus_socket_opts){.linger_ms = 2000}) || bus_connect(out, e->sink)) _exit(84);
    send_item(out, 0, NJOBS + 5);
    send_item(out, 7, 1);
    if (bus_send_eos(out, 0, 5000)) _exit(85);
    if (bus_socket_open(&ack, BUS_PUSH, &(bus_socket_opts){.linger_ms = 2000}) || bus_connect(ack, e->acks)) _exit(86);
    bus_msg *a;
    if (bus_msg_new(&a, "ack", 0, 999) || bus_send(ack, &a, 5000)) _exit(87);
    if (bus_socket_open(&big, BUS_PUSH, &(bus_socket_opts){.linger_ms = 2000}) || bus_connect(big, e->sink)) _exit(88);
    float *huge = calloc(32 << 10, sizeof *huge);
    int64_t hn = 32 << 10;
    tensor ht = tensor_view(DT_F32, huge, 1, &hn);
    bus_msg *hm;
    if (!huge || bus_msg_new(&hm, "result", 0, 2) || bus_msg_add_tensor(hm, "y", &ht) || bus_send(big, &hm, 5000))
        _exit(89);
    free(huge);
    bus_socket_close(&out);
    bus_socket_close(&ack);
    bus_socket_close(&big);   // after linger: everything above has been delivered
    test_write_full(sent_fd, "i", 1);
    // A bad credit, then a black hole: asks for 2 jobs and never answers.
    bus_socket *bad, *hole;
    bus_msg *c;
    if (bus_socket_open(&bad, BUS_DEALER, NULL) || bus_connect(bad, e->jobs) || bus_msg_new(&c, "credit", 0, 0) ||
        bus_msg_set_int(c, "n", 0) || bus_send(bad, &c, 5000))
        _exit(90);
    if (bus_socket_open(&hole, BUS_DEALER, NULL) || bus_connect(hole, e->jobs) || bus_msg_new(&c, "credit", 0, 0) ||
        bus_msg_set_int(c, "n", 2) || bus_send(hole, &c, 5000))
        _exit(91);
    for (int got = 0; got < 2;) {
        bus_msg *j;
        int rc = bus_recv(hole, &j, 2000);
        if (rc == BUS_ETIMEOUT) break;   // the run may have handed out every job already
        if (!rc) got++;
        bus_msg_destroy(&j);
    }
    bus_socket_close(&bad);
    bus_socket_close(&hole);
    _exit(0);
}

// ---- the parent ---------------------------------------------------------------

enum { P_SOURCE, P_SINK, P_WORKER0, NPROC = P_WORKER0 + NWORK };

typedef struct {
    pid_t pid[NPROC];
    int status[NPROC];
    int done[NPROC];
} procs;

static pid_t spawn(void (*fn)(void *), void *arg) {
    pid_t p = fork();
    cr_assert_geq(p, 0);
    if (p == 0) fn(arg);
    return p;
}

// Waits (WNOHANG) until every child has exited or `until` passes. 1 if all
// have; else SIGKILLs the rest (reaped) and returns 0.
static int reap_all(procs *p, double until) {
    for (;;) {
        int left = 0;
        for (int i = 0; i < NPROC; i++) {
            if (p->done[i]) continue;
            pid_t r = waitpid(p->pid[i], &p->status[i], WNOHANG);
            if (r == p->pid[i]) p->done[i] = 1;
            else left++;
        }
        if (!left) return 1;
        if (vel_now() > until) break;
        usleep(10000);
    }
    for (int i = 0; i < NPROC; i++)
        if (!p->done[i]) {
            kill(p->pid[i], SIGKILL);
            waitpid(p->pid[i], &p->status[i], 0);
            p->done[i] = 1;
            p->status[i] = -1;   // marks "had to be killed"
        }
    return 0;
}

static int exit_code(int status) { return status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1; }

// Children get their arguments through these (set before each fork).
static eps g_eps;
static int g_ready = -1, g_first = -1, g_res = -1, g_sent = -1;
static void run_source(void *a) { (void)a; source_main(&g_eps, g_ready); }
static void run_sink(void *a) { (void)a; sink_main(&g_eps, g_ready, g_res); }
static void run_worker(void *a) { (void)a; worker_main(&g_eps, g_first); }
static void run_injector(void *a) { (void)a; injector_main(&g_eps, g_sent); }

static void fault_run(int seed) {
    uint64_t r = test_mix64(0xfa17ull + (uint64_t)seed);
    int kind = seed % F_KINDS;
    int k = kind == F_WORKER ? 1 + (int)(r % 2) : kind == F_SOURCE ? 5 + (int)(r % 21) : 1 + (int)(r % 10);
    char *dir = test_tmpdir("faults");
    snprintf(g_eps.jobs, EP, "ipc://%s/jobs", dir);
    snprintf(g_eps.acks, EP, "ipc://%s/acks", dir);
    snprintf(g_eps.ctl, EP, "ipc://%s/ctl", dir);
    snprintf(g_eps.sink, EP, "ipc://%s/sink", dir);
    int ready[2], first[2], res[2], held[2], go[2], sent[2];
    cr_assert_eq(pipe(ready), 0);
    cr_assert_eq(pipe(first), 0);
    cr_assert_eq(pipe(res), 0);
    cr_assert_eq(pipe(held), 0);
    cr_assert_eq(pipe(go), 0);
    cr_assert_eq(pipe(sent), 0);
    g_hold_fd[0] = go[0], g_hold_fd[1] = held[1];
    procs p = {0};
    char c;
    // Bind ends first (source, sink), each confirmed before the next starts;
    // only the process of the fault gets a hold point.
    int at = kind == F_SOURCE ? P_SOURCE : kind == F_WORKER ? P_WORKER0 : P_SINK;
    g_ready = ready[1];
    g_hold_at = at == P_SOURCE ? k : 0;
    p.pid[P_SOURCE] = spawn(run_source, NULL);
    cr_assert_eq(test_read_full(ready[0], &c, 1, 20000), 0, "source ready");
    g_res = res[1];
    g_hold_at = at == P_SINK ? k : 0;
    p.pid[P_SINK] = spawn(run_sink, NULL);
    cr_assert_eq(test_read_full(ready[0], &c, 1, 20000), 0, "sink ready");
    // Worker 0 alone first when it is the victim, so it surely holds work.
    for (int w = 0; w < NWORK; w++) {
        int victim = at == P_WORKER0 + w;
        g_hold_at = victim ? k : 0;
        g_first = victim ? first[1] : -1;
        p.pid[P_WORKER0 + w] = spawn(run_worker, NULL);
        if (victim) cr_assert_eq(test_read_full(first[0], &c, 1, 20000), 0, "victim's first item");
    }
    int victim = kind == F_WORKER ? P_WORKER0 : -1;
    // The fault, where the process at its fault point now waits.
    cr_assert_eq(test_read_full(held[0], &c, 1, 20000), 0, "fault point %d reached", k);
    double t_fault = vel_now();
    int injected = 0;
    if (kind == F_INJECT) {
        g_sent = sent[1];
        pid_t inj = spawn(run_injector, NULL);
        cr_assert_eq(test_read_full(sent[0], &c, 1, 20000), 0, "forgeries sent");
        test_write_full(go[1], "g", 1);   // the sink goes on, the forgeries queued before the rest
        int st;
        cr_assert_eq(waitpid(inj, &st, 0), inj);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "injector status %d", st);
        injected = 1;
    } else {
        cr_assert_eq(kill(p.pid[at], SIGKILL), 0);
    }
    int all_exited = reap_all(&p, t_fault + BOUND_S);
    double t_exit = vel_now() - t_fault;
    static sink_result sr;
    memset(&sr, 0, sizeof sr);
    int have_res = test_read_full(res[0], &sr, sizeof sr, 1000) == 0;   // written before the sink exited
    for (int i = 0; i < 2; i++)
        close(ready[i]), close(first[i]), close(res[i]), close(held[i]), close(go[i]), close(sent[i]);
    rm_rf(dir);
    free(dir);

    int src_rc = exit_code(p.status[P_SOURCE]), sink_rc = exit_code(p.status[P_SINK]);
    int once = 0, twice = 0;
    for (int i = 0; i < NJOBS; i++) once += sr.got[i] == 1, twice += sr.got[i] > 1;
    cr_log_info("seed %2d fault %-6s at %2d: source rc %2d, sink rc %2d, workers rc %d %d %d, sink items %2d/%d "
                "(twice %d, bad %d, unissued %d, rejected %d, dups %llu), all exited %.2f s after the fault",
                seed, kind_name[kind], k, src_rc, sink_rc, exit_code(p.status[P_WORKER0]),
                exit_code(p.status[P_WORKER0 + 1]), exit_code(p.status[P_WORKER0 + 2]), once, NJOBS, twice, sr.bad,
                sr.unissued, sr.rejected, (unsigned long long)sr.dups, t_exit);
    // No process left running, within the bound.
    cr_assert(all_exited, "seed %d: a process was still running %.0f s after the fault", seed, BOUND_S);
    // The sink never reports an item twice, an unissued one, or a wrong result.
    cr_assert_eq(twice, 0, "seed %d: items reported twice", seed);
    cr_assert_eq(sr.bad, 0, "seed %d: results that do not match their job", seed);
    if (kind == F_WORKER || kind == F_INJECT) {
        // The run can finish, so it must: every issued item exactly once.
        cr_assert_eq(src_rc, 0, "seed %d: source exit %d", seed, src_rc);
        cr_assert_eq(sink_rc, 0, "seed %d: sink exit %d", seed, sink_rc);
        cr_assert(have_res, "seed %d: no sink result", seed);
        cr_assert_eq(once, NJOBS, "seed %d: %d of %d items reported once", seed, once, NJOBS);
        for (int w = 0; w < NWORK; w++)
            if (P_WORKER0 + w != victim)
                cr_assert_eq(exit_code(p.status[P_WORKER0 + w]), 0, "seed %d: worker %d", seed, w);
        if (victim >= 0)
            cr_assert(WIFSIGNALED(p.status[victim]) && WTERMSIG(p.status[victim]) == SIGKILL);
        if (injected) {
            cr_assert_eq(sr.unissued, 2, "seed %d: the unissued and the unknown-source items", seed);
            cr_assert_geq(sr.rejected, 2, "seed %d: garbage and the frameless header", seed);
        }
    } else if (kind == F_SINK) {
        // Nobody acks any more: the source gives up with an error.
        cr_assert_eq(src_rc, 3, "seed %d: source exit %d (3: stalled, aborted)", seed, src_rc);
        for (int w = 0; w < NWORK; w++)
            cr_assert_neq(exit_code(p.status[P_WORKER0 + w]), 0, "seed %d: worker %d ended as if the run had", seed, w);
    } else {
        // The source is gone: the sink stops with an error, short of items.
        cr_assert_eq(sink_rc, 1, "seed %d: sink exit %d", seed, sink_rc);
        cr_assert(have_res && sr.stop == BUS_EIDLE, "seed %d: the sink ended by %d", seed, sr.stop);
        cr_assert_lt(once, NJOBS);
        for (int w = 0; w < NWORK; w++)
            cr_assert_neq(exit_code(p.status[P_WORKER0 + w]), 0, "seed %d: worker %d", seed, w);
    }
}

#define FAULT_TEST(n) \
    Test(faults, seed_##n) { fault_run(n); }
FAULT_TEST(0)
FAULT_TEST(1)
FAULT_TEST(2)
FAULT_TEST(3)
FAULT_TEST(4)
FAULT_TEST(5)
FAULT_TEST(6)
FAULT_TEST(7)
FAULT_TEST(8)
FAULT_TEST(9)
FAULT_TEST(10)
FAULT_TEST(11)
