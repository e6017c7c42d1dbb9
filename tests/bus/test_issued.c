// test_issued.c: issue 15 item 6. The final sink accepts only items their
// source issued: sources publish their job table ({kind: "issued"}, runs of
// ids) on ctl and bus_sink_next drops, does not ack and counts an item of
// an unknown source or with an id outside the table. The table tracker on
// its own (runs, union of repeated and split tables, completeness, malformed
// tables), then a source -> worker -> sink run (threads, inproc) with forged
// items injected next to the real ones.
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "bus/bus.h"
#include "core/base.h"

static bus_msg *table_msg(uint32_t src, uint64_t n, const int64_t *v, size_t k) {
    bus_msg *m;
    cr_assert_eq(bus_msg_new(&m, "issued", src, 0), 0);
    cr_assert_eq(bus_msg_set_uint(m, "n", n), 0);
    cr_assert_eq(bus_msg_set_ints(m, "ranges", v, k), 0);
    return m;
}

static void note(bus_issued *t, bus_msg *m, int want) {
    cr_assert_eq(bus_issued_note(t, m), want);
    bus_msg_destroy(&m);
}

Test(bus_issued, runs_of_ids) {
    uint64_t ids[] = {24, 3, 0, 1, 2, 22, 23, UINT64_MAX, 20, 4};
    int64_t *r;
    size_t k;
    cr_assert_eq(bus_issued_encode(ids, 10, &r, &k), 0);
    int64_t want[] = {0, 4, 20, 20, 22, 24, -1, -1};   // UINT64_MAX travels as -1
    cr_assert_eq(k, 8);
    for (size_t i = 0; i < k; i++) cr_expect_eq(r[i], want[i], "value %zu: %lld", i, (long long)r[i]);
    bus_issued *t;
    cr_assert_eq(bus_issued_new(&t, 2), 0);
    cr_expect_eq(bus_issued_check(t, 0, 3), -1, "no table yet");
    cr_expect_eq(bus_issued_check(t, 2, 3), 0, "a producer we were not told of");
    note(t, table_msg(0, 10, r, k), 1);
    for (int i = 0; i < 10; i++) cr_expect_eq(bus_issued_check(t, 0, ids[i]), 1, "id %llu", (unsigned long long)ids[i]);
    uint64_t not_issued[] = {5, 19, 21, 25, 1000, UINT64_MAX - 1};
    for (int i = 0; i < 6; i++)
        cr_expect_eq(bus_issued_check(t, 0, not_issued[i]), 0, "id %llu", (unsigned long long)not_issued[i]);
    cr_expect_eq(bus_issued_check(t, 1, 0), -1, "source 1's table is still unknown");
    bus_msg *m;
    cr_assert_eq(bus_msg_new(&m, "alive", 0, 0), 0);
    note(t, m, 0);
    free(r);
    bus_issued_destroy(&t);
}

// A table in pieces, repeated and overlapping: a union; complete only once
// it covers the n ids declared (until then an id outside is "not known yet").
Test(bus_issued, split_and_repeated_tables) {
    bus_issued *t;
    cr_assert_eq(bus_issued_new(&t, 1), 0);
    note(t, table_msg(0, 14, (int64_t[]){0, 5}, 2), 1);
    cr_expect_eq(bus_issued_check(t, 0, 5), 1);
    cr_expect_eq(bus_issued_check(t, 0, 9), -1, "6 of 14 ids known");
    note(t, table_msg(0, 14, (int64_t[]){3, 9, 11, 11}, 4), 1);
    note(t, table_msg(0, 14, (int64_t[]){0, 5}, 2), 1);   // a repeat changes nothing
    cr_expect_eq(bus_issued_check(t, 0, 12), -1, "11 of 14 ids known");
    note(t, table_msg(0, 14, (int64_t[]){13, 13, 10, 10}, 4), 1);   // out of order, touching runs
    cr_expect_eq(bus_issued_check(t, 0, 12), -1, "13 of 14 ids known");
    cr_expect_eq(bus_issued_check(t, 0, 14), -1);
    note(t, table_msg(0, 14, (int64_t[]){12, 12}, 2), 1);
    for (uint64_t id = 0; id <= 15; id++)
        cr_expect_eq(bus_issued_check(t, 0, id), id < 14, "id %llu", (unsigned long long)id);
    bus_issued_destroy(&t);
    cr_assert_eq(bus_issued_new(&t, 1), 0);
    note(t, table_msg(0, 3, (int64_t[]){7, 9}, 2), 1);
    cr_expect_eq(bus_issued_check(t, 0, 10), 0, "complete in one message");
    cr_expect_eq(bus_issued_check(t, 0, 6), 0);
    cr_expect_eq(bus_issued_check(t, 0, 8), 1);
    bus_issued_destroy(&t);
}

