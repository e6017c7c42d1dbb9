// sink_wait.c: see sink_wait.h.
#include "stages/common/sink_wait.h"

#include <stdio.h>

#include "core/base.h"

void sink_wait_init(sink_wait *w, const char *stage, int timeout_s) {
    *w = (sink_wait){.stage = stage, .timeout_s = timeout_s, .last = vel_now()};
}

int sink_wait_next(sink_wait *w, bus_sink *s, bus_msg **m) {
    for (;;) {
        int e = bus_sink_next(s, m, 1000);
        uint64_t u = bus_sink_unconfirmed(s);
        if (u > 0 && !w->told) {
            // said at once, not only at the timeout (600 s by default)
            fprintf(stderr, "%s: dropping items whose job source's `issued` table has not arrived; a job source "
                            "must publish it on ctl before its first job and with every `alive` "
                            "(docs/PROTOCOL.md, `issued`)\n", w->stage);
            w->told = 1;
        }
        if (e == BUS_EEOS) return SINK_END;
        if (e == BUS_EABORT) {   // sticky in the bus: not a message to skip, the end of the run
            fprintf(stderr, "%s: a job source aborted the run\n", w->stage);
            return SINK_ABORTED;
        }
        if (e == BUS_ETIMEOUT) {
            if (vel_now() - w->last <= w->timeout_s) continue;
            if (u > w->unconfirmed)
                fprintf(stderr, "%s: for %d s only items of a job source without an `issued` table arrived "
                                "(%llu dropped); giving up\n", w->stage, w->timeout_s,
                        (unsigned long long)(u - w->unconfirmed));
            else
                fprintf(stderr, "%s: nothing arrived for %d s; giving up\n", w->stage, w->timeout_s);
            return SINK_GIVE_UP;
        }
        w->last = vel_now();
        w->unconfirmed = u;
        if (e) {   // invalid on the wire: dropped (and counted) by the bus
            fprintf(stderr, "%s: rejected a message: %s\n", w->stage, vel_strerror(e));
            return SINK_REJECTED;
        }
        return SINK_ITEM;
    }
}
