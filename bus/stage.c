// stage.c: the two helpers a stage loop is built on: bus_inbox (data plus
// end of stream) and bus_sink (inbox + duplicate filter + acks). They only
// combine bus/socket.c and bus/stream.c; the protocol is described in bus.h.
#include <stdlib.h>
#include <string.h>

#include "bus/internal.h"
#include "core/base.h"

enum { MAX_DATA = 15 };   // data sockets; + ctl = bus_recv_any's 16

struct bus_inbox {
    bus_socket *ctl;              // NULL when there is no job source
    bus_socket *data[MAX_DATA];   // one PULL, or one DEALER per source in credit mode
    int ndata;
    bus_socket *data0;            // data[0]: stats, endpoint
    bus_eos *eos;
    int credit, idle_ms;
    int owe;                      // credit mode: data socket of the item handed out last, or -1
    int aborted;                  // a producer published abort
    double idle_since;            // last message of any kind (or the end of the caller's work)
    uint64_t spoofed;
    bus_issued *issued;           // the sink's: the sources' job tables (NULL in a worker)
};

// Credit mode: {kind: "credit", n} to the source behind data socket j.
static int send_credit(bus_inbox *in, int j, int n) {
    bus_msg *c;
    int rc = bus_msg_new(&c, "credit", 0, 0);
    if (!rc) rc = bus_msg_set_int(c, "n", n);
    if (!rc) rc = bus_send(in->data[j], &c, 1000);
    bus_msg_destroy(&c);
    return rc;
}

int bus_inbox_open(bus_inbox **out, const bus_inbox_opts *o) {
    *out = NULL;
    if (!o || !o->data_ep || o->nproducers < 0 || o->credit < 0 || o->idle_ms < 0) return VEL_EINVAL;
    if (o->credit && o->bind) return vel_fail(VEL_EINVAL, "credit mode connects to the sources");
    bus_inbox *in = calloc(1, sizeof *in);
    if (!in) return VEL_ENOMEM;
    in->credit = o->credit;
    in->idle_ms = o->idle_ms;
    in->owe = -1;
    in->idle_since = vel_now();
    int rc = bus_eos_new(&in->eos, o->nproducers);
    if (!rc && !o->credit) {
        in->ndata = 1;
        rc = bus_socket_open(&in->data[0], BUS_PULL, &o->sock);
        if (!rc) rc = o->bind ? bus_bind(in->data[0], o->data_ep) : bus_connect(in->data[0], o->data_ep);
    }
    // Credit mode: one DEALER per source, so each credit goes back to the
    // source whose job it was.
    for (const char *p = o->data_ep; !rc && o->credit && *p;) {
        const char *q = strchr(p, ',');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        char ep[256];
        if (n == 0 || n >= sizeof ep || in->ndata == MAX_DATA) { rc = BUS_EENDPOINT; break; }
        memcpy(ep, p, n);
        ep[n] = 0;
        int j = in->ndata++;
        rc = bus_socket_open(&in->data[j], BUS_DEALER, &o->sock);
        if (!rc) rc = bus_connect(in->data[j], ep);
        if (!rc) rc = send_credit(in, j, o->credit);
        p += n + (q != NULL);
    }
    in->data0 = in->data[0];
    if (!rc && o->ctl_ep && *o->ctl_ep) {
        bus_socket_opts ctl_opts = bus_control_opts(&o->sock);
        rc = bus_socket_open(&in->ctl, BUS_SUB, &ctl_opts);
        if (!rc) rc = bus_connect(in->ctl, o->ctl_ep);
    }
    if (rc) { bus_inbox_close(&in); return rc; }
    *out = in;
    return 0;
}

