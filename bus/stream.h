// stream.h: job streams on top of bus messages (included by bus/bus.h; the
// pipeline wiring they implement is described there):
// - end of stream: `eos` messages carrying their producer id (src), and a
//   per-consumer tracker that is done once every producer it was told of
//   has ended;
// - a duplicate filter for the final sink, keyed by (src, id);
// - an acker: the sink's sockets back to each job source;
// - the job source: issues a list of jobs, re-issues every job not acked
//   within a deadline, and broadcasts eos when every job is acked.
// Not here: what a job means (stages decide; each job carries its own seed).
#ifndef BUS_STREAM_H
#define BUS_STREAM_H

#include <stddef.h>
#include <stdint.h>

// Sends {kind: "eos", src: producer, id: 0}.
int bus_send_eos(bus_socket *s, uint32_t producer, int timeout_ms);

// ---- end-of-stream accounting ----------------------------------------------
typedef struct bus_eos bus_eos;
// Producers are numbered 0..nproducers-1 (their src).
int bus_eos_new(bus_eos **out, int nproducers);
// 1 if m is an eos (counted once per producer, repeats ignored), 0 if m is
// not an eos, VEL_ERANGE if its producer id is not one we were told of.
int bus_eos_note(bus_eos *e, const bus_msg *m);
int bus_eos_done(const bus_eos *e);     // every producer has ended
int bus_eos_count(const bus_eos *e);    // distinct producers ended so far
int bus_eos_total(const bus_eos *e);    // producers it was told of
int bus_eos_ended(const bus_eos *e, uint32_t producer);  // 1 if that producer has ended
void bus_eos_destroy(bus_eos **e);

// ---- duplicate filter (final sink) ---------------------------------------
typedef struct bus_dedupe bus_dedupe;
int bus_dedupe_new(bus_dedupe **out);
// 1 if (src, id) is new (now remembered), 0 if seen before, VEL_ENOMEM.
int bus_dedupe_add(bus_dedupe *d, uint32_t src, uint64_t id);
int bus_dedupe_has(const bus_dedupe *d, uint32_t src, uint64_t id);
size_t bus_dedupe_count(const bus_dedupe *d);
void bus_dedupe_destroy(bus_dedupe **d);

// ---- issued ids (final sink) ----------------------------------------------
// A job source publishes its job table on ctl before its first job and with
// every heartbeat: {kind: "issued", src, n: number of jobs, ranges: [first0,
// last0, first1, last1, ...]} (sorted runs of consecutive ids, both ends
// included, as int64: an id above INT64_MAX travels as its two's-complement
// bit pattern), at most BUS_ISSUED_RANGES runs per message, so a scattered
// table takes several messages. The final sink accepts an item only if its
// (src, id) is in that table (issue 15: an item from an unknown source or
// with an id no source issued used to be counted).
#define BUS_ISSUED_RANGES 1024
typedef struct bus_issued bus_issued;
int bus_issued_new(bus_issued **out, int nproducers);
// 1 if m is an "issued" table (its runs are added), 0 if m is another kind,
// VEL_ERANGE (unknown producer) or BUS_EFIELD (malformed; nothing added).
int bus_issued_note(bus_issued *t, const bus_msg *m);
// 1: (src, id) was issued; 0: it was not (unknown producer, or id outside a
// complete table); -1: src's table has not (all) arrived yet.
int bus_issued_check(const bus_issued *t, uint32_t src, uint64_t id);
void bus_issued_destroy(bus_issued **t);
// The runs of n distinct ids (any order) as [first, last] pairs: *ranges
// (malloc'ed, caller frees) gets *nvals int64 values (2 per run).
int bus_issued_encode(const uint64_t *ids, size_t n, int64_t **ranges, size_t *nvals);

