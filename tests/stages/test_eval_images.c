// test_eval_images.c: `eval --model images`, the sink of the generation leg,
// run as a process and fed by a small producer in this test: a bus_source
// (the job source the sink acks to) plus an in-test "decoder" that answers
// each job with an "images" item holding Fashion-MNIST training images
// id*JOB .. id*JOB+JOB-1 and their labels, sends every other item twice, and
// slips in two malformed messages. Checks:
//   - the count equals N, duplicates are dropped, ids unique: samples.npz
//     read back by numpy holds exactly the first N training images in order
//     (arr_0 uint8 (N, 32, 32, 1)) and their labels, though the items
//     arrive in reverse id order;
//   - the malformed messages are counted (report.json "rejected") and the run
//     still succeeds;
//   - scored against reference statistics of the same N images (computed by
//     `--ref-stats --data fashion-mnist --n-ref N`), FID is ~0 and
//     precision/recall are 1, labelled "classifier features, not Inception";
//   - bad inputs exit 2 with a message.
#include <criterion/criterion.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bus/bus.h"
#include "core/base.h"
#include "data/idx.h"
#include "nn/safetensors.h"
#include "tests/classifier_fixture.h"
#include "tests/util.h"

enum { N = 120, JOB = 10, NJOBS = N / JOB };

static char *dir;

static void setup(void) {
    cr_assert(access("bin/eval", X_OK) == 0, "bin/eval missing: run make first");
    dir = test_tmpdir("eval_images");
    char p[600];
    snprintf(p, sizeof p, "%s/cls.safetensors", dir);
    test_save_random_classifier(p, 7);
    snprintf(p, sizeof p, "%s/other.safetensors", dir);
    test_save_random_classifier(p, 8);
}

static void teardown(void) {
    rm_rf(dir);
    free(dir);
}

static bus_msg *images_msg(const char *kind, uint32_t src, uint64_t id, const fmnist *ds, int64_t first,
                           int64_t n, int side) {
    bus_msg *m = NULL;
    cr_assert_eq(bus_msg_new(&m, kind, src, id), 0);
    uint8_t *u8 = calloc((size_t)(n * side * side), 1);
    int32_t lab[JOB];
    for (int64_t i = 0; i < n; i++) {
        if (side == 32) memcpy(u8 + i * 1024, ds->pix + (first + i) * 1024, 1024);
        lab[i] = ds->labels[first + i];
    }
    tensor tu = tensor_view(DT_U8, u8, 4, (int64_t[]){n, side, side, 1});
    tensor tl = tensor_view(DT_I32, lab, 1, (int64_t[]){n});
    cr_assert_eq(bus_msg_add_tensor(m, "u8", &tu), 0);
    cr_assert_eq(bus_msg_add_tensor(m, "labels", &tl), 0);
    free(u8);
    return m;
}

// The sink's endpoints in the test folder, and the job side of a run: a
// source with njobs jobs, a PULL socket taking them (the "decoder") and a
// PUSH socket answering to the sink. Name first (the sink's command line
// needs the endpoints), open after the sink has started.
typedef struct {
    char jobs[700], acks[700], ctl[700], img[700];
    bus_source *src;
    bus_socket *pull, *push;
} job_side;

static void job_side_name(job_side *g) {
    memset(g, 0, sizeof *g);
    snprintf(g->jobs, sizeof g->jobs, "ipc://%s/jobs", dir);
    snprintf(g->acks, sizeof g->acks, "ipc://%s/acks", dir);
    snprintf(g->ctl, sizeof g->ctl, "ipc://%s/ctl", dir);
    snprintf(g->img, sizeof g->img, "ipc://%s/img", dir);
}

static void job_side_open(job_side *g, int njobs, int deadline_ms) {
    cr_assert_eq(bus_source_open(&g->src, &(bus_source_opts){.src = 0, .jobs_ep = g->jobs, .acks_ep = g->acks,
                                                              .ctl_ep = g->ctl, .deadline_ms = deadline_ms}), 0);
    for (int j = 0; j < njobs; j++) {
        bus_msg *job = NULL;
        cr_assert_eq(bus_msg_new(&job, "job", 0, (uint64_t)j), 0);
        cr_assert_eq(bus_source_add(g->src, &job), 0);
    }
    cr_assert_eq(bus_socket_open(&g->pull, BUS_PULL, NULL), 0);
    cr_assert_eq(bus_connect(g->pull, g->jobs), 0);
    cr_assert_eq(bus_socket_open(&g->push, BUS_PUSH, NULL), 0);
    cr_assert_eq(bus_connect(g->push, g->img), 0);
}

