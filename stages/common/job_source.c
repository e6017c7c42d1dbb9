// job_source.c: see job_source.h.
#include "stages/common/job_source.h"

#include <stdio.h>
#include <unistd.h>

#include "core/base.h"

int sample_run_source(const sample_source_opts *so, sample_job_fn extra, void *ctx) {
    bus_source_opts o = {.src = (uint32_t)so->src, .jobs_ep = so->jobs_ep, .acks_ep = so->acks_ep,
                         .ctl_ep = so->ctl_ep, .deadline_ms = so->deadline_ms, .credit = 1,
                         .sock = {.allow_remote = so->bind_any}};
    const char *nm = so->name ? so->name : "sample";
    bus_source *s;
    int rc = bus_source_open(&s, &o);
    if (rc) { fprintf(stderr, "%s: cannot open job source: %s\n", nm, vel_errmsg(rc)); return vel_exit_code(rc); }
    uint64_t id = 0;
    for (int64_t start = 0; start < so->n; start += so->job_size, id++) {
        bus_msg *m = NULL;
        int cnt = (int)(so->n - start < so->job_size ? so->n - start : so->job_size);
        if ((rc = bus_msg_new(&m, "job", (uint32_t)so->src, id)) ||
            (rc = bus_msg_set_int(m, "count", cnt)) ||
            (rc = bus_msg_set_uint(m, "seed", so->seed * 1000003u + id)) ||
            (extra && (rc = extra(ctx, m, id, start, cnt))) ||
            (rc = bus_source_add(s, &m))) {
            fprintf(stderr, "%s: cannot queue job %llu: %s\n", nm, (unsigned long long)id, vel_strerror(rc));
            bus_msg_destroy(&m);
            bus_source_close(&s);
            return 1;
        }
    }
    // Step until done; without acks for stall_s seconds the sink (or every
    // worker) is gone, and waiting on would hang the pipeline silently.
    double t0 = vel_now(), last_progress = t0;
    uint64_t acked = 0;
    bus_source_stats st;
    while ((rc = bus_source_step(s, 200)) == 0) {
        bus_source_get_stats(s, &st);
        if (st.acked != acked) { acked = st.acked; last_progress = vel_now(); }
        if (so->stall_s > 0 && vel_now() - last_progress > so->stall_s) {
            fprintf(stderr, "%s: no job acknowledged for %d s (%llu of %llu acked): is the sink "
                    "running and connected to --acks-bind?\n", nm, so->stall_s, (unsigned long long)st.acked,
                    (unsigned long long)st.jobs);
            rc = BUS_ETIMEOUT;
            bus_source_abort(s, 500);   // workers and the sink stop now instead of at their idle timeout
            break;
        }
    }
    if (rc == 1) rc = 0;
    bus_source_get_stats(s, &st);
    fprintf(stderr, "[%s source %d] %llu jobs, %llu issued, %llu re-issued, %llu acked (%.1f s)\n", nm, so->src,
            (unsigned long long)st.jobs, (unsigned long long)st.issued, (unsigned long long)st.reissued,
            (unsigned long long)st.acked, vel_now() - t0);
    bus_source_close(&s);
    if (rc) { fprintf(stderr, "%s: job source failed: %s\n", nm, vel_strerror(rc)); return 1; }
    return 0;
}

void sample_die_after(int *taken, int die_after, uint64_t id) {
    if (++*taken != die_after) return;
    fprintf(stderr, "[sample worker] --die-after %d: exiting with job %llu unanswered\n", die_after,
            (unsigned long long)id);
    _exit(3);
}
