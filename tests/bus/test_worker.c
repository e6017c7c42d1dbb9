// test_worker.c: bus_worker_run (bus/worker.h), the loop shared by the
// sample and decode stages: every item reaches the callback once, replies
// keep (src, id) and extra fields, dropped items are counted, a fatal
// callback code stops the loop, eos on ctl or on the data plane ends it, and
// a worker whose downstream has gone still ends at eos instead of blocking.
// The worker runs in a thread; the test plays job source (PUSH + PUB) and
// downstream (PULL) over inproc endpoints.
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <unistd.h>

#include "bus/bus.h"
#include "bus/worker.h"
#include "core/base.h"
#include "tests/util.h"

typedef struct {
    bus_worker_opts o;
    int fail_at;             // callback returns VEL_ENOMEM on this call (1-based), 0 never
    int calls;
    bus_worker_stats st;
    int rc;
    atomic_int finished;
} run_arg;

// Doubles field x into y; drops items with x == 3.
static int double_x(void *ctx, const bus_msg *item, bus_msg **reply) {
    run_arg *a = ctx;
    a->calls++;
    if (a->fail_at && a->calls == a->fail_at) return VEL_ENOMEM;
    int64_t x = 0;
    if (bus_msg_get_int(item, "x", &x) || x == 3) return 0;
    int rc = bus_msg_new_reply(reply, "answer", item);
    if (!rc) rc = bus_msg_set_int(*reply, "y", 2 * x);
    return rc;
}

static void *run_thread(void *p) {
    run_arg *a = p;
    a->rc = bus_worker_run(&a->o, double_x, a, &a->st);
    atomic_store(&a->finished, 1);
    return NULL;
}

// Publishes eos from producer 0 until the worker has returned (a SUB socket
// that joined late misses earlier ones); at most about 10 s.
static void end_stream(bus_socket *pub, run_arg *a) {
    for (int i = 0; i < 1000 && !atomic_load(&a->finished); i++) {
        cr_assert_eq(bus_send_eos(pub, 0, 100), 0);
        usleep(10000);
    }
}

static void send_items(bus_socket *push, int n) {
    for (int i = 0; i < n; i++) {
        bus_msg *m;
        cr_assert_eq(bus_msg_new(&m, "job", 0, (uint64_t)(100 + i)), 0);
        cr_assert_eq(bus_msg_set_int(m, "x", i), 0);
        cr_assert_eq(bus_msg_set_uint(m, "seed", 7u * i), 0);
        cr_assert_eq(bus_send(push, &m, 5000), 0, "worker never connected");
    }
}

Test(bus_worker, answers_each_item_until_eos) {
    alarm(60);   // a hang fails the test (no Criterion .timeout: HACKING.md)
    bus_socket *push, *pub, *pull;
    cr_assert_eq(bus_socket_open(&push, BUS_PUSH, NULL), 0);
    cr_assert_eq(bus_bind(push, "inproc://w1_jobs"), 0);
    cr_assert_eq(bus_socket_open(&pub, BUS_PUB, NULL), 0);
    cr_assert_eq(bus_bind(pub, "inproc://w1_ctl"), 0);
    cr_assert_eq(bus_socket_open(&pull, BUS_PULL, NULL), 0);
    cr_assert_eq(bus_bind(pull, "inproc://w1_out"), 0);
    run_arg a = {.o = {.name = "test", .in = {.data_ep = "inproc://w1_jobs", .ctl_ep = "inproc://w1_ctl",
                                              .nproducers = 1},
                       .out_ep = "inproc://w1_out"}};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, run_thread, &a), 0);
    send_items(push, 6);
    int seen[6] = {0};
    for (int k = 0; k < 5; k++) {
        bus_msg *r;
        cr_assert_eq(bus_recv(pull, &r, 5000), 0);
        cr_assert(bus_msg_is(r, "answer"));
        uint64_t id = bus_msg_id(r), seed = 0;
        cr_assert(id >= 100 && id < 106 && id != 103, "id %llu", (unsigned long long)id);
        int64_t y = -1;
        cr_assert_eq(bus_msg_get_int(r, "y", &y), 0);
        cr_assert_eq(y, 2 * (int64_t)(id - 100));
        cr_assert_eq(bus_msg_get_uint(r, "seed", &seed), 0, "extra fields travel with the reply");
        cr_assert_eq(seed, 7u * (id - 100));
        seen[id - 100]++;
        bus_msg_destroy(&r);
    }
    end_stream(pub, &a);
    pthread_join(th, NULL);
    cr_assert_eq(a.rc, 0, "%s", vel_strerror(a.rc));
    cr_assert_eq(a.st.items, 6);
    cr_assert_eq(a.st.answered, 5);
    cr_assert_eq(a.st.dropped, 1);
    cr_assert_eq(a.st.send_errors + a.st.rejected, 0);
    for (int i = 0; i < 6; i++) cr_assert_eq(seen[i], i == 3 ? 0 : 1);
    bus_msg *r;
    cr_assert_eq(bus_recv(pull, &r, 100), BUS_ETIMEOUT, "nothing after the dropped item");
    bus_socket_close(&push); bus_socket_close(&pub); bus_socket_close(&pull);
    alarm(0);
}

