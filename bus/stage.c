// stage.c: the two helpers a stage loop is built on: bus_inbox (data plus
// end of stream) and bus_sink (inbox + duplicate filter + acks). They only
// combine bus/socket.c and bus/stream.c; the protocol is described in bus.h.
#include <stdlib.h>

#include "bus/internal.h"
#include "core/base.h"

struct bus_inbox {
    bus_socket *data, *ctl;   // ctl NULL when there is no job source
    bus_eos *eos;
};

int bus_inbox_open(bus_inbox **out, const bus_inbox_opts *o) {
    *out = NULL;
    if (!o || !o->data_ep || o->nproducers < 0) return VEL_EINVAL;
    bus_inbox *in = calloc(1, sizeof *in);
    if (!in) return VEL_ENOMEM;
    int rc = bus_eos_new(&in->eos, o->nproducers);
    if (!rc) rc = bus_socket_open(&in->data, BUS_PULL, &o->sock);
    if (!rc) rc = o->bind ? bus_bind(in->data, o->data_ep) : bus_connect(in->data, o->data_ep);
    if (!rc && o->ctl_ep && *o->ctl_ep) {
        rc = bus_socket_open(&in->ctl, BUS_SUB, &o->sock);
        if (!rc) rc = bus_connect(in->ctl, o->ctl_ep);
    }
    if (rc) { bus_inbox_close(&in); return rc; }
    *out = in;
    return 0;
}

int bus_inbox_next(bus_inbox *in, bus_msg **out, int timeout_ms) {
    *out = NULL;
    double t0 = vel_now();
    for (;;) {
        if (bus_eos_done(in->eos)) return BUS_EEOS;
        int left = timeout_ms;
        if (timeout_ms >= 0) {
            left = timeout_ms - (int)((vel_now() - t0) * 1000);
            if (left < 0) return BUS_ETIMEOUT;
        }
        // ctl first: once a source has ended, whatever is still queued for it
        // is a duplicate of something the sink already has.
        bus_socket *socks[2] = {in->ctl, in->data};
        int first = in->ctl ? 0 : 1, which;
        bus_msg *m;
        int rc = bus_recv_any(socks + first, 2 - first, left, &which, &m);
        if (rc) return rc;
        int e = bus_eos_note(in->eos, m);
        if (e == 0 && which + first == 1) { *out = m; return 0; }
        bus_msg_destroy(&m);   // an eos (counted), or a stray non-eos on ctl
    }
}

// Counts any eos waiting on ctl, without blocking.
static void poll_ctl(bus_inbox *in) {
    if (!in->ctl) return;
    bus_msg *c;
    int rc;
    while ((rc = bus_recv(in->ctl, &c, 0)) != BUS_ETIMEOUT) {
        if (rc) continue;   // malformed: counted by the socket
        bus_eos_note(in->eos, c);
        bus_msg_destroy(&c);
    }
}

int bus_inbox_send(bus_inbox *in, bus_socket *out, bus_msg **m) {
    for (;;) {
        int rc = bus_send(out, m, 100);
        if (rc != BUS_ETIMEOUT) return rc;
        poll_ctl(in);
        if (bus_eos_done(in->eos)) {
            bus_msg_destroy(m);
            return BUS_EEOS;
        }
    }
}

bus_socket *bus_inbox_data(bus_inbox *in) { return in->data; }

void bus_inbox_close(bus_inbox **in) {
    if (!in || !*in) return;
    bus_socket_close(&(*in)->data);
    bus_socket_close(&(*in)->ctl);
    bus_eos_destroy(&(*in)->eos);
    free(*in);
    *in = NULL;
}

struct bus_sink {
    bus_inbox *in;          // its eos tracker also says which sources have ended
    bus_acker *ack;
    bus_dedupe *seen;
    uint64_t dups;
};

int bus_sink_open(bus_sink **out, const bus_sink_opts *o) {
    *out = NULL;
    if (!o || !o->acks_ep) return VEL_EINVAL;
    bus_sink *s = calloc(1, sizeof *s);
    if (!s) return VEL_ENOMEM;
    int rc = bus_dedupe_new(&s->seen);
    if (!rc) rc = bus_inbox_open(&s->in, &o->in);
    if (!rc) rc = bus_acker_open(&s->ack, o->acks_ep, &o->in.sock);
    if (rc) { bus_sink_close(&s); return rc; }
    *out = s;
    return 0;
}

int bus_sink_next(bus_sink *s, bus_msg **out, int timeout_ms) {
    double t0 = vel_now();
    for (;;) {
        int left = timeout_ms;
        if (timeout_ms >= 0) {
            left = timeout_ms - (int)((vel_now() - t0) * 1000);
            if (left < 0) return BUS_ETIMEOUT;
        }
        int rc = bus_inbox_next(s->in, out, left);
        if (rc) return rc;
        // An ack that cannot go out now is not an error here: the source
        // re-issues, and this sink drops the copy and acks again.
        if (!bus_eos_ended(s->in->eos, bus_msg_src(*out))) (void)bus_ack(s->ack, *out, 1000);
        int fresh = bus_dedupe_add(s->seen, bus_msg_src(*out), bus_msg_id(*out));
        if (fresh == 1) return 0;
        bus_msg_destroy(out);
        if (fresh < 0) return fresh;
        s->dups++;
    }
}

uint64_t bus_sink_duplicates(const bus_sink *s) { return s->dups; }
bus_inbox *bus_sink_inbox(bus_sink *s) { return s->in; }

void bus_sink_close(bus_sink **s) {
    if (!s || !*s) return;
    bus_inbox_close(&(*s)->in);
    bus_acker_close(&(*s)->ack);
    bus_dedupe_destroy(&(*s)->seen);
    free(*s);
    *s = NULL;
}
