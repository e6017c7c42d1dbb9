// test_credit.c: issue 15's bus fixes. Credit mode spreads a short run over
// every worker (it used to go to whichever connected first); an eos on the
// data socket of a stage that listens to ctl is dropped, not obeyed; a
// source that gives up publishes abort and workers stop with BUS_EABORT; a
// worker with no message for idle_ms stops with BUS_EIDLE, but a live
// source's heartbeat keeps an idle worker waiting. inproc endpoints, the
// source and the workers in threads.
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "bus/bus.h"
#include "core/base.h"

typedef struct {
    const char *jobs, *ctl, *acks;
    int credit;
    int got;                 // jobs this worker received
    int rc;
    int work_ms;
} worker_arg;

// A worker that acks each job itself (it is also the sink here).
static void *worker(void *p) {
    worker_arg *w = p;
    bus_inbox *in = NULL;
    bus_acker *ack = NULL;
    w->rc = bus_inbox_open(&in, &(bus_inbox_opts){.data_ep = w->jobs, .ctl_ep = w->ctl, .nproducers = 1,
                                                  .credit = w->credit, .idle_ms = 20000});
    if (!w->rc) w->rc = bus_acker_open(&ack, w->acks, NULL);
    while (!w->rc) {
        bus_msg *m;
        int rc = bus_inbox_next(in, &m, 5000);
        if (rc == BUS_EEOS) break;
        if (rc) { w->rc = rc; break; }
        w->got++;
        usleep((useconds_t)w->work_ms * 1000);
        bus_ack(ack, m, 1000);
        bus_msg_destroy(&m);
    }
    bus_acker_close(&ack);
    bus_inbox_close(&in);
    return NULL;
}

// 10 jobs of 30 ms, 3 workers with credit 2: every worker gets some (with
// plain PUSH the first to connect took all 10), each job exactly once.
Test(bus_credit, short_run_is_shared_by_every_worker) {
    alarm(60);
    const char *J = "inproc://cr_jobs", *A = "inproc://cr_acks", *C = "inproc://cr_ctl";
    // inproc needs the binds first: open the source in this thread, start
    // the workers, then run it.
    worker_arg w[3];
    pthread_t t[3];
    bus_source *s;
    cr_assert_eq(bus_source_open(&s, &(bus_source_opts){.jobs_ep = J, .acks_ep = A, .ctl_ep = C, .credit = 1,
                                                        .deadline_ms = 20000}), 0);
    for (int i = 0; i < 10; i++) {
        bus_msg *m;
        cr_assert_eq(bus_msg_new(&m, "job", 0, (uint64_t)i), 0);
        cr_assert_eq(bus_source_add(s, &m), 0);
    }
    for (int i = 0; i < 3; i++) {
        w[i] = (worker_arg){.jobs = J, .ctl = C, .acks = A, .credit = 2, .work_ms = 30};
        cr_assert_eq(pthread_create(&t[i], NULL, worker, &w[i]), 0);
    }
    cr_assert_eq(bus_source_run(s, 30000), 0);
    bus_source_stats st;
    bus_source_get_stats(s, &st);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    bus_source_close(&s);
    int total = 0;
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(w[i].rc, 0, "worker %d: %s", i, vel_strerror(w[i].rc));
        cr_expect_geq(w[i].got, 2, "worker %d got %d of 10 jobs (%d %d %d)", i, w[i].got, w[0].got, w[1].got,
                      w[2].got);
        total += w[i].got;
    }
    cr_expect_eq(total, 10, "each job once (no deadline expired): %d", total);
    cr_expect_eq(st.acked, 10);
    cr_expect_eq(st.reissued, 0);
}

// A forged eos on the data socket must not end a stage that waits for its
// sources' eos on ctl; it is counted. The real eos on ctl still ends it.
Test(bus_credit, eos_only_from_the_control_channel) {
    alarm(30);
    bus_socket *push, *pub;
    cr_assert_eq(bus_socket_open(&push, BUS_PUSH, NULL), 0);
    cr_assert_eq(bus_socket_open(&pub, BUS_PUB, NULL), 0);
    cr_assert_eq(bus_bind(pub, "inproc://sp_ctl"), 0);
    bus_inbox *in;
    cr_assert_eq(bus_inbox_open(&in, &(bus_inbox_opts){.data_ep = "inproc://sp_data", .bind = 1,
                                                       .ctl_ep = "inproc://sp_ctl", .nproducers = 1}), 0);
    cr_assert_eq(bus_connect(push, "inproc://sp_data"), 0);
    cr_assert_eq(bus_send_eos(push, 0, 1000), 0);   // spoofed: data plane
    bus_msg *m;
    cr_assert_eq(bus_msg_new(&m, "item", 0, 7), 0);
    cr_assert_eq(bus_send(push, &m, 1000), 0);
    cr_assert_eq(bus_inbox_next(in, &m, 5000), 0, "the forged eos ended the stream");
    cr_expect_eq(bus_msg_id(m), 7);
    bus_msg_destroy(&m);
    cr_expect_eq(bus_inbox_spoofed(in), 1);
    // An eos on ctl from a producer we were not told of is dropped too.
    int rc = BUS_ETIMEOUT;
    for (int i = 0; i < 200 && rc == BUS_ETIMEOUT; i++) {
        cr_assert_eq(bus_send_eos(pub, 5, 100), 0);
        rc = bus_inbox_next(in, &m, 10);
    }
    cr_expect_eq(rc, BUS_ETIMEOUT);
    cr_expect_geq(bus_inbox_spoofed(in), 2);
    for (int i = 0; i < 500 && rc != BUS_EEOS; i++) {
        cr_assert_eq(bus_send_eos(pub, 0, 100), 0);
        rc = bus_inbox_next(in, &m, 10);
    }
    cr_expect_eq(rc, BUS_EEOS);
    bus_inbox_close(&in);
    bus_socket_close(&push);
    bus_socket_close(&pub);
}