// The downstream stage is gone (nothing bound at out_ep): a plain
// bus_send(out, &rep, -1) would wait forever; the loop must end at eos.
// ipc, not inproc: ZeroMQ queues for an inproc endpoint nobody has bound yet.
Test(bus_worker, ends_at_eos_when_downstream_is_gone) {
    alarm(60);
    char *dir = test_tmpdir("worker_gone"), out_ep[4200];
    snprintf(out_ep, sizeof out_ep, "ipc://%s/nobody", dir);
    bus_socket *push, *pub;
    cr_assert_eq(bus_socket_open(&push, BUS_PUSH, NULL), 0);
    cr_assert_eq(bus_bind(push, "inproc://w2_jobs"), 0);
    cr_assert_eq(bus_socket_open(&pub, BUS_PUB, NULL), 0);
    cr_assert_eq(bus_bind(pub, "inproc://w2_ctl"), 0);
    run_arg a = {.o = {.in = {.data_ep = "inproc://w2_jobs", .ctl_ep = "inproc://w2_ctl", .nproducers = 1},
                       .out_ep = out_ep}};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, run_thread, &a), 0);
    send_items(push, 1);
    while (a.calls == 0 && !atomic_load(&a.finished)) usleep(1000);   // item taken, reply waiting
    usleep(300000);
    cr_assert_eq(atomic_load(&a.finished), 0, "the reply waits for a downstream");
    end_stream(pub, &a);
    pthread_join(th, NULL);
    cr_assert_eq(a.rc, 0, "%s", vel_strerror(a.rc));
    cr_assert_eq(a.st.items, 1);
    cr_assert_eq(a.st.answered, 0);
    bus_socket_close(&push); bus_socket_close(&pub);
    rm_rf(dir);
    free(dir);
    alarm(0);
}

// A negative callback code stops the loop at once with that code.
Test(bus_worker, fatal_callback_code_stops) {
    alarm(60);
    bus_socket *push, *pull;
    cr_assert_eq(bus_socket_open(&push, BUS_PUSH, NULL), 0);
    cr_assert_eq(bus_bind(push, "inproc://w3_jobs"), 0);
    cr_assert_eq(bus_socket_open(&pull, BUS_PULL, NULL), 0);
    cr_assert_eq(bus_bind(pull, "inproc://w3_out"), 0);
    run_arg a = {.fail_at = 2,
                 .o = {.in = {.data_ep = "inproc://w3_jobs", .nproducers = 1}, .out_ep = "inproc://w3_out"}};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, run_thread, &a), 0);
    send_items(push, 3);
    pthread_join(th, NULL);
    cr_assert_eq(a.rc, VEL_ENOMEM);
    cr_assert_eq(a.st.items, 2);
    cr_assert_eq(a.st.answered, 1);
    bus_socket_close(&push); bus_socket_close(&pull);
    alarm(0);
}

// Fan-in wiring (the decoder's): data bound by the worker, no ctl socket;
// each producer ends its stream with eos on the data plane.
Test(bus_worker, fan_in_eos_on_the_data_plane) {
    alarm(60);
    bus_socket *pull, *p[2];
    cr_assert_eq(bus_socket_open(&pull, BUS_PULL, NULL), 0);
    cr_assert_eq(bus_bind(pull, "inproc://w4_out"), 0);
    run_arg a = {.o = {.in = {.data_ep = "inproc://w4_in", .bind = 1, .nproducers = 2},
                       .out_ep = "inproc://w4_out"}};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, run_thread, &a), 0);
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(bus_socket_open(&p[k], BUS_PUSH, NULL), 0);
        cr_assert_eq(bus_connect(p[k], "inproc://w4_in"), 0);
    }
    for (int i = 0; i < 4; i++) {
        bus_msg *m;
        cr_assert_eq(bus_msg_new(&m, "job", (uint32_t)(i % 2), (uint64_t)i), 0);
        cr_assert_eq(bus_msg_set_int(m, "x", 10 + i), 0);
        cr_assert_eq(bus_send(p[i % 2], &m, 5000), 0);
    }
    for (int k = 0; k < 2; k++) cr_assert_eq(bus_send_eos(p[k], (uint32_t)k, 5000), 0);
    pthread_join(th, NULL);
    cr_assert_eq(a.rc, 0, "%s", vel_strerror(a.rc));
    cr_assert_eq(a.st.answered, 4);
    for (int k = 0; k < 4; k++) {
        bus_msg *r;
        cr_assert_eq(bus_recv(pull, &r, 5000), 0);
        bus_msg_destroy(&r);
    }
    for (int k = 0; k < 2; k++) bus_socket_close(&p[k]);
    bus_socket_close(&pull);
    alarm(0);
}

Test(bus_worker, bad_arguments) {
    bus_worker_stats st = {.items = 9};
    bus_worker_opts o = {.in = {.data_ep = "inproc://w5", .nproducers = 1}};
    cr_assert_eq(bus_worker_run(&o, double_x, NULL, &st), VEL_EINVAL, "no out_ep");
    cr_assert_eq(st.items, 0);
    cr_assert_eq(bus_worker_run(NULL, double_x, NULL, NULL), VEL_EINVAL);
    o.out_ep = "inproc://w5_out";
    cr_assert_eq(bus_worker_run(&o, NULL, NULL, NULL), VEL_EINVAL);
    o.in.data_ep = "nonsense://x";
    cr_assert_neq(bus_worker_run(&o, double_x, NULL, NULL), 0, "bad endpoint is an error");
}