static void job_side_close(job_side *g) {
    bus_socket_close(&g->pull);
    bus_socket_close(&g->push);
    bus_source_close(&g->src);
}

static cJSON *read_report(void) {
    char p[700];
    snprintf(p, sizeof p, "%s/out/report.json", dir);
    char *txt = test_read_file(p, NULL);
    cr_assert(txt, "no %s", p);
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    cr_assert(j, "report.json is not JSON");
    return j;
}

static double jnum(const cJSON *j, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(j, k);
    cr_assert(cJSON_IsNumber(v), "report.json: %s missing", k);
    return v->valuedouble;
}

Test(eval_images, sink_dedupes_rejects_writes_npz_and_scores, .init = setup, .fini = teardown, .timeout = 300) {
    char cls[600], ref[600], cmd[4096];
    snprintf(cls, sizeof cls, "%s/cls.safetensors", dir);
    snprintf(ref, sizeof ref, "%s/ref.safetensors", dir);
    cr_assert_eq(test_sh("bin/eval --model images --classifier %s --ref-stats %s --data fashion-mnist --n-ref %d "
                         "2>%s/ref.log", cls, ref, N, dir), 0);
    // the cache: a second run keeps the file
    cr_assert_eq(test_sh("bin/eval --model images --classifier %s --ref-stats %s --data fashion-mnist --n-ref %d "
                         "2>%s/ref2.log && grep -q kept %s/ref2.log", cls, ref, N, dir, dir), 0);

    job_side g;
    job_side_name(&g);
    snprintf(cmd, sizeof cmd, "exec bin/eval --model images --in %s --ctl %s --acks %s --out %s/out --classifier %s "
             "--ref-stats %s --timeout-s 60 2>%s/sink.log", g.img, g.ctl, g.acks, dir, cls, ref, dir);
    pid_t sink = test_spawn("%s", cmd);
    cr_assert(sink > 0);

    fmnist *ds = NULL;
    cr_assert_eq(fmnist_load(NULL, "train", &ds), 0, "%s", vel_error_detail());
    job_side_open(&g, NJOBS, 20000);
    bus_source *src = g.src;
    bus_socket *pull = g.pull, *push = g.push;
    // two malformed items first: another kind, and 16x16 images (the wrong
    // shape is only "wrong" against the first kept item, so the shape test
    // is the 'latents' kind plus a labels-less item)
    bus_msg *bad = images_msg("latents", 0, 1000, ds, 0, 2, 32);
    cr_assert_eq(bus_send(push, &bad, 5000), 0);
    bad = NULL;
    cr_assert_eq(bus_msg_new(&bad, "images", 0, 1001), 0);
    cr_assert_eq(bus_send(push, &bad, 5000), 0);
    // The "decoder" holds every job and answers in reverse id order, so the
    // .npz order below shows the sink sorts by id rather than by arrival.
    int done = 0, sent = 0, nid = 0;
    uint64_t ids[NJOBS];
    double t0 = vel_now();
    while (!done && vel_now() - t0 < 120) {
        int r = bus_source_step(src, 10);
        cr_assert(r >= 0, "source: %s", vel_strerror(r));
        done = r == 1;
        bus_msg *m = NULL;
        if (bus_recv(pull, &m, 10) == 0) {
            cr_assert(nid < NJOBS, "a job came twice (re-issued?)");
            ids[nid++] = bus_msg_id(m);
            bus_msg_destroy(&m);
            if (nid < NJOBS) continue;
            for (int k = NJOBS - 1; k >= 0; k--)
                for (int copy = 0; copy < 1 + (int)(ids[k] % 2 == 0); copy++) {   // even ids twice
                    bus_msg *out = images_msg("images", 0, ids[k], ds, (int64_t)ids[k] * JOB, JOB, 32);
                    cr_assert_eq(bus_send(push, &out, 5000), 0);
                    sent++;
                }
        }
    }
    cr_assert(done, "the source did not finish (every job acked) in 120 s");
    int st;
    cr_assert_eq(waitpid(sink, &st, 0), sink);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sink failed: see %s/sink.log", dir);
    job_side_close(&g);
    fmnist_destroy(&ds);
    cr_assert_geq(sent, NJOBS + NJOBS / 2);

    cJSON *j = read_report();
    cr_assert_eq(jnum(j, "n_images"), N);
    cr_assert_eq(jnum(j, "items"), NJOBS);
    cr_assert_geq(jnum(j, "duplicates_dropped"), NJOBS / 2);
    cr_assert_eq(jnum(j, "rejected"), 2);
    const cJSON *m = cJSON_GetObjectItem(j, "metrics");
    cr_assert(m, "no metrics in report.json");
    cr_assert_str_eq(cJSON_GetObjectItem(m, "features")->valuestring, "classifier features, not Inception");
    double fid = jnum(m, "fid");
    cr_assert(fid >= -1e-6 && fid < 1e-6, "FID of the reference images against their own stats: %g", fid);
    // sFID: 1792 spatial dims from N = 120 images, so both covariances have
    // rank 119 and sqrtm of the singular product leaves ~1e-4 (measured
    // -8.4e-5); different features give values orders of magnitude larger
    cr_assert(fabs(jnum(m, "sfid")) < 1e-3, "sFID %g", jnum(m, "sfid"));
    cr_assert_eq(jnum(m, "precision_k3"), 1.0);
    cr_assert_eq(jnum(m, "recall_k3"), 1.0);
    cr_assert(jnum(m, "is") >= 1.0 && jnum(m, "is") <= 10.0);
    cJSON_Delete(j);
    // numpy reads the archive: ADM layout, the first N training images in id
    // order (so each id once) and their labels
    cr_assert_eq(test_sh("/usr/bin/python3 -c \"\n"
                         "import gzip, numpy as np\n"
                         "d = np.load('%s/out/samples.npz')\n"
                         "a, l = d['arr_0'], d['labels']\n"
                         "assert a.shape == (%d, 32, 32, 1) and a.dtype == np.uint8, (a.shape, a.dtype)\n"
                         "assert l.shape == (%d,) and l.dtype == np.int32, (l.shape, l.dtype)\n"
                         "p = '/usr/share/datasets/fashion-mnist/train-'\n"
                         "x = np.frombuffer(gzip.open(p + 'images-idx3-ubyte.gz').read(), np.uint8, offset=16)\n"
                         "y = np.frombuffer(gzip.open(p + 'labels-idx1-ubyte.gz').read(), np.uint8, offset=8)\n"
                         "x = np.pad(x.reshape(-1, 28, 28)[:%d], ((0, 0), (2, 2), (2, 2)))\n"
                         "assert (a[..., 0] == x).all()\n"
                         "assert (l == y[:%d]).all()\n"
                         "\"", dir, N, N, N, N), 0);
    char p[700];
    snprintf(p, sizeof p, "%s/out/grid_class_0.png", dir);
    cr_assert(access(p, R_OK) == 0, "no class grid");
    snprintf(p, sizeof p, "%s/out/report.md", dir);
    cr_assert(access(p, R_OK) == 0, "no report.md");
}

