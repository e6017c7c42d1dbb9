// socket.c: ZeroMQ sockets carrying bus messages: the per-process context,
// endpoint checks, send (zero-copy where the message allows it) and receive
// (validate first, then hand out in-place views).
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus/internal.h"
#include "core/base.h"

struct bus_socket {
    void *z;
    bus_socket_type type;
    bus_limits lim;
    int allow_remote;
    bus_stats st;
    // ROUTER: the identity frame of the last message received (its sender).
    uint8_t peer[BUS_PEER_MAX];
    size_t peer_len;
};

// ---- context: one per process, refcounted by open sockets -----------------

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static void *g_ctx;
static int g_refs;
static pid_t g_pid;

static void *ctx_acquire(void) {
    pthread_mutex_lock(&g_lock);
    // After fork the inherited context has no I/O threads; it must not be
    // used or terminated here. Forget it (the parent still owns it).
    if (g_ctx && g_pid != getpid()) {
        g_ctx = NULL;
        g_refs = 0;
    }
    if (!g_ctx) {
        g_ctx = zmq_ctx_new();
        g_pid = getpid();
    }
    void *c = g_ctx;
    if (c) g_refs++;
    pthread_mutex_unlock(&g_lock);
    return c;
}

static void ctx_release(void) {
    pthread_mutex_lock(&g_lock);
    if (g_ctx && g_pid == getpid() && --g_refs == 0) {
        zmq_ctx_term(g_ctx);
        g_ctx = NULL;
    }
    pthread_mutex_unlock(&g_lock);
}

static int zerr(void) {
    return (errno == EINTR || errno == ETERM) ? BUS_EINTR : BUS_EZMQ;
}

