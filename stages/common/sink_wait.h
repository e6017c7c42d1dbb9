// sink_wait.h: the receive loop a final sink (eval --model images, the
// encode --model vae-folder writer) runs around bus_sink_next: waits in
// 1-second slices, gives up after --timeout-s without a usable message, and
// reports rejected messages. It also says why a run cannot finish when
// items keep arriving from a job source whose `issued` table never does
// (docs/PROTOCOL.md, `issued`): the bus drops such items unacked and the
// source re-issues them, which without this looked like a silent hang.
// Not here: what the sink does with an item (the caller's).
#ifndef STAGES_COMMON_SINK_WAIT_H
#define STAGES_COMMON_SINK_WAIT_H

#include <stdint.h>

#include "bus/bus.h"

typedef struct {
    const char *stage;        // message prefix, e.g. "eval"
    int timeout_s;            // give up after this long without a usable message
    double last;              // when the last usable message (or the start) was
    uint64_t unconfirmed;     // items dropped for a missing table, as of `last`
    int told;                 // the missing-table note has been printed
} sink_wait;

enum { SINK_ITEM = 0, SINK_END = 1, SINK_REJECTED = 2, SINK_GIVE_UP = 3, SINK_ABORTED = 4 };

void sink_wait_init(sink_wait *w, const char *stage, int timeout_s);
// The next message of s: SINK_ITEM (*m is the caller's), SINK_END (every
// source sent eos), SINK_REJECTED (malformed or never issued: a line on
// stderr, the caller counts it) or SINK_GIVE_UP (nothing usable for
// timeout_s: a line on stderr saying whether items of a source without an
// `issued` table were what arrived) or SINK_ABORTED (a job source gave up
// on the run: a line on stderr; the run has no result).
int sink_wait_next(sink_wait *w, bus_sink *s, bus_msg **m);

#endif
