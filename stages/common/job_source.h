// job_source.h: the job source of `sample --role source` (every --model)
// and `encode --model vae-folder --role source`: splits n samples into jobs of job_size, each with its own seed
// (base * 1000003 + job id, docs/PROTOCOL.md "job"), issues them through
// bus_source (bus/stream.h), re-issues any not acked by the sink within the
// deadline, and publishes eos when all are acked. A model that needs more in
// a job (the DiT's class labels) adds it in a callback.
#ifndef STAGES_COMMON_JOB_SOURCE_H
#define STAGES_COMMON_JOB_SOURCE_H

#include <stdint.h>

#include "bus/bus.h"

typedef struct {
    int64_t n;              // samples in total
    int job_size;           // samples per job (the last job may be smaller)
    uint64_t seed;          // base seed
    int src;                // this source's producer id
    int deadline_ms;        // re-issue a job not acked this long
    int stall_s;            // give up when nothing is acked this long (0: never)
    int bind_any;           // allow binding tcp:// on any address
    const char *jobs_ep, *acks_ep, *ctl_ep;
    const char *name;       // stage name in messages (NULL: "sample")
} sample_source_opts;

// Called for job `id` holding samples first .. first + count - 1 (in the
// global order) after "count" and "seed" are set; adds what the model needs.
// Returns 0 or a negative code (the source stops).
typedef int (*sample_job_fn)(void *ctx, bus_msg *job, uint64_t id, int64_t first, int count);

// Runs the source to the end. extra may be NULL. Returns the process exit
// code: 0 when every job was acked, 1 on failure (said on stderr).
int sample_run_source(const sample_source_opts *o, sample_job_fn extra, void *ctx);

// --die-after K (tests): counts the jobs a worker takes in *taken and, at the
// K-th (K > 0), exits the process at once with code 3 leaving job `id`
// unanswered, as a killed worker would.
void sample_die_after(int *taken, int die_after, uint64_t id);

#endif
