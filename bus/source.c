// source.c: the job source. Keeps every job until it is acked; a job sent
// and not acked within its deadline goes back to the front of the queue.
// The deadline doubles with each re-issue of the same job (up to 32x): a
// deadline shorter than the real queueing time otherwise re-sends every
// in-flight job again and again (measured on the short-deadline test:
// 5033 re-issues for 300 jobs with a fixed deadline).
// Expiries sit in a min-heap of (expiry, job, send time); stale entries (job
// acked or re-sent since) are skipped when they reach the top.
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus/internal.h"
#include "core/base.h"

enum { PENDING = 0, INFLIGHT = 1, ACKED = 2 };

typedef struct { int64_t idx; double t; double expire; } entry;
typedef struct { entry *e; size_t head, len, cap; } fifo;
typedef struct { entry *e; size_t len, cap; } heap;

static int heap_push(heap *h, entry x) {
    if (h->len == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 64;
        entry *e = realloc(h->e, cap * sizeof *e);
        if (!e) return VEL_ENOMEM;
        h->e = e; h->cap = cap;
    }
    size_t i = h->len++;
    while (i > 0 && h->e[(i - 1) / 2].expire > x.expire) {
        h->e[i] = h->e[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->e[i] = x;
    return 0;
}
static entry *heap_top(heap *h) { return h->len ? &h->e[0] : NULL; }
static void heap_pop(heap *h) {
    entry x = h->e[--h->len];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->len) break;
        if (c + 1 < h->len && h->e[c + 1].expire < h->e[c].expire) c++;
        if (h->e[c].expire >= x.expire) break;
        h->e[i] = h->e[c];
        i = c;
    }
    if (h->len) h->e[i] = x;
}

static int fifo_push(fifo *f, entry x) {
    if (f->len == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 64;
        entry *e = malloc(cap * sizeof *e);
        if (!e) return VEL_ENOMEM;
        for (size_t i = 0; i < f->len; i++) e[i] = f->e[(f->head + i) % f->cap];
        free(f->e);
        f->e = e; f->cap = cap; f->head = 0;
    }
    f->e[(f->head + f->len) % f->cap] = x;
    f->len++;
    return 0;
}
static entry *fifo_front(fifo *f) { return f->len ? &f->e[f->head] : NULL; }
static void fifo_pop(fifo *f) { f->head = (f->head + 1) % f->cap; f->len--; }

// A worker that asked for jobs (credit mode): its ROUTER identity and how
// many more jobs it will take.
typedef struct { uint8_t id[BUS_PEER_MAX]; size_t len; int credit; } peer;
enum { MAX_PEERS = 256 };

struct bus_source {
    bus_source_opts o;
    peer *peers;             // credit mode: workers seen so far
    int npeers, rr;          // rr: where the round-robin over peers resumes
    double last_alive;       // last heartbeat on ctl
    double last_table;       // last job table on ctl
    bus_socket *jobs, *acks, *ctl;
    bus_msg **job;           // owned
    unsigned char *state;
    unsigned char *tries;    // re-issues so far (deadline doubles each time, capped)
    double *sent_at;
    size_t njobs, capjobs, next_new, nacked, ninflight;
    bus_dedupe *ids;         // job id -> index (also rejects repeated ids)
    fifo retry;
    heap inflight;
    double done_at, last_eos;
    int64_t *table;          // the job ids as runs (bus_issued_encode), for the sinks
    size_t table_vals;
    int table_stale;         // jobs added since the table was encoded and published
    bus_source_stats st;
};

int bus_source_open(bus_source **out, const bus_source_opts *o) {
    *out = NULL;
    if (!o || !o->jobs_ep || !o->acks_ep || !o->ctl_ep) return VEL_EINVAL;
    bus_source *s = calloc(1, sizeof *s);
    if (!s) return VEL_ENOMEM;
    s->o = *o;
    if (s->o.deadline_ms <= 0) s->o.deadline_ms = 5000;
    if (s->o.max_inflight <= 0) s->o.max_inflight = 64;
    if (s->o.eos_linger_ms <= 0) s->o.eos_linger_ms = 500;
    s->done_at = -1;
    int rc = bus_dedupe_new(&s->ids);
    if (!rc && o->credit && !(s->peers = calloc(MAX_PEERS, sizeof *s->peers))) rc = VEL_ENOMEM;
    // jobs (credit mode) and acks receive only control messages.
    bus_socket_opts ctl_opts = bus_control_opts(&o->sock);
    if (!rc) rc = bus_socket_open(&s->jobs, o->credit ? BUS_ROUTER : BUS_PUSH, &ctl_opts);
    if (!rc) rc = bus_socket_open(&s->acks, BUS_PULL, &ctl_opts);
    if (!rc) rc = bus_socket_open(&s->ctl, BUS_PUB, &o->sock);
    if (!rc) rc = bus_bind(s->jobs, o->jobs_ep);
    if (!rc) rc = bus_bind(s->acks, o->acks_ep);
    if (!rc) rc = bus_bind(s->ctl, o->ctl_ep);
    if (rc) { bus_source_close(&s); return rc; }
    *out = s;
    return 0;
}