// A source that gives up publishes abort: a waiting worker stops with
// BUS_EABORT instead of waiting for an eos that never comes.
Test(bus_credit, abort_stops_the_workers) {
    alarm(30);
    bus_source *s;
    cr_assert_eq(bus_source_open(&s, &(bus_source_opts){.jobs_ep = "inproc://ab_j", .acks_ep = "inproc://ab_a",
                                                        .ctl_ep = "inproc://ab_c", .credit = 1}), 0);
    bus_inbox *in;
    cr_assert_eq(bus_inbox_open(&in, &(bus_inbox_opts){.data_ep = "inproc://ab_j", .ctl_ep = "inproc://ab_c",
                                                       .nproducers = 1, .credit = 2}), 0);
    usleep(50000);   // let the SUB subscription reach the PUB
    cr_assert_eq(bus_source_abort(s, 200), 0);
    bus_msg *m;
    cr_expect_eq(bus_inbox_next(in, &m, 5000), BUS_EABORT);
    bus_inbox_close(&in);
    bus_source_close(&s);
}

// Nothing at all for idle_ms: BUS_EIDLE (the sources have gone). With a live
// source (heartbeat every second) an idle worker keeps waiting.
Test(bus_credit, idle_timeout_and_heartbeat) {
    alarm(30);
    bus_inbox *in;
    cr_assert_eq(bus_inbox_open(&in, &(bus_inbox_opts){.data_ep = "inproc://id_j", .bind = 1,
                                                       .ctl_ep = "inproc://id_c_none", .nproducers = 1,
                                                       .idle_ms = 300}), 0);
    bus_msg *m;
    double t0 = vel_now();
    int rc;
    while ((rc = bus_inbox_next(in, &m, 100)) == BUS_ETIMEOUT) {}
    double dt = vel_now() - t0;
    cr_expect_eq(rc, BUS_EIDLE, "%s", vel_strerror(rc));
    cr_expect(dt >= 0.29 && dt < 2.0, "idle after %.3f s", dt);
    bus_inbox_close(&in);

    bus_source *s;
    cr_assert_eq(bus_source_open(&s, &(bus_source_opts){.jobs_ep = "inproc://hb_j", .acks_ep = "inproc://hb_a",
                                                        .ctl_ep = "inproc://hb_c", .credit = 1}), 0);
    bus_msg *job;
    cr_assert_eq(bus_msg_new(&job, "job", 0, 1), 0);
    cr_assert_eq(bus_source_add(s, &job), 0);   // never acked: the source stays alive
    cr_assert_eq(bus_inbox_open(&in, &(bus_inbox_opts){.data_ep = "inproc://hb_x", .bind = 1,
                                                       .ctl_ep = "inproc://hb_c", .nproducers = 1,
                                                       .idle_ms = 1500}), 0);
    t0 = vel_now();
    rc = 0;
    while (vel_now() - t0 < 4.0 && (rc == 0 || rc == BUS_ETIMEOUT)) {
        bus_source_step(s, 50);
        rc = bus_inbox_next(in, &m, 50);
        if (rc == 0) bus_msg_destroy(&m);
    }
    cr_expect_eq(rc, BUS_ETIMEOUT, "a heartbeat-only wait of 4 s ended with %s", vel_strerror(rc));
    bus_inbox_close(&in);
    bus_source_close(&s);
}

// PUSH mode still works as before (credit 0 on both ends).
Test(bus_credit, push_mode_unchanged) {
    alarm(60);
    const char *J = "inproc://pm_jobs", *A = "inproc://pm_acks", *C = "inproc://pm_ctl";
    bus_source *s;
    cr_assert_eq(bus_source_open(&s, &(bus_source_opts){.jobs_ep = J, .acks_ep = A, .ctl_ep = C}), 0);
    for (int i = 0; i < 5; i++) {
        bus_msg *m;
        cr_assert_eq(bus_msg_new(&m, "job", 0, (uint64_t)i), 0);
        cr_assert_eq(bus_source_add(s, &m), 0);
    }
    worker_arg w = {.jobs = J, .ctl = C, .acks = A, .credit = 0, .work_ms = 1};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, worker, &w), 0);
    cr_assert_eq(bus_source_run(s, 30000), 0);
    pthread_join(t, NULL);
    bus_source_close(&s);
    cr_expect_eq(w.got, 5);
    cr_expect_eq(w.rc, 0);
}