// A control message (eos, abort, job table, heartbeat) from ctl, or an eos
// that came on a data socket (from_data). 1 if it was one of those (m
// consumed by the caller either way).
static int note_control(bus_inbox *in, const bus_msg *m, int from_data) {
    int is_eos = bus_msg_is(m, "eos"), is_abort = bus_msg_is(m, "abort"), is_table = bus_msg_is(m, "issued");
    if (!is_eos && !is_abort && !is_table) return bus_msg_is(m, "alive") && !from_data;
    // With a control channel, only it may end or abort the stream or say
    // what was issued, and only for a producer we were told of.
    if ((from_data && in->ctl) || bus_msg_src(m) >= (uint32_t)bus_eos_total(in->eos)) {
        in->spoofed++;
        return 1;
    }
    if (is_table) {
        if (in->issued && bus_issued_note(in->issued, m) < 0) in->spoofed++;   // malformed: ignored
    } else if (is_abort) {
        in->aborted = 1;
    } else {
        bus_eos_note(in->eos, m);
    }
    return 1;
}

int bus_inbox_next(bus_inbox *in, bus_msg **out, int timeout_ms) {
    *out = NULL;
    double t0 = vel_now();
    if (in->owe >= 0) {
        // The caller is back: its item is done. Give the credit back; the
        // time it spent working is not idle time.
        (void)send_credit(in, in->owe, 1);
        in->owe = -1;
        in->idle_since = t0;
    }
    for (;;) {
        if (in->aborted) return BUS_EABORT;
        if (bus_eos_done(in->eos)) return BUS_EEOS;
        double now = vel_now();
        if (in->idle_ms > 0 && (now - in->idle_since) * 1000 >= in->idle_ms)
            return vel_fail(BUS_EIDLE, "nothing received for %d ms (sources gone?)", in->idle_ms);
        int left = timeout_ms;
        if (timeout_ms >= 0) {
            left = timeout_ms - (int)((now - t0) * 1000);
            if (left < 0) return BUS_ETIMEOUT;
        }
        if (in->idle_ms > 0) {
            int to_idle = in->idle_ms - (int)((now - in->idle_since) * 1000) + 1;
            if (left < 0 || to_idle < left) left = to_idle;
        }
        // ctl first: once a source has ended, whatever is still queued for it
        // is a duplicate of something the sink already has.
        bus_socket *socks[1 + MAX_DATA];
        int n = 0;
        if (in->ctl) socks[n++] = in->ctl;
        for (int j = 0; j < in->ndata; j++) socks[n++] = in->data[j];
        int which;
        bus_msg *m;
        int rc = bus_recv_any(socks, n, left, &which, &m);
        if (rc == BUS_ETIMEOUT) continue;   // the loop checks idle and the caller's timeout
        if (rc) return rc;
        in->idle_since = vel_now();
        int is_ctl = in->ctl && which == 0;
        if (note_control(in, m, !is_ctl) || is_ctl) {
            bus_msg_destroy(&m);   // control, or a stray non-control message on ctl
            continue;
        }
        if (in->credit) in->owe = which - (in->ctl != NULL);
        *out = m;
        return 0;
    }
}

// Counts any eos waiting on ctl, without blocking.
static void poll_ctl(bus_inbox *in) {
    if (!in->ctl) return;
    bus_msg *c;
    int rc;
    while ((rc = bus_recv(in->ctl, &c, 0)) != BUS_ETIMEOUT) {
        if (rc) continue;   // malformed: counted by the socket
        note_control(in, c, 0);
        bus_msg_destroy(&c);
    }
}

int bus_inbox_send(bus_inbox *in, bus_socket *out, bus_msg **m) {
    for (;;) {
        int rc = bus_send(out, m, 100);
        if (rc != BUS_ETIMEOUT) return rc;
        poll_ctl(in);
        if (bus_eos_done(in->eos) || in->aborted) {
            bus_msg_destroy(m);
            return in->aborted ? BUS_EABORT : BUS_EEOS;
        }
    }
}

uint64_t bus_inbox_spoofed(const bus_inbox *in) { return in->spoofed; }

bus_socket *bus_inbox_data(bus_inbox *in) { return in->data0; }

