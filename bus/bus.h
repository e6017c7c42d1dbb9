// bus.h: tensor messages over ZeroMQ (docs/PROTOCOL.md): a message is a
// msgpack header (bus/header.h) plus one raw little-endian frame per tensor.
// This header: messages (build, read), sockets (open, bind/connect, send,
// receive with validation and per-socket counters). Streams (end-of-stream,
// duplicate filter, acknowledgements, the re-issuing job source) are in
// bus/stream.h, included below, so a stage includes only "bus/bus.h".
// Not here: what the tensors mean (stages), LMDB (store/).
//
// Ownership
// - bus_msg_add_tensor copies the bytes now; the caller keeps its buffer.
// - bus_msg_add_tensor_zc takes ownership of t->data: fn(data, hint) is called
//   exactly once, when ZeroMQ has finished sending (possibly on ZeroMQ's I/O
//   thread, so fn must be thread-safe), or by bus_msg_destroy if never sent.
// - bus_send consumes the message on success and on hard errors (*m = NULL);
//   on BUS_ETIMEOUT nothing was sent and *m is left for a retry.
// - bus_recv returns a message that owns the received frames. Tensor views
//   from bus_msg_tensor/bus_msg_find point into them (read in place, no copy)
//   and are valid until bus_msg_destroy. A payload whose address is not a
//   multiple of its dtype size (ZeroMQ may hand out frames at any offset of
//   its receive buffer) is copied once into an aligned buffer the message
//   owns; bus_stats.realigned counts those copies.
//
// Validation: bus_recv checks every message (header size cap, version,
// dtype, rank <= 8, shape x dtype size == frame length, frame cap, total size
// cap) before anything reads the payload. A bad message is dropped, counted
// in the socket's stats, and its code returned; the socket stays usable, so a
// server loop just logs and continues. A frame over the frame cap
// (ZMQ_MAXMSGSIZE) never reaches bus_recv: ZeroMQ refuses it as it arrives
// and drops that connection (bus/header.h says why the total cannot be
// enforced that way).
//
// Intended wiring of the toy pipeline (job source -> N sample workers ->
// M decode workers -> 1 eval sink); "bind" ends are fixed, "connect" ends
// are the ones that come and go:
//
//   source s (bus_source):  PUSH bind jobs[s]   PULL bind acks[s]   PUB bind ctl[s]
//   sample worker:          bus_inbox: PULL connect jobs[*], SUB connect ctl[*]
//                           PUSH connect lat[*]     (every decoder's input)
//   decode worker:          bus_inbox: PULL bind lat[m], SUB connect ctl[*]
//                           PUSH connect img
//   eval sink (bus_sink):   PULL bind img, SUB connect ctl[*],
//                           PUSH connect acks[*] (one socket per source)
//
// A worker is then:   bus_inbox_open(&in, &(bus_inbox_opts){jobs, 0, ctl, P});
//                     while ((rc = bus_inbox_next(in, &m, -1)) != BUS_EEOS) {
//                         if (rc) continue;                  // bad message: logged, counted
//                         bus_msg_new_reply(&r, "latents", m); ...add tensors...
//                         bus_msg_destroy(&m);
//                         if (bus_inbox_send(in, out, &r) == BUS_EEOS) break; }
//                     (bus_inbox_send, not bus_send: once the run has ended the
//                     next stage may be gone, and a plain send would wait forever)
// and the sink the same with bus_sink_open / bus_sink_next (first copies only).
// bus/worker.h packages that loop (bus_worker_run: a callback per item); the
// stage workers use it. The job source gives up with an error when nothing is
// acknowledged for a while (sample --stall-s), so a dead sink never hangs a run.
//
// - Work goes from a job source to its workers by credit (bus/stream.h): a
//   worker asks for k jobs and one more after each job, so N workers share
//   even a short run (plain PUSH/PULL, still available with credit 0, gave
//   the whole window to the first worker that connected). Decoders and the
//   sink take fan-in over PUSH/PULL. A worker answers a message with
//   bus_msg_new_reply, which keeps the item's (src, id) and extra fields
//   (seed, label), so the id travels to the sink unchanged.
// - Acks flow from the final sink straight back to the job source that issued
//   the item (acks[src]); intermediate workers never ack. The source re-issues
//   every job not acked within its deadline, so an item lost anywhere (a
//   worker killed mid-stream with items in its queues) is simply done again.
//   Intermediate stages forward re-issued copies like any other item (the
//   first copy may be the lost one); only the final sink drops duplicates
//   (bus_dedupe), and it acks duplicates too (the first ack may be lost).
//   The sink acks on receipt: it is the end of the line, and if it dies the
//   run is restarted (its results live in its memory).
// - Re-issue cost: a deadline shorter than a job's queueing plus compute time
//   makes the source re-send jobs that are merely slow (correct, but wasted
//   work); max_inflight bounds the queueing, so choose deadline_ms above
//   max_inflight / workers x time per job. The deadline of a job doubles with
//   each of its re-issues (up to 32x), which bounds the waste when it is not.
// - A worker started after its sources ended never hears their eos; stage
//   loops should use a finite timeout and give up after a long idle spell.
// - End of stream: when every one of its jobs is acked, source s publishes
//   `eos` (src = s) on ctl[s], repeated for eos_linger_ms so a late subscriber
//   still hears it. Workers and the sink count eos per producer (bus_eos) and
//   stop once every source they were told of (--sources P) has ended. Why
//   not eos down the PUSH chain: PUSH delivers each message to one peer, and
//   a killed worker never sends its eos; the source's broadcast has neither
//   problem, and it is sent only when the sink already has every item.
// - Determinism: each job carries its own seed (an extra field), so the
//   result of item id does not depend on which worker ran it or how often;
//   the sink stores results by id.
#ifndef BUS_BUS_H
#define BUS_BUS_H