// ---- acknowledgements (final sink -> job sources) ---------------------------
typedef struct bus_acker bus_acker;
// ack_endpoints: comma-separated, the i-th is the ack endpoint of source i.
int bus_acker_open(bus_acker **out, const char *ack_endpoints, const bus_socket_opts *opts);
// Acks item (src, id) to source src: {kind: "ack", src, id}. VEL_ERANGE if
// src has no endpoint; BUS_ETIMEOUT if that source is not taking messages
// (harmless: it re-issues, the sink drops the duplicate and acks again).
int bus_ack(bus_acker *a, const bus_msg *item, int timeout_ms);
void bus_acker_close(bus_acker **a);

// ---- job source --------------------------------------------------------------
typedef struct bus_source bus_source;
typedef struct {
    uint32_t src;            // this source's producer id (0..P-1)
    const char *jobs_ep;     // PUSH, bound: workers connect their input here
    const char *acks_ep;     // PULL, bound: the sink's acker connects here
    const char *ctl_ep;      // PUB, bound: workers and the sink subscribe for eos
    int deadline_ms;         // re-issue a job not acked this long after sending; 0 = 5000;
                             // doubles with each re-issue of that job, up to 32x
    int max_inflight;        // jobs sent but not acked at once; 0 = 64
    int eos_linger_ms;       // after the last ack, keep publishing eos this long; 0 = 500
    int credit;              // 1: credit mode (jobs_ep is a ROUTER; workers use
                             // bus_inbox_opts.credit); 0: plain PUSH (fair queuing only)
    bus_socket_opts sock;    // for the three sockets
} bus_source_opts;

// Credit mode (why: with PUSH, the first worker to connect takes the whole
// window, so a short run used one worker whatever N was): a worker sends
// {kind: "credit", n: k} to each source when it starts and {n: 1} after
// each job it finishes; the source sends a job only to a worker with credit
// left (round-robin), so a worker never holds more than k jobs of a source
// and N workers share any run. A worker that has gone loses its credit at
// the first send that fails; its jobs come back through the deadline.
// Every source also publishes {kind: "alive"} on ctl every
// BUS_ALIVE_EVERY_MS, so a worker's idle timeout tells a busy source from a
// dead one.
#define BUS_ALIVE_EVERY_MS 1000
#define BUS_CREDIT_DEFAULT 2        // jobs a worker holds per source (stage flag --credit)
#define BUS_IDLE_DEFAULT_MS 60000   // a worker with no message for this long stops (--idle-s)

typedef struct {
    uint64_t jobs, issued, reissued, acked;
    uint64_t stray_acks;     // acks for unknown or already acked ids (duplicates)
    uint64_t stray_credits;  // malformed credit messages, or peers over the table size
} bus_source_stats;

int bus_source_open(bus_source **out, const bus_source_opts *o);
// Adds a job (takes *job, sets *job = NULL; its src becomes o->src). The id
// must be unique within this source (VEL_EINVAL otherwise, job destroyed).
int bus_source_add(bus_source *s, bus_msg **job);
// One round: take acks, re-issue expired jobs, send what the window allows,
// wait at most timeout_ms for something to do. 1 when finished (all acked
// and eos published for eos_linger_ms), 0 if not yet, or an error.
int bus_source_step(bus_source *s, int timeout_ms);
// Steps until finished (0) or timeout_ms passes (BUS_ETIMEOUT; -1 = no limit).
int bus_source_run(bus_source *s, int timeout_ms);
// Gives up on the run: publishes {kind: "abort", src} on ctl for linger_ms
// (repeated), so workers and the sink stop with BUS_EABORT instead of
// waiting for an eos that will never come. Call before bus_source_close.
int bus_source_abort(bus_source *s, int linger_ms);
// The endpoint bound for jobs (0), acks (1) or ctl (2), resolved (tcp :*).
int bus_source_endpoint(bus_source *s, int which, char *buf, size_t cap);
void bus_source_get_stats(const bus_source *s, bus_source_stats *out);
void bus_source_close(bus_source **s);

