// bench_bus.c: bus throughput for 64 KiB and 4 MiB f32 tensor messages over
// ipc:// and tcp://127.0.0.1, sender in a forked child (zero-copy send from
// one static buffer), receiver here (validated, in-place receive). Printed
// next to memcpy of the same bytes and next to raw ZeroMQ (zmq_msg_send /
// zmq_msg_recv of the same bytes, no header, no checks), both measured in the
// same run, as ratios.
// Bounded: each case stops after its message count or 2.5 s, whichever first.
// Not a test: numbers depend on the machine and its load.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zmq.h>

#include "bus/bus.h"
#include "core/base.h"

#define CASE_SECONDS 2.5

static void no_free(void *data, void *hint) { (void)data; (void)hint; } // static buffer

static void sender(const char *ep, size_t bytes, int count) {
    alarm(30);
    static float *buf;
    buf = aligned_alloc(64, bytes);
    if (!buf) _exit(2);
    memset(buf, 1, bytes);
    bus_socket *tx;
    bus_socket_opts o = {.linger_ms = 10000, .limits = {.max_total = bytes + 4096}};
    if (bus_socket_open(&tx, BUS_PUSH, &o) || bus_connect(tx, ep)) _exit(3);
    int64_t n = (int64_t)(bytes / sizeof(float));
    tensor t = tensor_view(DT_F32, buf, 1, &n);
    for (int i = 0; i < count; i++) {
        bus_msg *m;
        if (bus_msg_new(&m, "latents", 0, (uint64_t)i) ||
            bus_msg_add_tensor_zc(m, "z", &t, no_free, NULL) || bus_send(tx, &m, 10000))
            _exit(4);
    }
    bus_socket_close(&tx);
    free(buf);
    _exit(0);
}

// The same transfer with bare ZeroMQ: the floor the bus is measured against.
static void raw_sender(const char *ep, size_t bytes, int count) {
    alarm(30);
    char *buf = aligned_alloc(64, bytes);
    if (!buf) _exit(2);
    memset(buf, 1, bytes);
    void *ctx = zmq_ctx_new(), *tx = zmq_socket(ctx, ZMQ_PUSH);
    int linger = 10000;
    zmq_setsockopt(tx, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(tx, ep)) _exit(3);
    for (int i = 0; i < count; i++) {
        zmq_msg_t m;
        zmq_msg_init_data(&m, buf, bytes, no_free, NULL);
        if (zmq_msg_send(&m, tx, 0) < 0) _exit(4);
    }
    zmq_close(tx);
    zmq_ctx_term(ctx);
    free(buf);
    _exit(0);
}

