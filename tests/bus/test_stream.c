// test_stream.c: the stream helpers in one process: duplicate filter, eos
// accounting, acker, and the job source's re-issue logic driven step by step
// by an in-process "worker" that loses the first copy of every job.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "bus/bus.h"
#include "core/base.h"
#include "tests/util.h"

Test(bus_dedupe, many_ids_across_sources) {
    bus_dedupe *d;
    cr_assert_eq(bus_dedupe_new(&d), 0);
    const int n = 100000;
    for (int i = 0; i < n; i++) {
        // Ids that collide across sources must stay distinct items.
        cr_assert_eq(bus_dedupe_add(d, (uint32_t)(i % 3), (uint64_t)i * 0x100000001ull), 1);
    }
    cr_assert_eq(bus_dedupe_count(d), (size_t)n);
    for (int i = 0; i < n; i += 7) {
        cr_assert_eq(bus_dedupe_add(d, (uint32_t)(i % 3), (uint64_t)i * 0x100000001ull), 0);
        cr_assert(bus_dedupe_has(d, (uint32_t)(i % 3), (uint64_t)i * 0x100000001ull));
        cr_assert(!bus_dedupe_has(d, (uint32_t)(i % 3) + 1, (uint64_t)i * 0x100000001ull),
                  "same id, other source: a different item");
    }
    cr_assert(!bus_dedupe_has(d, 7, 1));
    cr_assert_eq(bus_dedupe_add(d, 7, 1), 1);
    cr_assert_eq(bus_dedupe_count(d), (size_t)n + 1);
    bus_dedupe_destroy(&d);
    cr_assert_null(d);
}

Test(bus_eos, counts_each_producer_once) {
    bus_eos *e;
    cr_assert_eq(bus_eos_new(&e, 3), 0);
    bus_msg *m;
    cr_assert_eq(bus_msg_new(&m, "job", 1, 5), 0);
    cr_assert_eq(bus_eos_note(e, m), 0, "not an eos");
    bus_msg_destroy(&m);
    uint32_t order[] = {2, 2, 0, 0, 2};
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(bus_msg_new(&m, "eos", order[i], 0), 0);
        cr_assert_eq(bus_eos_note(e, m), 1);
        bus_msg_destroy(&m);
        cr_assert(!bus_eos_done(e));
    }
    cr_assert_eq(bus_eos_count(e), 2);
    cr_assert_eq(bus_msg_new(&m, "eos", 3, 0), 0);
    cr_assert_eq(bus_eos_note(e, m), VEL_ERANGE, "a producer we were not told of");
    bus_msg_destroy(&m);
    cr_assert_eq(bus_msg_new(&m, "eos", 1, 0), 0);
    cr_assert_eq(bus_eos_note(e, m), 1);
    bus_msg_destroy(&m);
    cr_assert(bus_eos_done(e));
    bus_eos_destroy(&e);
    cr_assert_eq(bus_eos_new(&e, 0), 0);
    cr_assert(bus_eos_done(e), "no producers: done at once");
    bus_eos_destroy(&e);
    cr_assert_eq(bus_eos_new(&e, -1), VEL_EINVAL);
}

Test(bus_source, bad_arguments) {
    bus_source *s;
    bus_source_opts o = {0};
    cr_assert_eq(bus_source_open(&s, &o), VEL_EINVAL);
    o = (bus_source_opts){.jobs_ep = "tcp://0.0.0.0:*", .acks_ep = "inproc://a", .ctl_ep = "inproc://c"};
    cr_assert_eq(bus_source_open(&s, &o), BUS_EREMOTE);
    cr_assert_null(s);
    o.jobs_ep = "inproc://j";
    cr_assert_eq(bus_source_open(&s, &o), 0);
    bus_msg *m;
    cr_assert_eq(bus_msg_new(&m, "job", 0, 1), 0);
    cr_assert_eq(bus_source_add(s, &m), 0);
    cr_assert_null(m);
    cr_assert_eq(bus_msg_new(&m, "job", 0, 1), 0);
    cr_assert_eq(bus_source_add(s, &m), VEL_EINVAL, "repeated id");
    cr_assert_null(m);
    bus_source_close(&s);
    bus_acker *a;
    cr_assert_eq(bus_acker_open(&a, "", NULL), BUS_EENDPOINT);
    cr_assert_eq(bus_acker_open(&a, "inproc://x,,inproc://y", NULL), BUS_EENDPOINT);
    cr_assert_null(a);
    cr_assert_eq(bus_acker_open(&a, "inproc://nobody", NULL), 0);
    cr_assert_eq(bus_msg_new(&m, "result", 1, 1), 0);
    cr_assert_eq(bus_ack(a, m, 0), VEL_ERANGE, "no ack endpoint for source 1");
    bus_msg_destroy(&m);
    bus_acker_close(&a);
}