Test(eval_images, bad_inputs_exit_2, .init = setup, .fini = teardown, .timeout = 120) {
    char cls[600], other[600], ref[600];
    snprintf(cls, sizeof cls, "%s/cls.safetensors", dir);
    snprintf(other, sizeof other, "%s/other.safetensors", dir);
    snprintf(ref, sizeof ref, "%s/ref.safetensors", dir);
    const char *w = "--in ipc:///nonexistent/i --ctl ipc:///nonexistent/c --acks ipc:///nonexistent/a --out /nonexistent/o";
    cr_assert_eq(test_sh("bin/eval --model images --classifier %s --ref-stats %s --data fashion-mnist --n-ref 40 "
                         "2>%s/err.log", cls, ref, dir), 0);
    // a missing classifier
    cr_assert_eq(test_sh("bin/eval --model images --classifier %s/missing.safetensors --ref-stats %s %s 2>%s/err.log",
                         dir, ref, w, dir), 2);
    cr_assert_eq(test_sh("grep -q missing.safetensors %s/err.log", dir), 0);
    // statistics of another network (other weights)
    cr_assert_eq(test_sh("bin/eval --model images --classifier %s --ref-stats %s %s 2>%s/err.log", other, ref, w, dir), 2);
    cr_assert_eq(test_sh("grep -q ref-stats %s/err.log", dir), 0);
    // missing statistics, a truncated statistics file
    cr_assert_eq(test_sh("bin/eval --model images --classifier %s --ref-stats %s/none %s 2>%s/err.log", cls, dir, w, dir), 2);
    cr_assert_eq(test_sh("head -c 100 %s > %s/trunc && bin/eval --model images --classifier %s --ref-stats %s/trunc "
                         "%s 2>%s/err.log", ref, dir, cls, dir, w, dir), 2);
    // usage
    cr_assert_eq(test_sh("bin/eval --model images --classifier %s %s 2>%s/err.log", cls, w, dir), 2);
    cr_assert_eq(test_sh("bin/eval --model images --classifier %s --ref-stats %s --data cifar 2>%s/err.log", cls, ref, dir), 2);
    cr_assert_eq(test_sh("bin/eval --model images --in ipc://%s/i 2>%s/err.log", dir, dir), 2);
    cr_assert_eq(test_sh("bin/eval --model images 2>%s/err.log", dir), 2);
    cr_assert_eq(test_sh("bin/eval --model images --classifier %s --ref-stats %s --data fashion-mnist --data-dir %s "
                         "--n-ref 40 2>%s/err.log", cls, ref, dir, dir), 0);   // cached: kept, data not read
}