int bus_source_add(bus_source *s, bus_msg **job) {
    bus_msg *m = *job;
    *job = NULL;
    if (!m || m->received) { bus_msg_destroy(&m); return VEL_EINVAL; }
    m->h.src = s->o.src;
    if (bus_dedupe_has(s->ids, s->o.src, m->h.id)) { bus_msg_destroy(&m); return VEL_EINVAL; }
    if (s->njobs == s->capjobs) {
        size_t cap = s->capjobs ? 2 * s->capjobs : 64;
        bus_msg **j = realloc(s->job, cap * sizeof *j);
        if (j) s->job = j;
        unsigned char *st = j ? realloc(s->state, cap) : NULL;
        if (st) s->state = st;
        unsigned char *tr = st ? realloc(s->tries, cap) : NULL;
        if (tr) s->tries = tr;
        double *t = tr ? realloc(s->sent_at, cap * sizeof *t) : NULL;
        if (!t) { bus_msg_destroy(&m); return VEL_ENOMEM; }
        s->sent_at = t;
        s->capjobs = cap;
    }
    int rc = bus_dedupe_put(s->ids, s->o.src, m->h.id, s->njobs);
    if (rc <= 0) { bus_msg_destroy(&m); return rc == 0 ? VEL_EINVAL : rc; }
    s->job[s->njobs] = m;
    s->state[s->njobs] = PENDING;
    s->tries[s->njobs] = 0;
    s->sent_at[s->njobs] = 0;
    s->njobs++;
    s->st.jobs++;
    s->table_stale = 1;
    return 0;
}

// Publishes the job table on ctl ({kind: "issued"}, stream.h), in messages
// of at most BUS_ISSUED_RANGES runs. Re-encoded only after jobs were added.
static int publish_table(bus_source *s) {
    if (s->table_stale) {
        uint64_t *ids = malloc((s->njobs ? s->njobs : 1) * sizeof *ids);
        if (!ids) return VEL_ENOMEM;
        for (size_t i = 0; i < s->njobs; i++) ids[i] = s->job[i]->h.id;
        free(s->table);
        s->table = NULL;
        int rc = bus_issued_encode(ids, s->njobs, &s->table, &s->table_vals);
        free(ids);
        if (rc) return rc;
        s->table_stale = 0;
    }
    size_t off = 0;
    do {
        size_t k = s->table_vals - off;
        if (k > 2 * BUS_ISSUED_RANGES) k = 2 * BUS_ISSUED_RANGES;
        bus_msg *t;
        int rc = bus_msg_new(&t, "issued", s->o.src, 0);
        if (!rc) rc = bus_msg_set_uint(t, "n", s->njobs);
        if (!rc) rc = bus_msg_set_ints(t, "ranges", s->table + off, k);
        if (!rc) rc = bus_send(s->ctl, &t, 0);
        bus_msg_destroy(&t);
        if (rc && rc != BUS_ETIMEOUT) return rc;
        off += k;
    } while (off < s->table_vals);
    return 0;
}

// Index of job id, or -1.
static int64_t job_index(const bus_source *s, uint64_t id) {
    uint64_t i;
    return bus_dedupe_get(s->ids, s->o.src, id, &i) ? (int64_t)i : -1;
}

static void take_acks(bus_source *s) {
    bus_msg *m;
    for (;;) {
        int rc = bus_recv(s->acks, &m, 0);
        if (rc == BUS_ETIMEOUT) return;
        if (rc) continue;   // malformed: counted by the socket, keep serving
        int64_t i = bus_msg_is(m, "ack") && bus_msg_src(m) == s->o.src ? job_index(s, bus_msg_id(m)) : -1;
        if (i < 0 || s->state[i] == ACKED) {
            s->st.stray_acks++;
        } else {
            if (s->state[i] == INFLIGHT) s->ninflight--;
            s->state[i] = ACKED;
            s->nacked++;
            s->st.acked++;
        }
        bus_msg_destroy(&m);
    }
}