void bus_inbox_close(bus_inbox **in) {
    if (!in || !*in) return;
    for (int j = 0; j < (*in)->ndata; j++) bus_socket_close(&(*in)->data[j]);
    bus_socket_close(&(*in)->ctl);
    bus_eos_destroy(&(*in)->eos);
    bus_issued_destroy(&(*in)->issued);
    free(*in);
    *in = NULL;
}

struct bus_sink {
    bus_inbox *in;          // its eos tracker also says which sources have ended
    bus_acker *ack;
    bus_dedupe *seen;
    uint64_t dups, unissued, unconfirmed;
    unsigned char *waited;  // per source: a wait for its table has timed out once
};

int bus_sink_open(bus_sink **out, const bus_sink_opts *o) {
    *out = NULL;
    if (!o || !o->acks_ep) return VEL_EINVAL;
    bus_sink *s = calloc(1, sizeof *s);
    if (!s) return VEL_ENOMEM;
    int rc = bus_dedupe_new(&s->seen);
    if (!rc) rc = bus_inbox_open(&s->in, &o->in);
    if (!rc && s->in->ctl) rc = bus_issued_new(&s->in->issued, o->in.nproducers);
    if (!rc && !(s->waited = calloc((size_t)o->in.nproducers + 1, 1))) rc = VEL_ENOMEM;
    if (!rc) rc = bus_acker_open(&s->ack, o->acks_ep, &o->in.sock);
    if (rc) { bus_sink_close(&s); return rc; }
    *out = s;
    return 0;
}

// Was (src, id) issued? 1, 0, or -1 if src's table has not arrived within
// BUS_ISSUED_WAIT_MS (read from ctl meanwhile; eos and abort heard there
// are noted for bus_inbox_next). Without ctl there are no tables: 1. Waits
// once per source: a source that died before its table reached us would
// otherwise cost that wait for every item of it still in the pipeline.
static int issued(bus_sink *s, uint32_t src, uint64_t id) {
    bus_inbox *in = s->in;
    if (!in->issued) return 1;
    int ok = bus_issued_check(in->issued, src, id);
    if (ok >= 0 || s->waited[src]) return ok;   // ok < 0: src is a known producer
    double t0 = vel_now();
    while (ok < 0) {
        int left = BUS_ISSUED_WAIT_MS - (int)((vel_now() - t0) * 1000);
        bus_msg *c;
        int rc = left > 0 ? bus_recv(in->ctl, &c, left) : BUS_ETIMEOUT;
        if (rc == BUS_ETIMEOUT) {
            s->waited[src] = 1;
            return -1;
        }
        if (rc) continue;   // malformed: counted by the socket
        note_control(in, c, 0);
        bus_msg_destroy(&c);
        ok = bus_issued_check(in->issued, src, id);
    }
    return ok;
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
        uint32_t src = bus_msg_src(*out);
        uint64_t id = bus_msg_id(*out);
        int ok = issued(s, src, id);
        if (ok <= 0) {
            // Not acked: an unissued item has nobody to ack it to, and an
            // unconfirmed one comes again (its source re-issues it).
            bus_msg_destroy(out);
            if (ok < 0) { s->unconfirmed++; continue; }
            s->unissued++;
            return vel_fail(BUS_EUNISSUED, "item (src %u, id %llu): no source issued it", src,
                            (unsigned long long)id);
        }
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
uint64_t bus_sink_unissued(const bus_sink *s) { return s->unissued; }
uint64_t bus_sink_unconfirmed(const bus_sink *s) { return s->unconfirmed; }
bus_inbox *bus_sink_inbox(bus_sink *s) { return s->in; }

void bus_sink_close(bus_sink **s) {
    if (!s || !*s) return;
    bus_inbox_close(&(*s)->in);
    bus_acker_close(&(*s)->ack);
    bus_dedupe_destroy(&(*s)->seen);
    free((*s)->waited);
    free(*s);
    *s = NULL;
}
