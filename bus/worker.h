// worker.h: the receive loop of a pipeline worker (a sampler, a decoder):
// take work items from a bus_inbox (PULL data + the sources' eos on SUB),
// hand each to a callback, send the callback's reply downstream with
// bus_inbox_send, stop once every producer has ended. Wiring and protocol:
// bus/bus.h. Not here: what an item means (the stage's callback).
//
// A worker no longer waits forever: set in.idle_ms (sources publish a
// heartbeat every BUS_ALIVE_EVERY_MS, so a live but busy source never looks
// idle) and it stops with BUS_EIDLE once they are gone.
//
// Why one loop: each stage used to hand-roll it, replying with
// bus_send(out, &rep, -1), which blocks forever once the downstream stage has
// exited while this worker still holds re-issued duplicates.
#ifndef BUS_WORKER_H
#define BUS_WORKER_H

#include <stdint.h>

#include "bus/bus.h"

typedef struct {
    const char *name;        // log prefix, e.g. "decode" (NULL: "worker")
    bus_inbox_opts in;       // data (PULL, bind or connect), ctl (SUB), producers
    const char *out_ep;      // downstream PUSH endpoint(s), connect
    bus_socket_opts out_sock;
} bus_worker_opts;

// One work item. `item` is borrowed (the loop destroys it afterwards). On
// return 0, *reply is the message to send downstream (the loop sends and
// consumes it; build it with bus_msg_new_reply so (src, id) and the extra
// fields travel on), or NULL to drop the item (the callback says why on
// stderr). A negative return is fatal: the loop stops and returns that code.
typedef int bus_worker_fn(void *ctx, const bus_msg *item, bus_msg **reply);

typedef struct {
    uint64_t items;          // work items handed to the callback
    uint64_t answered;       // replies sent downstream
    uint64_t dropped;        // items the callback answered with no reply
    uint64_t send_errors;    // replies that could not be sent (logged, lost)
    uint64_t rejected;       // malformed messages dropped by the inbox (logged)
} bus_worker_stats;

// Opens the inbox and the downstream socket, runs the loop, closes both.
// 0 once every producer has sent eos (also when the end came while a reply
// was waiting for a downstream that had gone: that reply is dropped),
// BUS_EABORT (a source gave up) or BUS_EIDLE (o->in.idle_ms without any
// message: the sources are gone), the callback's negative code, or a socket
// set-up error (logged). stats may be
// NULL; it is filled in every case.
int bus_worker_run(const bus_worker_opts *o, bus_worker_fn *fn, void *ctx, bus_worker_stats *stats);

#endif