Test(bus_issued, malformed_tables_are_refused) {
    bus_issued *t;
    cr_assert_eq(bus_issued_new(&t, 1), 0);
    note(t, table_msg(0, 5, (int64_t[]){0, 4, 7}, 3), BUS_EFIELD);        // odd count
    note(t, table_msg(0, 5, (int64_t[]){0, 4, 9, 8}, 4), BUS_EFIELD);     // first > last
    note(t, table_msg(1, 5, (int64_t[]){0, 4}, 2), VEL_ERANGE);           // unknown producer
    bus_msg *m;
    cr_assert_eq(bus_msg_new(&m, "issued", 0, 0), 0);
    note(t, m, BUS_EFIELD);                                               // no fields
    cr_expect_eq(bus_issued_check(t, 0, 0), -1, "nothing was added by a refused table");
    bus_issued_destroy(&t);
}

// ---- a run: source (thread) -> worker (thread) -> sink (this thread) ----

#define NJOBS 12
static const char *J = "inproc://is_jobs", *A = "inproc://is_acks", *C = "inproc://is_ctl",
                  *D = "inproc://is_data";

static void *run_source(void *p) {
    bus_source *s = p;
    intptr_t rc = bus_source_run(s, 30000);
    return (void *)rc;
}

// Forwards each job as a result, and first two forged items: an id the
// source never issued, and an item from a source that does not exist.
static void *worker(void *p) {
    (void)p;
    bus_inbox *in;
    bus_socket *out;
    intptr_t rc = bus_inbox_open(&in, &(bus_inbox_opts){.data_ep = J, .ctl_ep = C, .nproducers = 1});
    if (!rc) rc = bus_socket_open(&out, BUS_PUSH, NULL);
    if (!rc) rc = bus_connect(out, D);
    bus_msg *m;
    if (!rc) rc = bus_msg_new(&m, "result", 0, 500);
    if (!rc) rc = bus_send(out, &m, 5000);
    if (!rc) rc = bus_msg_new(&m, "result", 7, 3);
    if (!rc) rc = bus_send(out, &m, 5000);
    while (!rc) {
        int e = bus_inbox_next(in, &m, 5000);
        if (e == BUS_EEOS) break;
        if (e) { rc = e; break; }
        bus_msg *r;
        rc = bus_msg_new_reply(&r, "result", m);
        bus_msg_destroy(&m);
        if (!rc) rc = bus_inbox_send(in, out, &r);
        if (rc == BUS_EEOS) rc = 0;
    }
    bus_socket_close(&out);
    bus_inbox_close(&in);
    return (void *)rc;
}

Test(bus_issued, sink_rejects_what_no_source_issued) {
    alarm(60);
    bus_source *s;
    cr_assert_eq(bus_source_open(&s, &(bus_source_opts){.jobs_ep = J, .acks_ep = A, .ctl_ep = C,
                                                        .deadline_ms = 20000}), 0);
    for (int i = 0; i < NJOBS; i++) {
        bus_msg *m;
        cr_assert_eq(bus_msg_new(&m, "job", 0, (uint64_t)(100 + 2 * i)), 0);   // ids 100, 102, ...
        cr_assert_eq(bus_source_add(s, &m), 0);
    }
    bus_sink *k;
    cr_assert_eq(bus_sink_open(&k, &(bus_sink_opts){.in = {.data_ep = D, .bind = 1, .ctl_ep = C, .nproducers = 1},
                                                    .acks_ep = A}), 0);
    pthread_t ts, tw;
    cr_assert_eq(pthread_create(&ts, NULL, run_source, s), 0);
    cr_assert_eq(pthread_create(&tw, NULL, worker, NULL), 0);
    int got[NJOBS] = {0}, unissued = 0, other = 0;
    for (;;) {
        bus_msg *m;
        int rc = bus_sink_next(k, &m, 10000);
        if (rc == BUS_EEOS) break;
        if (rc == BUS_EUNISSUED) { unissued++; continue; }
        if (rc) { other++; cr_log_error("sink: %s", vel_errmsg(rc)); break; }
        uint64_t id = bus_msg_id(m);
        if (id >= 100 && id < 100 + 2 * NJOBS && id % 2 == 0) got[(id - 100) / 2]++;
        else other++;
        bus_msg_destroy(&m);
    }
    void *src_rc, *w_rc;
    pthread_join(ts, &src_rc);
    pthread_join(tw, &w_rc);
    cr_expect_eq((intptr_t)src_rc, 0, "source: %s", vel_strerror((int)(intptr_t)src_rc));
    cr_expect_eq((intptr_t)w_rc, 0, "worker: %s", vel_strerror((int)(intptr_t)w_rc));
    for (int i = 0; i < NJOBS; i++) cr_expect_eq(got[i], 1, "job %d arrived %d times", i, got[i]);
    cr_expect_eq(other, 0);
    cr_expect_eq(unissued, 2, "the two forged items: %d", unissued);
    cr_expect_eq(bus_sink_unissued(k), 2);
    bus_source_stats st;
    bus_source_get_stats(s, &st);
    cr_expect_eq(st.stray_acks, 0, "forged items are not acked");
    bus_sink_close(&k);
    bus_source_close(&s);
}