#include <stddef.h>
#include <stdint.h>

#include "bus/errors.h"
#include "bus/header.h"
#include "core/tensor.h"

typedef struct bus_msg bus_msg;
typedef struct bus_socket bus_socket;
typedef void bus_free_fn(void *data, void *hint);

// ---- messages -------------------------------------------------------------

// New outgoing message of `kind` (1..31 bytes) for item (src, id).
int bus_msg_new(bus_msg **out, const char *kind, uint32_t src, uint64_t id);
// New outgoing message answering `in`: same src and id, a copy of in's extra
// fields (seeds, labels...), no tensors.
int bus_msg_new_reply(bus_msg **out, const char *kind, const bus_msg *in);
// Frees the message, its frames, and (for unsent zero-copy tensors) calls
// their free functions. NULL-safe; sets *m = NULL.
void bus_msg_destroy(bus_msg **m);

// Adds a contiguous tensor under a unique name (1..63 bytes).
int bus_msg_add_tensor(bus_msg *m, const char *name, const tensor *t);
int bus_msg_add_tensor_zc(bus_msg *m, const char *name, const tensor *t, bus_free_fn *fn,
                          void *hint);

// Extra header fields (keys 1..63 bytes, not v/kind/id/src/tensors, unique).
int bus_msg_set_int(bus_msg *m, const char *key, int64_t v);
int bus_msg_set_uint(bus_msg *m, const char *key, uint64_t v);
int bus_msg_set_float(bus_msg *m, const char *key, double v);
int bus_msg_set_bool(bus_msg *m, const char *key, int v);
int bus_msg_set_str(bus_msg *m, const char *key, const char *v);
int bus_msg_set_ints(bus_msg *m, const char *key, const int64_t *v, size_t n);

const char *bus_msg_kind(const bus_msg *m);   // borrowed, valid while m lives
uint64_t bus_msg_id(const bus_msg *m);
uint32_t bus_msg_src(const bus_msg *m);
int bus_msg_is(const bus_msg *m, const char *kind);
int bus_msg_ntensors(const bus_msg *m);
// i-th tensor view and its name (both borrowed from m); VEL_ERANGE if no such i.
int bus_msg_tensor(const bus_msg *m, int i, tensor *t, const char **name);
int bus_msg_find(const bus_msg *m, const char *name, tensor *t); // or VEL_ENOTFOUND

