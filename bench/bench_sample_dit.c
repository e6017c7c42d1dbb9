// bench_sample_dit.c: throughput (images/s) of `sample --model dit` with 1
// and 2 single-threaded sample workers (and 1 worker with 2 threads), the
// whole bus path: bin/sample as job source and workers, this process as the
// final sink (bus_sink). A random-weight DiT is written to a temp folder:
// default depth 4, hidden 128, 4 heads, patch 1, 4 x 8 x 8 latents (the f4c4
// tokenizer's Fashion-MNIST shape), 10 classes; guided sampling (w 1.5, one
// doubled forward per step), Euler.
// Usage: bench_sample_dit [--n N] [--steps S] [--depth D] [--hidden H] [--heads K]
//                         [--job-size J] [--batch B]
// Needs bin/sample (make). The time runs from starting the processes to the
// sink's end of stream, so model loading is included (a few ms here).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus/bus.h"
#include "core/base.h"
#include "models/lightningdit.h"
#include "nn/safetensors.h"

static int write_ckpt(const char *path, const ldit_config *c) {
    ldit *m;
    int rc = ldit_create(&m, c, 1);
    if (rc) { fprintf(stderr, "ldit_create: %s\n", vel_strerror(rc)); return rc; }
    // random weights everywhere (not adaLN-Zero): every layer does real work
    uint64_t s = 12345;
    for (int64_t i = 0; i < m->pt.total; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        m->pt.values[i] = 0.05f * ((float)(s >> 40) / (float)(1 << 24) - 0.5f);
    }
    char v[8][16];
    int x[8] = {c->depth, c->hidden, c->heads, c->patch, c->in_channels, c->input_size, c->num_classes, c->qk_norm};
    for (int i = 0; i < 8; i++) snprintf(v[i], sizeof v[i], "%d", x[i]);
    st_kv kv[] = {{"dit.depth", v[0]}, {"dit.hidden", v[1]}, {"dit.heads", v[2]}, {"dit.patch", v[3]},
                  {"dit.in_channels", v[4]}, {"dit.input_size", v[5]}, {"dit.num_classes", v[6]},
                  {"dit.qk_norm", v[7]}};
    rc = st_save_params(path, &m->pt, DT_F32, kv, 8);
    if (rc) fprintf(stderr, "%s\n", vel_error_detail());
    ldit_destroy(&m);
    return rc;
}

static pid_t spawn(const char *cmd) {
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

// One run: source + workers (threads OpenMP threads each) + this sink.
// Returns images/s, or -1 on failure.
static double run(const char *dir, int tag, int n, int job, int steps, int batch, int workers, int threads) {
    char jobs[600], acks[600], ctl[600], lat[600], cmd[4096];
    snprintf(jobs, sizeof jobs, "ipc://%s/j%d", dir, tag);
    snprintf(acks, sizeof acks, "ipc://%s/a%d", dir, tag);
    snprintf(ctl, sizeof ctl, "ipc://%s/c%d", dir, tag);
    snprintf(lat, sizeof lat, "ipc://%s/l%d", dir, tag);
    double t0 = vel_now();
    pid_t pids[9];
    int np = 0;
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 exec bin/sample --model dit --role source --n %d --job-size %d "
             "--deadline-ms 600000 --jobs-bind %s --acks-bind %s --ctl-bind %s 2>%s/source%d.log", n, job, jobs,
             acks, ctl, dir, tag);
    pids[np++] = spawn(cmd);
    for (int w = 0; w < workers; w++) {
        snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=%d exec bin/sample --model dit --ckpt %s/dit.safetensors "
                 "--steps %d --cfg 1.5 --batch %d --jobs %s --ctl %s --out %s 2>%s/worker%d-%d.log", threads, dir,
                 steps, batch, jobs, ctl, lat, dir, tag, w);
        pids[np++] = spawn(cmd);
    }
    bus_sink_opts so = {.in = {.data_ep = lat, .bind = 1, .ctl_ep = ctl, .nproducers = 1}, .acks_ep = acks};
    bus_sink *s;
    if (bus_sink_open(&s, &so)) return -1;
    int64_t got = 0;
    for (;;) {
        bus_msg *m = NULL;
        int e = bus_sink_next(s, &m, 1000);
        if (e == BUS_EEOS) break;
        if (e == BUS_ETIMEOUT) continue;
        if (e) { fprintf(stderr, "sink: %s\n", vel_strerror(e)); break; }
        tensor t;
        if (!bus_msg_find(m, "z", &t)) got += t.shape[0];
        bus_msg_destroy(&m);
    }
    double dt = vel_now() - t0;
    bus_sink_close(&s);
    int ok = got == n;
    for (int i = 0; i < np; i++) {
        int st;
        waitpid(pids[i], &st, 0);
        ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    if (!ok) { fprintf(stderr, "run %d failed (%lld of %d images; logs in %s)\n", tag, (long long)got, n, dir); return -1; }
    return n / dt;
}

int main(int argc, char **argv) {
    int n = 128, steps = 10, job = 8, batch = 8;
    ldit_config c = {.depth = 4, .hidden = 128, .heads = 4, .patch = 1, .in_channels = 4, .input_size = 8,
                     .num_classes = 10};
    for (int i = 1; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--n")) n = v;
        else if (!strcmp(argv[i], "--steps")) steps = v;
        else if (!strcmp(argv[i], "--depth")) c.depth = v;
        else if (!strcmp(argv[i], "--hidden")) c.hidden = v;
        else if (!strcmp(argv[i], "--heads")) c.heads = v;
        else if (!strcmp(argv[i], "--job-size")) job = v;
        else if (!strcmp(argv[i], "--batch")) batch = v;
        else { fprintf(stderr, "usage: bench_sample_dit [--n N] [--steps S] [--depth D] [--hidden H] [--heads K] "
                       "[--job-size J] [--batch B]\n"); return 2; }
    }
    if (n < 1 || steps < 1 || job < 1 || batch < 1 || ldit_config_validate(&c)) {
        fprintf(stderr, "bench_sample_dit: bad sizes\n");
        return 2;
    }
    if (access("bin/sample", X_OK)) { fprintf(stderr, "bench_sample_dit: bin/sample missing (make)\n"); return 1; }
    char dir[] = "/tmp/vel-bench-sample-XXXXXX", path[600];
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/dit.safetensors", dir);
    if (write_ckpt(path, &c)) return 1;
    printf("sample --model dit: %d images, %d Euler steps, w 1.5 (doubled batch), batch %d, jobs of %d; "
           "DiT depth %d hidden %d heads %d, 4x8x8 latents\n", n, steps, batch, job, c.depth, c.hidden, c.heads);
    double one = run(dir, 0, n, job, steps, batch, 1, 1);
    double two = run(dir, 1, n, job, steps, batch, 2, 1);
    double one2 = run(dir, 2, n, job, steps, batch, 1, 2);
    if (one < 0 || two < 0 || one2 < 0) return 1;
    printf("| workers x threads | images/s | vs 1 x 1 |\n|---|---|---|\n");
    printf("| 1 x 1 | %.2f | 1.00 |\n| 2 x 1 | %.2f | %.2f |\n| 1 x 2 | %.2f | %.2f |\n", one, two, two / one, one2,
           one2 / one);
    char rm[700];
    snprintf(rm, sizeof rm, "rm -rf %s", dir);
    if (system(rm) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return 0;
}