static double raw_gbs(const char *scheme, size_t bytes, int count) {
    char ep[256];
    char dir[] = "/tmp/vel-bench-bus-XXXXXX";
    if (!strcmp(scheme, "ipc")) {
        CHECK(mkdtemp(dir));
        snprintf(ep, sizeof ep, "ipc://%s/raw", dir);
    } else {
        snprintf(ep, sizeof ep, "tcp://127.0.0.1:*");
    }
    void *ctx = zmq_ctx_new(), *rx = zmq_socket(ctx, ZMQ_PULL);
    CHECK(zmq_bind(rx, ep) == 0);
    size_t n = sizeof ep;
    CHECK(zmq_getsockopt(rx, ZMQ_LAST_ENDPOINT, ep, &n) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) raw_sender(ep, bytes, count);
    zmq_msg_t m;
    zmq_msg_init(&m);
    CHECK(zmq_msg_recv(&m, rx, 0) >= 0);
    int got = 1, timeout = 1000;
    zmq_setsockopt(rx, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    double t0 = vel_now();
    while (got < count && vel_now() - t0 < CASE_SECONDS) {
        if (zmq_msg_recv(&m, rx, 0) < 0) continue;
        got++;
    }
    double dt = vel_now() - t0;
    zmq_msg_close(&m);
    if (got < count) kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    int zero = 0;
    zmq_setsockopt(rx, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(rx);
    zmq_ctx_term(ctx);
    if (!strcmp(scheme, "ipc")) {
        char p[300];
        snprintf(p, sizeof p, "%s/raw", dir);
        unlink(p);
        rmdir(dir);
    }
    return (double)bytes * (got - 1) / dt / 1e9;
}

static double memcpy_gbs(size_t bytes, int count) {
    char *a = aligned_alloc(64, bytes), *b = aligned_alloc(64, bytes);
    CHECK(a && b);
    memset(a, 1, bytes);
    memset(b, 2, bytes);
    double t0 = vel_now();
    for (int i = 0; i < count; i++) {
        a[i % bytes] = (char)i;          // keep the copies from being merged
        memcpy(b, a, bytes);
        __asm__ volatile("" ::"r"(b) : "memory");
    }
    double dt = vel_now() - t0;
    free(a);
    free(b);
    return (double)bytes * count / dt / 1e9;
}

static void run_case(const char *scheme, size_t bytes, int count) {
    char ep[256];
    char dir[] = "/tmp/vel-bench-bus-XXXXXX";
    if (!strcmp(scheme, "ipc")) {
        CHECK(mkdtemp(dir));
        snprintf(ep, sizeof ep, "ipc://%s/s", dir);
    } else {
        snprintf(ep, sizeof ep, "tcp://127.0.0.1:*");
    }
    bus_socket *rx;
    bus_socket_opts o = {.limits = {.max_total = bytes + 4096}};
    CHECK(bus_socket_open(&rx, BUS_PULL, &o) == 0);
    CHECK(bus_bind(rx, ep) == 0);
    CHECK(bus_last_endpoint(rx, ep, sizeof ep) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) sender(ep, bytes, count);
    bus_msg *m;
    CHECK(bus_recv(rx, &m, 10000) == 0);   // first message starts the clock
    bus_msg_destroy(&m);
    int got = 1;
    double t0 = vel_now(), limit = CASE_SECONDS;
    float sum = 0;
    while (got < count && vel_now() - t0 < limit) {
        int rc = bus_recv(rx, &m, 1000);
        if (rc == BUS_ETIMEOUT) continue;
        CHECK(rc == 0);
        tensor t;
        CHECK(bus_msg_find(m, "z", &t) == 0);
        sum += ((const float *)t.data)[got % t.shape[0]];   // touch the payload in place
        bus_msg_destroy(&m);
        got++;
    }
    double dt = vel_now() - t0;
    int msgs = got - 1;
    bus_stats st;
    bus_socket_stats(rx, &st);
    if (got < count) kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    bus_socket_close(&rx);
    if (!strcmp(scheme, "ipc")) {
        char p[300];
        snprintf(p, sizeof p, "%s/s", dir);
        unlink(p);
        rmdir(dir);
    }
    double gbs = (double)bytes * msgs / dt / 1e9, mps = msgs / dt;
    double ref = memcpy_gbs(bytes, msgs > 0 ? msgs : 1);
    double raw = raw_gbs(scheme, bytes, count);
    printf("%-4s %5zu KiB %6d msgs %6.2f GB/s %7.0f msg/s | memcpy %6.2f GB/s bus/memcpy %.3f"
           " | raw zmq %5.2f GB/s bus/raw %.2f | realigned %llu/%llu%s\n",
           scheme, bytes >> 10, msgs, gbs, mps, ref, gbs / ref, raw, gbs / raw,
           (unsigned long long)st.realigned, (unsigned long long)st.received,
           sum == -1.0f ? "!" : "");
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc > 1) {
        printf("usage: %s\n  Bus throughput (64 KiB and 4 MiB f32 messages, ipc:// and "
               "tcp://127.0.0.1)\n  against memcpy and raw ZeroMQ of the same bytes; < 30 s in total.\n",
               argv[0]);
        return strcmp(argv[1], "--help") == 0 ? 0 : 2;
    }
    printf("bench_bus: sender = forked child, zero-copy send; receiver validates and reads in place\n");
    const char *schemes[] = {"ipc", "tcp"};
    for (int s = 0; s < 2; s++) {
        run_case(schemes[s], 64 << 10, 20000);
        run_case(schemes[s], 4 << 20, 300);
    }
    return 0;
}