// Readers of extra fields (sent or received messages alike): 0, VEL_ENOTFOUND
// or BUS_EFIELD (other type / does not fit); see bus/header.h.
int bus_msg_get_int(const bus_msg *m, const char *key, int64_t *v);
int bus_msg_get_uint(const bus_msg *m, const char *key, uint64_t *v);
int bus_msg_get_float(const bus_msg *m, const char *key, double *v);
int bus_msg_get_bool(const bus_msg *m, const char *key, int *v);
int bus_msg_get_str(const bus_msg *m, const char *key, char *buf, size_t cap);
int bus_msg_get_ints(const bus_msg *m, const char *key, int64_t *out, size_t cap, size_t *n);

// Encodes the header (frame 0) into a malloc'ed buffer the caller frees.
int bus_msg_encode_header(const bus_msg *m, uint8_t **buf, size_t *len);

// ---- sockets --------------------------------------------------------------

// ROUTER/DEALER carry the job source's credit protocol (bus/stream.h): a
// ROUTER knows which peer sent what and sends to one peer by identity.
typedef enum { BUS_PUSH, BUS_PULL, BUS_PUB, BUS_SUB, BUS_ROUTER, BUS_DEALER } bus_socket_type;
#define BUS_PEER_MAX 256   // bytes of a ROUTER peer identity

typedef struct {
    bus_limits limits;  // zeros = defaults (64 KiB header, 1 GiB total, 256 MiB per frame)
    int hwm;            // send and receive high-water mark in messages; 0 = ZeroMQ's 1000
    int linger_ms;      // on close, how long unsent messages may wait; 0 = default 1000, <0 = drop
    int allow_remote;   // bind tcp:// on addresses other than 127.0.0.1 (explicit choice)
} bus_socket_opts;

typedef struct {
    uint64_t sent, received, rejected;    // messages
    uint64_t bytes_sent, bytes_received;  // all frames
    uint64_t realigned;                   // payloads copied for alignment
    uint64_t by_code[BUS_NCODES];         // rejections per code, index -(code) - 100
} bus_stats;

// Sockets share one ZeroMQ context per process, created by the first open
// and terminated when the last socket closes. A forked child must open its
// own sockets (never use the parent's); the first open in a child makes a
// fresh context. opts NULL = defaults.
int bus_socket_open(bus_socket **out, bus_socket_type type, const bus_socket_opts *opts);
void bus_socket_close(bus_socket **s);    // NULL-safe; sets *s = NULL
// endpoints: one or more, comma-separated: ipc://PATH, inproc://NAME,
// tcp://127.0.0.1:PORT (PORT may be * on bind; see bus_last_endpoint).
int bus_bind(bus_socket *s, const char *endpoints);
int bus_connect(bus_socket *s, const char *endpoints);
// The endpoint actually bound last (resolves tcp://127.0.0.1:*).
int bus_last_endpoint(bus_socket *s, char *buf, size_t cap);

// timeout_ms: -1 waits forever, 0 polls once. PUSH sockets are
// ZMQ_IMMEDIATE: work goes only to peers with a live connection (a killed
// worker's endpoint gets nothing), so with no live peer a send waits.
int bus_send(bus_socket *s, bus_msg **m, int timeout_ms);
// Sends a copy; m stays with the caller (the job source re-sends its jobs).
int bus_send_copy(bus_socket *s, const bus_msg *m, int timeout_ms);
// ROUTER only: sends a copy of m to one peer, never waiting. 0,
// VEL_ENOTFOUND (no such peer, or it has gone), BUS_ETIMEOUT (its queue is
// full) or an error.
int bus_send_to(bus_socket *s, const void *peer, size_t peer_len, const bus_msg *m);
// ROUTER only: the identity of the sender of the last message received.
int bus_last_peer(const bus_socket *s, uint8_t *peer, size_t *peer_len);
// 0 and *out, BUS_ETIMEOUT, or a validation code (message dropped, counted).
int bus_recv(bus_socket *s, bus_msg **out, int timeout_ms);
// Waits on several sockets; receives from the first ready one (lowest index
// first) and says which in *which (also set when validation fails).
int bus_recv_any(bus_socket **socks, int n, int timeout_ms, int *which, bus_msg **out);
void bus_socket_stats(const bus_socket *s, bus_stats *out);

#include "bus/stream.h"

#endif