// Credit mode: a worker's "credit" message says it will take n more jobs.
static void take_credits(bus_source *s) {
    bus_msg *m;
    int rc;
    while ((rc = bus_recv(s->jobs, &m, 0)) != BUS_ETIMEOUT) {
        if (rc) continue;   // malformed: counted by the socket
        int64_t n = 0;
        uint8_t id[BUS_PEER_MAX];
        size_t len = 0;
        if (!bus_msg_is(m, "credit") || bus_msg_get_int(m, "n", &n) || n < 1 || n > 1024 ||
            bus_last_peer(s->jobs, id, &len)) {
            s->st.stray_credits++;
            bus_msg_destroy(&m);
            continue;
        }
        bus_msg_destroy(&m);
        int k = 0;
        while (k < s->npeers && !(s->peers[k].len == len && !memcmp(s->peers[k].id, id, len))) k++;
        if (k == s->npeers) {
            if (s->npeers == MAX_PEERS) { s->st.stray_credits++; continue; }
            // Reuse the slot of a worker that has gone, else append.
            for (k = 0; k < s->npeers && s->peers[k].len; k++) {}
            if (k == s->npeers) s->npeers++;
            memcpy(s->peers[k].id, id, len);
            s->peers[k].len = len;
            s->peers[k].credit = 0;
        }
        s->peers[k].credit += (int)n;
    }
}

// Credit mode: the next worker with credit, round-robin, or -1.
static int next_peer(bus_source *s) {
    for (int j = 0; j < s->npeers; j++) {
        int k = (s->rr + j) % s->npeers;
        if (s->peers[k].len && s->peers[k].credit > 0) return k;
    }
    return -1;
}

static int expire(bus_source *s, double now) {
    entry *e;
    while ((e = heap_top(&s->inflight))) {
        int64_t i = e->idx;
        if (s->state[i] != INFLIGHT || s->sent_at[i] != e->t) { heap_pop(&s->inflight); continue; }
        if (now < e->expire) break;
        heap_pop(&s->inflight);
        if (s->tries[i] < 5) s->tries[i]++;
        s->state[i] = PENDING;
        s->ninflight--;
        s->st.reissued++;
        int rc = fifo_push(&s->retry, (entry){i, 0, 0});
        if (rc) return rc;
    }
    return 0;
}

// Next job to send: re-issues first, then new jobs in list order.
static int64_t next_job(bus_source *s, int pop) {
    entry *e;
    while ((e = fifo_front(&s->retry))) {
        if (s->state[e->idx] == PENDING) {
            int64_t i = e->idx;
            if (pop) fifo_pop(&s->retry);
            return i;
        }
        fifo_pop(&s->retry);   // acked late, after all: nothing to do
    }
    while (s->next_new < s->njobs && s->state[s->next_new] != PENDING) s->next_new++;
    if (s->next_new < s->njobs) return pop ? (int64_t)s->next_new++ : (int64_t)s->next_new;
    return -1;
}

static int send_some(bus_source *s) {
    while (s->ninflight < (size_t)s->o.max_inflight) {
        int64_t i = next_job(s, 0);
        if (i < 0) return 0;
        int rc;
        if (s->o.credit) {
            int k = next_peer(s);
            if (k < 0) return 0;   // every worker holds all it asked for
            rc = bus_send_to(s->jobs, s->peers[k].id, s->peers[k].len, s->job[i]);
            if (rc == VEL_ENOTFOUND || rc == BUS_ETIMEOUT) {
                // Gone (or stuck): forget its credit; it asks again if alive.
                s->peers[k].credit = 0;
                if (rc == VEL_ENOTFOUND) s->peers[k].len = 0;
                continue;
            }
            if (rc) return rc;
            s->peers[k].credit--;
            s->rr = (k + 1) % s->npeers;
        } else {
            rc = bus_send_copy(s->jobs, s->job[i], 0);
            if (rc == BUS_ETIMEOUT) return 0;
            if (rc) return rc;
        }
        next_job(s, 1);
        double now = vel_now();
        s->state[i] = INFLIGHT;
        s->sent_at[i] = now;
        s->ninflight++;
        s->st.issued++;
        double dl = s->o.deadline_ms / 1000.0 * (double)(1 << s->tries[i]);
        if ((rc = heap_push(&s->inflight, (entry){i, now, now + dl}))) return rc;
    }
    return 0;
}