// ---- a stage's input in one call (workers and the sink) ---------------------
// Data on a PULL socket plus the sources' eos broadcast on a SUB socket
// (an eos arriving on the data socket counts as well, for plain fan-in
// streams without a job source).
typedef struct bus_inbox bus_inbox;
// With ctl_ep set, eos and abort count only when they come on ctl from a
// producer 0..nproducers-1: an eos on the data socket is dropped and
// counted (bus_inbox_spoofed), so a stray or forged eos cannot end a live
// stage. Without ctl_ep (plain fan-in) an eos on the data socket counts.
typedef struct {
    const char *data_ep;     // PULL endpoint(s), comma-separated
    int bind;                // 1: bind data_ep (a fan-in point), 0: connect
    const char *ctl_ep;      // every source's ctl endpoint, comma-separated (NULL: none)
    int nproducers;          // producers to hear eos from before the stream ends
    int credit;              // >0 (connect only): credit mode, hold at most this many jobs
                             // per source (one DEALER per data endpoint, at most 15)
    int idle_ms;             // >0: BUS_EIDLE after this long without any message
                             // (data, eos, heartbeat) while waiting; 0: wait forever
    bus_socket_opts sock;
} bus_inbox_opts;
int bus_inbox_open(bus_inbox **out, const bus_inbox_opts *o);
// 0 and the next work item (caller destroys it), BUS_EEOS once every
// producer has ended, BUS_EABORT once a producer has aborted, BUS_EIDLE
// (idle_ms passed without any message), BUS_ETIMEOUT, or a validation code
// (that message was dropped and counted; call again). In credit mode,
// calling again means the previous item is done: one credit goes back to
// its source.
int bus_inbox_next(bus_inbox *in, bus_msg **out, int timeout_ms);
// Sends *m on out (a worker's downstream socket), waiting as long as needed
// but not past the end of the stream: a downstream stage that has finished
// (the sink exits after the last eos) would otherwise block a worker still
// holding re-issued duplicates forever. 0, BUS_EEOS (m destroyed), or an
// error from bus_send. Consumes *m except on error.
int bus_inbox_send(bus_inbox *in, bus_socket *out, bus_msg **m);
bus_socket *bus_inbox_data(bus_inbox *in);   // borrowed: stats, bus_last_endpoint
uint64_t bus_inbox_spoofed(const bus_inbox *in);   // eos/abort dropped for their channel or producer
void bus_inbox_close(bus_inbox **in);

// ---- the final sink: inbox + duplicate filter + acks -------------------------
typedef struct bus_sink bus_sink;
typedef struct {
    bus_inbox_opts in;
    const char *acks_ep;     // every source's ack endpoint, the i-th for source i
} bus_sink_opts;
int bus_sink_open(bus_sink **out, const bus_sink_opts *o);
// Like bus_inbox_next, but returns each (src, id) only once; every copy,
// duplicates included, is acked to its source before this returns (except
// to a source that has already ended: it has every ack it needs, and may
// have exited, so an ack would only wait for a timeout).
// With a ctl endpoint, only issued items are returned (bus_issued): an item
// of an unknown source or an id outside its source's table is dropped, not
// acked, counted (bus_sink_unissued) and BUS_EUNISSUED returned (call
// again). An item whose source's table has not arrived yet waits for it (up
// to BUS_ISSUED_WAIT_MS, reading ctl; only the first time for each source);
// if it still has not come, the item is dropped without an ack (the source
// re-issues it; bus_sink_unconfirmed).
int bus_sink_next(bus_sink *s, bus_msg **out, int timeout_ms);
#define BUS_ISSUED_WAIT_MS (3 * BUS_ALIVE_EVERY_MS)
uint64_t bus_sink_duplicates(const bus_sink *s);
uint64_t bus_sink_unissued(const bus_sink *s);
uint64_t bus_sink_unconfirmed(const bus_sink *s);
bus_inbox *bus_sink_inbox(bus_sink *s);      // borrowed
void bus_sink_close(bus_sink **s);

#endif