// One thread plays source, worker and sink: the worker drops the first copy
// of every job, so every job must be re-issued exactly once. The deadline
// (300 ms) is far above the few ms between a resend and its ack, so a
// second expiry would need a 300 ms stall of this thread.
Test(bus_source, reissues_lost_jobs, .timeout = 60) {
    const int n = 40;
    bus_source_opts o = {.src = 0, .jobs_ep = "inproc://jobs", .acks_ep = "inproc://acks",
                         .ctl_ep = "inproc://ctl", .deadline_ms = 300, .max_inflight = 8,
                         .eos_linger_ms = 100};
    bus_source *src;
    cr_assert_eq(bus_source_open(&src, &o), 0);
    for (int i = 0; i < n; i++) {
        bus_msg *m;
        cr_assert_eq(bus_msg_new(&m, "job", 9 /* overwritten */, (uint64_t)(1000 + i)), 0);
        cr_assert_eq(bus_msg_set_int(m, "seed", i), 0);
        cr_assert_eq(bus_source_add(src, &m), 0);
    }
    bus_socket *in, *sub;
    bus_acker *ack;
    bus_dedupe *seen, *dropped;
    bus_eos *eos;
    cr_assert_eq(bus_socket_open(&in, BUS_PULL, NULL), 0);
    cr_assert_eq(bus_connect(in, "inproc://jobs"), 0);
    cr_assert_eq(bus_socket_open(&sub, BUS_SUB, NULL), 0);
    cr_assert_eq(bus_connect(sub, "inproc://ctl"), 0);
    cr_assert_eq(bus_acker_open(&ack, "inproc://acks", NULL), 0);
    cr_assert_eq(bus_dedupe_new(&seen), 0);
    cr_assert_eq(bus_dedupe_new(&dropped), 0);
    cr_assert_eq(bus_eos_new(&eos, 1), 0);
    int finished = 0, copies = 0;
    double t0 = vel_now();
    while (!(finished && bus_eos_done(eos))) {
        cr_assert_lt(vel_now() - t0, 30.0, "stuck");
        if (!finished) {
            int rc = bus_source_step(src, 5);
            cr_assert_geq(rc, 0, "step: %s", vel_strerror(rc));
            finished = rc == 1;
        }
        bus_msg *m;
        while (bus_recv(in, &m, 0) == 0) {
            copies++;
            cr_assert_eq(bus_msg_src(m), 0);
            if (bus_dedupe_add(dropped, 0, bus_msg_id(m)) == 1) { // first copy: lost
                bus_msg_destroy(&m);
                continue;
            }
            cr_assert_eq(bus_dedupe_add(seen, 0, bus_msg_id(m)), 1, "each job done once here");
            int64_t seed;
            cr_assert_eq(bus_msg_get_int(m, "seed", &seed), 0);
            cr_assert_eq((uint64_t)seed + 1000, bus_msg_id(m));
            cr_assert_eq(bus_ack(ack, m, 1000), 0);
            bus_msg_destroy(&m);
        }
        while (bus_recv(sub, &m, 0) == 0) {
            // ctl carries eos and, once a second, the source's heartbeat and job table
            cr_assert_eq(bus_eos_note(eos, m), !bus_msg_is(m, "alive") && !bus_msg_is(m, "issued"));
            bus_msg_destroy(&m);
        }
    }
    bus_source_stats st;
    bus_source_get_stats(src, &st);
    cr_assert_eq(st.jobs, (uint64_t)n);
    cr_assert_eq(st.acked, (uint64_t)n);
    cr_assert_eq(st.reissued, (uint64_t)n, "every lost first copy re-issued once");
    cr_assert_eq(st.issued, (uint64_t)(2 * n));
    cr_assert_eq(copies, 2 * n);
    cr_assert_eq(bus_dedupe_count(seen), (size_t)n);
    bus_eos_destroy(&eos);
    bus_dedupe_destroy(&seen);
    bus_dedupe_destroy(&dropped);
    bus_acker_close(&ack);
    bus_socket_close(&in);
    bus_socket_close(&sub);
    bus_source_close(&src);
}

// Plain fan-in without a job source: each producer ends its own stream with
// eos on the data socket; the inbox ends after hearing every producer once,
// having returned every item sent before those eos.
Test(bus_inbox, fan_in_eos_on_the_data_plane) {
    bus_inbox *in;
    bus_inbox_opts o = {.data_ep = "inproc://fanin", .bind = 1, .nproducers = 2};
    cr_assert_eq(bus_inbox_open(&in, &o), 0);
    bus_socket *p[2];
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(bus_socket_open(&p[k], BUS_PUSH, NULL), 0);
        cr_assert_eq(bus_connect(p[k], "inproc://fanin"), 0);
    }
    for (int i = 0; i < 10; i++) {
        bus_msg *m;
        cr_assert_eq(bus_msg_new(&m, "item", (uint32_t)(i % 2), (uint64_t)i), 0);
        cr_assert_eq(bus_send(p[i % 2], &m, 1000), 0);
    }
    cr_assert_eq(bus_send_eos(p[0], 0, 1000), 0);
    cr_assert_eq(bus_send_eos(p[0], 0, 1000), 0);   // repeated: counted once
    int seen = 0, rc;
    bus_msg *m;
    // Only producer 0 has ended: after its items the inbox waits (timeout).
    while ((rc = bus_inbox_next(in, &m, 200)) == 0) { seen++; bus_msg_destroy(&m); }
    cr_assert_eq(rc, BUS_ETIMEOUT);
    cr_assert_eq(bus_send_eos(p[1], 1, 1000), 0);
    while ((rc = bus_inbox_next(in, &m, 2000)) == 0) { seen++; bus_msg_destroy(&m); }
    cr_assert_eq(rc, BUS_EEOS, "%s", vel_strerror(rc));
    cr_assert_eq(seen, 10);
    cr_assert_eq(bus_inbox_next(in, &m, 0), BUS_EEOS, "stays ended");
    bus_stats st;
    bus_socket_stats(bus_inbox_data(in), &st);
    cr_assert_eq(st.received, 13);
    for (int k = 0; k < 2; k++) bus_socket_close(&p[k]);
    bus_inbox_close(&in);
    cr_assert_null(in);
}