// A job source that never publishes its `issued` table (a replacement
// written against an older protocol): the sink drops its items unacked, says
// so at once, and after --timeout-s gives up with exit 1 naming the cause
// instead of waiting silently. The items are queued before the sink binds
// and keep coming every 100 ms. The right message needs only that the first
// item is read before the give-up check at 6 s: its drop (after the bus's
// 3 s wait for a table) then always precedes that check.
Test(eval_images, source_without_issued_table_is_named, .init = setup, .fini = teardown, .timeout = 120) {
    char img[700], ctl[700];
    snprintf(img, sizeof img, "ipc://%s/img", dir);
    snprintf(ctl, sizeof ctl, "ipc://%s/ctl", dir);
    bus_socket *pub = NULL, *push = NULL;
    cr_assert_eq(bus_socket_open(&pub, BUS_PUB, NULL), 0);   // the source's ctl: silent
    cr_assert_eq(bus_bind(pub, ctl), 0);
    cr_assert_eq(bus_socket_open(&push, BUS_PUSH, NULL), 0);
    cr_assert_eq(bus_connect(push, img), 0);
    fmnist *ds = NULL;
    cr_assert_eq(fmnist_load(NULL, "train", &ds), 0, "%s", vel_error_detail());
    pid_t sink = test_spawn("exec bin/eval --model images --in %s --ctl %s --acks ipc://%s/acks --out %s/out "
                            "--timeout-s 6 2>%s/sink.log", img, ctl, dir, dir, dir);
    cr_assert(sink > 0);
    int st = 0;
    pid_t w = 0;
    double t0 = vel_now();
    for (uint64_t id = 0; !w && vel_now() - t0 < 90; id++) {
        bus_msg *m = images_msg("images", 0, id, ds, (int64_t)(id % 100) * JOB, JOB, 32);
        bus_send(push, &m, 100);
        bus_msg_destroy(&m);   // NULL when sent
        usleep(100 * 1000);
        w = waitpid(sink, &st, WNOHANG);
    }
    if (!w) { kill(sink, SIGKILL); waitpid(sink, &st, 0); }
    cr_assert(w == sink, "the sink did not give up in 90 s");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "sink status %d", st);
    cr_assert_eq(test_sh("grep -q \"dropping items whose job source's .issued. table has not arrived\" %s/sink.log && "
                         "grep -q 'only items of a job source without an .issued. table arrived' %s/sink.log",
                         dir, dir), 0, "the log does not name the missing table");
    bus_socket_close(&push);
    bus_socket_close(&pub);
    fmnist_destroy(&ds);
}

