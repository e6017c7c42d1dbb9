// internal.h: the layout of bus_msg, shared by bus/msg.c (build, read,
// encode) and bus/socket.c (send, receive). Not part of the API: stages use
// bus/bus.h only.
#ifndef BUS_INTERNAL_H
#define BUS_INTERNAL_H

#include <zmq.h>

#include "bus/bus.h"

struct bus_msg {
    bus_header h;          // kind, id, src, tensor descriptions, extra-field refs
    int received;          // 1: built by bus_recv from frames; 0: built by the caller
    // Received messages: frames[0] is the header, frames[1..] the payloads.
    // The array lives inside the (heap, never moved) message because ZeroMQ
    // keeps small frames inline in zmq_msg_t.
    int nframes;
    zmq_msg_t frames[BUS_MAX_TENSORS + 1];
    void *aligned[BUS_MAX_TENSORS];   // owned copies of misaligned payloads
    // Both: where tensor i's bytes are (frame data, aligned copy, or the
    // caller's / our copied buffer).
    void *data[BUS_MAX_TENSORS];
    // Built messages: owner of data[i] until sent (NULL = nobody to call).
    bus_free_fn *fn[BUS_MAX_TENSORS];
    void *hint[BUS_MAX_TENSORS];
    // Built messages: extra fields as packed msgpack key/value pairs; the
    // field refs in h point into it.
    uint8_t *xbuf;
    size_t xlen, xcap;
};

// Base buffer the field refs of m->h point into.
const uint8_t *bus_msg_base(const bus_msg *m);
// The dedupe set doubles as the job source's id -> job index map: put is
// bus_dedupe_add with a value; get returns 1 and *val if (src, id) is known.
int bus_dedupe_put(bus_dedupe *d, uint32_t src, uint64_t id, uint64_t val);
int bus_dedupe_get(const bus_dedupe *d, uint32_t src, uint64_t id, uint64_t *val);
// The ZeroMQ socket under s (for zmq_poll over several sockets).
void *bus_socket_raw(bus_socket *s);

// Options for a socket that receives only control messages (acks, credits,
// eos, heartbeats, job tables: a header, no tensors): o's, with every frame
// and the whole message capped at the header cap, so such a socket never
// buffers a large frame (header.h: ZMQ_MAXMSGSIZE applies per frame).
static inline bus_socket_opts bus_control_opts(const bus_socket_opts *o) {
    bus_socket_opts c = o ? *o : (bus_socket_opts){0};
    c.limits.max_total = c.limits.max_frame = bus_limits_resolve(&c.limits).max_header;
    return c;
}

#endif