int bus_socket_open(bus_socket **out, bus_socket_type type, const bus_socket_opts *opts) {
    static const int ztype[] = {[BUS_PUSH] = ZMQ_PUSH, [BUS_PULL] = ZMQ_PULL,
                                [BUS_PUB] = ZMQ_PUB, [BUS_SUB] = ZMQ_SUB,
                                [BUS_ROUTER] = ZMQ_ROUTER, [BUS_DEALER] = ZMQ_DEALER};
    *out = NULL;
    if ((unsigned)type > BUS_DEALER) return VEL_EINVAL;
    bus_socket_opts o = opts ? *opts : (bus_socket_opts){0};
    bus_socket *s = calloc(1, sizeof *s);
    if (!s) return VEL_ENOMEM;
    s->type = type;
    s->lim = bus_limits_resolve(&o.limits);
    s->allow_remote = o.allow_remote;
    void *ctx = ctx_acquire();
    if (!ctx) { free(s); return BUS_EZMQ; }
    s->z = zmq_socket(ctx, ztype[type]);
    if (!s->z) { int rc = zerr(); ctx_release(); free(s); return rc; }
    int64_t maxmsg = (int64_t)s->lim.max_frame;   // per frame, as it arrives (header.h)
    int linger = o.linger_ms == 0 ? 1000 : o.linger_ms < 0 ? 0 : o.linger_ms;
    int rc = zmq_setsockopt(s->z, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    rc = rc || zmq_setsockopt(s->z, ZMQ_LINGER, &linger, sizeof linger);
    if (o.hwm > 0) {
        rc = rc || zmq_setsockopt(s->z, ZMQ_SNDHWM, &o.hwm, sizeof o.hwm);
        rc = rc || zmq_setsockopt(s->z, ZMQ_RCVHWM, &o.hwm, sizeof o.hwm);
    }
    if (type == BUS_SUB) rc = rc || zmq_setsockopt(s->z, ZMQ_SUBSCRIBE, "", 0);
    if (type == BUS_ROUTER) {
        // A send to a peer that has gone fails (EHOSTUNREACH) instead of
        // vanishing: the job source then drops that worker's credit.
        int one = 1;
        rc = rc || zmq_setsockopt(s->z, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    }
    if (type == BUS_PUSH) {
        // Without IMMEDIATE a connecting PUSH keeps a pipe (and keeps
        // round-robining messages into it) for a peer that has died, until
        // the HWM fills: with a killed decoder, half of every re-issue round
        // vanished again (measured: 5.1 s instead of 0.7 s to finish).
        int one = 1;
        rc = rc || zmq_setsockopt(s->z, ZMQ_IMMEDIATE, &one, sizeof one);
    }
    if (rc) {
        bus_socket_close(&s);
        return BUS_EZMQ;
    }
    *out = s;
    return 0;
}

void bus_socket_close(bus_socket **sp) {
    if (!sp || !*sp) return;
    bus_socket *s = *sp;
    if (s->z) {
        zmq_close(s->z);
        ctx_release();
    }
    free(s);
    *sp = NULL;
}

// ---- endpoints ------------------------------------------------------------

#define EP_MAX 256

// 0, or the code (with a vel_fail detail naming ep) of what is wrong with it.
static int endpoint_check(const char *ep, int bind, int allow_remote) {
    if (!strncmp(ep, "ipc://", 6) && ep[6]) return 0;
    if (!strncmp(ep, "inproc://", 9) && ep[9]) return 0;
    const char *host = ep + 6, *colon = strncmp(ep, "tcp://", 6) ? NULL : strrchr(host, ':');
    if (!colon || colon == host) return vel_fail(BUS_EENDPOINT, "'%s'", ep);
    // ZeroMQ reads the port modulo 65536 (tcp://127.0.0.1:99999 bound 34463),
    // so check it here: 1..65535, or * (any free port) on bind.
    const char *port = colon + 1;
    size_t nd = strspn(port, "0123456789");
    long v = nd && nd == strlen(port) && nd <= 5 ? strtol(port, NULL, 10) : -1;
    if (!(bind && !strcmp(port, "*")) && (v < 1 || v > 65535))
        return vel_fail(BUS_EPORT, "'%s' in '%s'", port, ep);
    if (!bind || allow_remote) return 0;
    // Binding anything but loopback exposes the stage: an explicit choice.
    if ((size_t)(colon - host) == 9 && !strncmp(host, "127.0.0.1", 9)) return 0;
    return vel_fail(BUS_EREMOTE, "'%s'", ep);
}

static int each_endpoint(bus_socket *s, const char *eps, int bind) {
    if (!eps || !*eps) return vel_fail(BUS_EENDPOINT, "no endpoint given");
    const char *p = eps;
    while (*p) {
        const char *q = strchr(p, ',');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        char ep[EP_MAX];
        if (n == 0 || n >= EP_MAX) return vel_fail(BUS_EENDPOINT, "empty or longer than %d bytes in '%s'", EP_MAX - 1, eps);
        memcpy(ep, p, n);
        ep[n] = 0;
        int rc = endpoint_check(ep, bind, s->allow_remote);
        if (rc) return rc;
        rc = bind ? zmq_bind(s->z, ep) : zmq_connect(s->z, ep);
        if (rc && errno == EADDRINUSE) return vel_fail(BUS_EADDRINUSE, "'%s'", ep);
        if (rc && (errno == EINVAL || errno == EPROTONOSUPPORT || errno == ENODEV || errno == EADDRNOTAVAIL ||
                   errno == ENOENT))
            return vel_fail(BUS_EENDPOINT, "'%s': %s", ep, zmq_strerror(errno));
        if (rc) return zerr();
        p += n;
        if (*p == ',') p++;
    }
    return 0;
}

int bus_bind(bus_socket *s, const char *endpoints) { return each_endpoint(s, endpoints, 1); }
int bus_connect(bus_socket *s, const char *endpoints) { return each_endpoint(s, endpoints, 0); }

int bus_last_endpoint(bus_socket *s, char *buf, size_t cap) {
    size_t n = cap;
    if (zmq_getsockopt(s->z, ZMQ_LAST_ENDPOINT, buf, &n)) return errno == EINVAL ? VEL_ERANGE : zerr();
    return 0;
}

void bus_socket_stats(const bus_socket *s, bus_stats *out) { *out = s->st; }
void *bus_socket_raw(bus_socket *s) { return s->z; }

// ---- send -----------------------------------------------------------------

// 1 if writable within timeout, 0 if not, or an error code.
static int wait_io(bus_socket *s, short ev, int timeout_ms) {
    zmq_pollitem_t it = {.socket = s->z, .events = ev};
    int n = zmq_poll(&it, 1, timeout_ms);
    if (n < 0) return zerr();
    return n > 0 && (it.revents & ev);
}

static void free_buf(void *data, void *hint) {
    (void)hint;
    free(data);
}

// Sends m; copy=1 never transfers ownership (bus_send_copy). Returns 0,
// BUS_ETIMEOUT with nothing sent, or an error after a partial send attempt.
static int send_msg(bus_socket *s, bus_msg *m, int timeout_ms, int copy) {
    uint8_t *hb;
    size_t hl;
    int rc = bus_msg_encode_header(m, &hb, &hl);
    if (rc) return rc;
    int nt = m->h.ntensors;
    zmq_msg_t part;
    if (zmq_msg_init_data(&part, hb, hl, free_buf, NULL)) { free(hb); return VEL_ENOMEM; }
    // DONTWAIT on the first part only: ZeroMQ queues a multipart message
    // atomically, so once the header is in, the payloads follow without
    // blocking, and an EAGAIN here means nothing of m has left. Try first,
    // poll only when the socket is full (saves a poll per message).
    double t0 = vel_now();
    while (zmq_msg_send(&part, s->z, ZMQ_DONTWAIT | (nt ? ZMQ_SNDMORE : 0)) < 0) {
        int e = errno, left = timeout_ms;
        if (e == EAGAIN && timeout_ms > 0) {
            left = timeout_ms - (int)((vel_now() - t0) * 1000);
            if (left < 0) left = 0;
        }
        int w = e != EAGAIN ? (errno = e, zerr()) : timeout_ms == 0 ? 0
                                                  : wait_io(s, ZMQ_POLLOUT, left);
        if (w <= 0) {
            zmq_msg_close(&part);
            return w < 0 ? w : BUS_ETIMEOUT;
        }
    }
    size_t bytes = hl;
    for (int i = 0; i < nt; i++) {
        size_t n = m->h.tensors[i].nbytes;
        int zc_fn = !copy && m->fn[i] && n > 0;
        if (m->received && !m->aligned[i]) {
            // Forwarding a received payload: share the frame (refcounted).
            zmq_msg_init(&part);
            rc = zmq_msg_copy(&part, &m->frames[i + 1]);
        } else if (zc_fn) {
            rc = zmq_msg_init_data(&part, m->data[i], n, m->fn[i], m->hint[i]);
            if (rc == 0) m->fn[i] = NULL; // ZeroMQ owns it now (frees even if the send fails)
        } else {
            rc = zmq_msg_init_size(&part, n);
            if (rc == 0 && n) memcpy(zmq_msg_data(&part), m->data[i], n);
        }
        if (rc) return VEL_ENOMEM;
        if (zmq_msg_send(&part, s->z, i + 1 < nt ? ZMQ_SNDMORE : 0) < 0) {
            rc = zerr();
            zmq_msg_close(&part);
            return rc;
        }
        bytes += n;
    }
    s->st.sent++;
    s->st.bytes_sent += bytes;
    return 0;
}

int bus_send(bus_socket *s, bus_msg **m, int timeout_ms) {
    int rc = send_msg(s, *m, timeout_ms, 0);
    if (rc != BUS_ETIMEOUT) bus_msg_destroy(m);
    return rc;
}

int bus_send_copy(bus_socket *s, const bus_msg *m, int timeout_ms) {
    return send_msg(s, (bus_msg *)m, timeout_ms, 1);
}

int bus_send_to(bus_socket *s, const void *peer, size_t peer_len, const bus_msg *m) {
    if (s->type != BUS_ROUTER || !peer_len || peer_len > BUS_PEER_MAX) return VEL_EINVAL;
    // ROUTER never blocks: the identity frame goes out now or the peer is
    // unknown or gone (EHOSTUNREACH) or its pipe is full (EAGAIN).
    if (zmq_send(s->z, peer, peer_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return errno == EHOSTUNREACH ? VEL_ENOTFOUND : errno == EAGAIN ? BUS_ETIMEOUT : zerr();
    return send_msg(s, (bus_msg *)m, 0, 1);
}

int bus_last_peer(const bus_socket *s, uint8_t *peer, size_t *peer_len) {
    if (s->type != BUS_ROUTER || !s->peer_len) return VEL_ENOTFOUND;
    memcpy(peer, s->peer, s->peer_len);
    *peer_len = s->peer_len;
    return 0;
}

// ---- receive --------------------------------------------------------------

static int reject(bus_socket *s, int code) {
    if (code <= -100 && code >= BUS_ECODE_MIN) {
        s->st.rejected++;
        s->st.by_code[-code - 100]++;
    }
    return code;
}

// Receives one whole multipart message (the socket is readable).
static int recv_one(bus_socket *s, bus_msg **out) {
    *out = NULL;
    // First frame without waiting, and before allocating anything: callers
    // try this before they poll, so "nothing there" must stay cheap.
    zmq_msg_t t;
    zmq_msg_init(&t);
    if (zmq_msg_recv(&t, s->z, ZMQ_DONTWAIT) < 0) {
        int rc = errno == EAGAIN ? BUS_ETIMEOUT : zerr();
        zmq_msg_close(&t);
        return rc;
    }
    if (s->type == BUS_ROUTER) {
        // The identity frame ROUTER puts in front: remember it, then read
        // the message itself as from any other socket.
        s->peer_len = zmq_msg_size(&t) <= BUS_PEER_MAX ? zmq_msg_size(&t) : 0;
        if (s->peer_len) memcpy(s->peer, zmq_msg_data(&t), s->peer_len);
        if (!zmq_msg_more(&t)) { zmq_msg_close(&t); return reject(s, BUS_EFRAMES); }
        if (zmq_msg_recv(&t, s->z, 0) < 0) {
            int rc = zerr();
            zmq_msg_close(&t);
            return rc;
        }
    }
    bus_msg *m = calloc(1, sizeof *m);
    if (!m) {
        // Still drain the message so the socket stays in step.
        while (zmq_msg_more(&t) && zmq_msg_recv(&t, s->z, 0) >= 0) {}
        zmq_msg_close(&t);
        return VEL_ENOMEM;
    }
    m->received = 1;
    int too_many = 0, rc = 0;
    size_t bytes = 0;
    for (int more = 1, first = 1; more; first = 0) {
        if (!first) {
            zmq_msg_init(&t);
            if (zmq_msg_recv(&t, s->z, 0) < 0) {   // parts arrive together: no wait
                rc = zerr();
                zmq_msg_close(&t);
                break;
            }
        }
        more = zmq_msg_more(&t);
        bytes += zmq_msg_size(&t);
        if (m->nframes < BUS_MAX_TENSORS + 1) {
            zmq_msg_init(&m->frames[m->nframes]);
            zmq_msg_move(&m->frames[m->nframes++], &t);
        } else {
            too_many = 1;   // keep draining: the rest belongs to this message
        }
        zmq_msg_close(&t);
    }
    if (rc) { bus_msg_destroy(&m); return rc; }
    s->st.bytes_received += bytes;
    if (too_many) { bus_msg_destroy(&m); return reject(s, BUS_EFRAMES); }
    size_t flen[BUS_MAX_TENSORS];
    for (int i = 1; i < m->nframes; i++) flen[i - 1] = zmq_msg_size(&m->frames[i]);
    rc = bus_header_decode(zmq_msg_data(&m->frames[0]), zmq_msg_size(&m->frames[0]), flen,
                           m->nframes - 1, &s->lim, &m->h);
    if (rc) { bus_msg_destroy(&m); return reject(s, rc); }
    for (int i = 0; i < m->h.ntensors; i++) {
        void *p = zmq_msg_data(&m->frames[i + 1]);
        size_t n = m->h.tensors[i].nbytes, al = dtype_size(m->h.tensors[i].dtype);
        if (n && (uintptr_t)p % al) {
            m->aligned[i] = aligned_alloc(64, (n + 63) & ~(size_t)63);
            if (!m->aligned[i]) { bus_msg_destroy(&m); return VEL_ENOMEM; }
            memcpy(m->aligned[i], p, n);
            p = m->aligned[i];
            s->st.realigned++;
        }
        m->data[i] = p;
    }
    s->st.received++;
    *out = m;
    return 0;
}

int bus_recv(bus_socket *s, bus_msg **out, int timeout_ms) {
    int which;
    return bus_recv_any(&s, 1, timeout_ms, &which, out);
}

int bus_recv_any(bus_socket **socks, int n, int timeout_ms, int *which, bus_msg **out) {
    enum { MAXS = 16 };
    *out = NULL;
    *which = -1;
    if (n < 1 || n > MAXS) return VEL_EINVAL;
    zmq_pollitem_t it[MAXS];
    for (int i = 0; i < n; i++) it[i] = (zmq_pollitem_t){.socket = socks[i]->z, .events = ZMQ_POLLIN};
    double t0 = vel_now();
    for (;;) {
        // Try every socket (lowest index first) before sleeping in poll:
        // a busy stream then costs no poll call per message.
        for (int i = 0; i < n; i++) {
            int rc = recv_one(socks[i], out);
            if (rc == BUS_ETIMEOUT) continue;
            *which = i;
            return rc;
        }
        int left = timeout_ms;
        if (timeout_ms >= 0) {
            left = timeout_ms - (int)((vel_now() - t0) * 1000);
            if (left <= 0) return BUS_ETIMEOUT;
        }
        if (zmq_poll(it, n, left) < 0) return zerr();
    }
}