// A job source that gives up (bus_source_abort, as `sample` does when no job
// is acked for --stall-s) ends the sink at once with exit 1 and one line
// saying so. The bus reports the abort on every later read, so a sink that
// took it for one bad message spun on it, printing "rejected a message"
// forever. The abort is sent only after the sink has acked an item, so the
// sink is known to be connected to ctl.
Test(eval_images, aborted_source_ends_the_sink, .init = setup, .fini = teardown, .timeout = 120) {
    job_side g;
    job_side_name(&g);
    pid_t sink = test_spawn("exec bin/eval --model images --in %s --ctl %s --acks %s --out %s/out --timeout-s 60 "
                            "2>%s/sink.log", g.img, g.ctl, g.acks, dir, dir);
    cr_assert(sink > 0);
    fmnist *ds = NULL;
    cr_assert_eq(fmnist_load(NULL, "train", &ds), 0, "%s", vel_error_detail());
    job_side_open(&g, 2, 60000);
    bus_source *src = g.src;
    bus_socket *pull = g.pull, *push = g.push;
    bus_source_stats stats = {0};
    int answered = 0;
    double t0 = vel_now();
    while (stats.acked < 1 && vel_now() - t0 < 60) {   // answer job 0 only; job 1 stays open
        cr_assert(bus_source_step(src, 10) >= 0);
        bus_msg *m = NULL;
        if (bus_recv(pull, &m, 10) == 0) {
            uint64_t id = bus_msg_id(m);
            bus_msg_destroy(&m);
            if (id == 0 && !answered++) {
                bus_msg *out = images_msg("images", 0, 0, ds, 0, JOB, 32);
                cr_assert_eq(bus_send(push, &out, 5000), 0);
            }
        }
        bus_source_get_stats(src, &stats);
    }
    cr_assert_eq(stats.acked, 1, "the sink did not ack the first item in 60 s");
    cr_assert_eq(bus_source_abort(src, 1000), 0);
    int st = 0;
    pid_t w = 0;
    for (t0 = vel_now(); !w && vel_now() - t0 < 30;) {
        usleep(50 * 1000);
        w = waitpid(sink, &st, WNOHANG);
    }
    if (!w) { kill(sink, SIGKILL); waitpid(sink, &st, 0); }
    cr_assert(w == sink, "the sink did not end within 30 s of the abort");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "sink status %d", st);
    cr_assert_eq(test_sh("grep -q 'aborted the run' %s/sink.log", dir), 0, "the log does not say the run was aborted");
    cr_assert_neq(test_sh("grep -q 'rejected a message' %s/sink.log", dir), 0, "the abort was taken for a bad message");
    job_side_close(&g);
    fmnist_destroy(&ds);
}

// Without --classifier or --weights the feature network is the shipped
// weights/fmnist-classifier.safetensors (weight hash 12f04c6d782e3ab5, as in
// weights/README.md and tests/models/test_classifier.c), found beside the
// binary whatever the working folder; inception has no default.
Test(eval_images, default_network_is_the_shipped_classifier, .init = setup, .fini = teardown, .timeout = 120) {
    char eval[PATH_MAX];
    cr_assert(realpath("bin/eval", eval));
    cr_assert_eq(test_sh("cd %s && %s --model images --ref-stats def.st --data fashion-mnist --n-ref 40 2>def.log",
                         dir, eval), 0, "see %s/def.log", dir);
    cr_assert_eq(test_sh("grep -a -q 12f04c6d782e3ab5 %s/def.st", dir), 0, "statistics not of the shipped network");
    cr_assert_eq(test_sh("%s --model images --feature-net inception --ref-stats %s/i.st --data fashion-mnist "
                         "2>%s/err.log; [ $? = 2 ] && grep -q 'needs --weights' %s/err.log", eval, dir, dir, dir), 0);
}
