// worker.c: the worker loop of worker.h on top of bus_inbox (bus/stage.c).
#include "bus/worker.h"

#include <stdio.h>
#include <string.h>

#include "core/base.h"

int bus_worker_run(const bus_worker_opts *o, bus_worker_fn *fn, void *ctx, bus_worker_stats *stats) {
    bus_worker_stats st;
    memset(&st, 0, sizeof st);
    if (stats) *stats = st;
    if (!o || !fn || !o->out_ep) return VEL_EINVAL;
    const char *name = o->name ? o->name : "worker";
    bus_inbox *in = NULL;
    bus_socket *out = NULL;
    int rc = bus_inbox_open(&in, &o->in);
    if (!rc) rc = bus_socket_open(&out, BUS_PUSH, &o->out_sock);
    if (!rc) rc = bus_connect(out, o->out_ep);
    if (rc) {
        fprintf(stderr, "%s: cannot set up sockets: %s\n", name, vel_errmsg(rc));
        goto done;
    }
    for (;;) {
        bus_msg *m = NULL;
        int e = bus_inbox_next(in, &m, 1000);
        if (e == BUS_EEOS) break;
        if (e == BUS_ETIMEOUT) continue;
        if (e == BUS_EABORT || e == BUS_EIDLE) {
            // The run is over without an eos: the source gave up, or nobody
            // has sent anything for idle_ms (the sources are gone).
            fprintf(stderr, "%s: stopping: %s\n", name, vel_errmsg(e));
            rc = e;
            break;
        }
        if (e) {
            st.rejected++;
            fprintf(stderr, "%s: rejected a message: %s\n", name, vel_strerror(e));
            continue;
        }
        st.items++;
        bus_msg *rep = NULL;
        e = fn(ctx, m, &rep);
        bus_msg_destroy(&m);
        if (e < 0) {
            bus_msg_destroy(&rep);
            rc = e;
            break;
        }
        if (!rep) {
            st.dropped++;
            continue;
        }
        e = bus_inbox_send(in, out, &rep);
        if (e == BUS_EEOS) break;   // the run ended while we waited: rep was destroyed
        if (e == BUS_EABORT) { rc = e; break; }
        if (e) {
            st.send_errors++;
            fprintf(stderr, "%s: cannot send a reply: %s\n", name, vel_strerror(e));
            bus_msg_destroy(&rep);
            continue;
        }
        st.answered++;
    }
done:
    bus_socket_close(&out);
    bus_inbox_close(&in);
    if (stats) *stats = st;
    return rc;
}