int bus_source_step(bus_source *s, int timeout_ms) {
    take_acks(s);
    if (s->o.credit) take_credits(s);
    double now = vel_now();
    int rc = 0;
    // Heartbeat: a worker with nothing to do can tell a busy source from a
    // dead one (its idle timeout counts from the last message of any kind).
    if (now - s->last_alive >= BUS_ALIVE_EVERY_MS / 1000.0) {
        bus_msg *a;
        if (!bus_msg_new(&a, "alive", s->o.src, 0)) (void)bus_send(s->ctl, &a, 0);
        bus_msg_destroy(&a);
        s->last_alive = now;
    }
    // The job table: before the first job of any new ones, then every
    // TABLE_EARLY_S until the first ack (a sink that subscribed after the
    // first copy would otherwise hold the run's first items for up to a
    // heartbeat; the first ack shows a sink has the table), then with every
    // heartbeat for sinks that join late.
    const double TABLE_EARLY_S = 0.1;
    if (s->table_stale || now - s->last_table >= (s->nacked ? BUS_ALIVE_EVERY_MS / 1000.0 : TABLE_EARLY_S)) {
        s->last_table = now;
        rc = publish_table(s);
    }
    if (!rc) rc = expire(s, now);
    if (!rc) rc = send_some(s);
    if (rc) return rc;
    const double eos_every = 0.05;   // repeat eos for subscribers that joined late
    if (s->nacked == s->njobs) {
        if (s->done_at < 0) s->done_at = now;
        if (s->last_eos <= 0 || now - s->last_eos >= eos_every) {
            rc = bus_send_eos(s->ctl, s->o.src, 0);
            if (rc && rc != BUS_ETIMEOUT) return rc;
            s->last_eos = now;
        }
        if (now - s->done_at >= s->o.eos_linger_ms / 1000.0) return 1;
    }
    // Wait for an ack, room to send, the next deadline or the next eos.
    double wait = timeout_ms < 0 ? 1e9 : timeout_ms / 1000.0;
    entry *e = heap_top(&s->inflight);
    if (e && e->expire - now < wait) wait = e->expire - now;
    if (s->nacked == s->njobs && wait > eos_every) wait = eos_every;
    if (wait < 0) wait = 0;
    if (wait > BUS_ALIVE_EVERY_MS / 1000.0) wait = BUS_ALIVE_EVERY_MS / 1000.0;
    // Credit mode waits for credits (jobs readable), push mode for room.
    zmq_pollitem_t it[2] = {{.socket = bus_socket_raw(s->acks), .events = ZMQ_POLLIN},
                            {.socket = bus_socket_raw(s->jobs), .events = s->o.credit ? ZMQ_POLLIN : ZMQ_POLLOUT}};
    int can_send = s->ninflight < (size_t)s->o.max_inflight && next_job(s, 0) >= 0;
    if (zmq_poll(it, can_send || s->o.credit ? 2 : 1, (long)(wait * 1000 + 0.999)) < 0)
        return BUS_EINTR;
    return 0;
}

int bus_source_abort(bus_source *s, int linger_ms) {
    // Repeated like eos, for subscribers that are slow to join.
    double t0 = vel_now();
    int rc = 0;
    do {
        bus_msg *a;
        if ((rc = bus_msg_new(&a, "abort", s->o.src, 0))) return rc;
        rc = bus_send(s->ctl, &a, 0);
        bus_msg_destroy(&a);
        if (rc && rc != BUS_ETIMEOUT) return rc;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    } while ((vel_now() - t0) * 1000 < linger_ms);
    return 0;
}

int bus_source_run(bus_source *s, int timeout_ms) {
    double t0 = vel_now();
    for (;;) {
        int left = -1;
        if (timeout_ms >= 0) {
            left = timeout_ms - (int)((vel_now() - t0) * 1000);
            if (left <= 0) return BUS_ETIMEOUT;
        }
        int rc = bus_source_step(s, left);
        if (rc < 0) return rc;
        if (rc == 1) return 0;
    }
}

int bus_source_endpoint(bus_source *s, int which, char *buf, size_t cap) {
    bus_socket *k = which == 0 ? s->jobs : which == 1 ? s->acks : which == 2 ? s->ctl : NULL;
    return k ? bus_last_endpoint(k, buf, cap) : VEL_EINVAL;
}

void bus_source_get_stats(const bus_source *s, bus_source_stats *out) { *out = s->st; }

void bus_source_close(bus_source **sp) {
    if (!sp || !*sp) return;
    bus_source *s = *sp;
    bus_socket_close(&s->jobs);
    bus_socket_close(&s->acks);
    bus_socket_close(&s->ctl);
    for (size_t i = 0; i < s->njobs; i++) bus_msg_destroy(&s->job[i]);
    free(s->job);
    free(s->state);
    free(s->sent_at);
    free(s->tries);
    free(s->peers);
    free(s->table);
    free(s->retry.e);
    free(s->inflight.e);
    bus_dedupe_destroy(&s->ids);
    free(s);
    *sp = NULL;
}
