// Multi-process tests of the toy stages (bin/encode, bin/sample, bin/decode,
// bin/eval started as separate processes, wired over ipc:// sockets):
//   - 1 and 3 samplers give byte-identical samples;
//   - a sampler killed mid-run (--die-after) loses nothing: the job source
//     re-issues its job and the samples are again identical;
//   - bad input: eval given points of the wrong dimension, a checkpoint of
//     another model, a missing store, an unbuilt model: clear errors.
// Tiny untrained networks are enough: these tests check plumbing and
// determinism, not sample quality. Needs bin/ built (make).
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus/bus.h"
#include "models/toy_ckpt.h"
#include "models/toy_flow.h"
#include "models/toy_tok.h"
#include "tests/util.h"

static char *dir;

static void need_bins(void) {
    const char *b[] = {"bin/train", "bin/encode", "bin/sample", "bin/decode", "bin/eval"};
    for (int i = 0; i < 5; i++) cr_assert(access(b[i], X_OK) == 0, "%s missing: run make first", b[i]);
}

static char *slurp(const char *path, long *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc(*len + 1);
    if (fread(b, 1, *len, f) != (size_t)*len) *len = -1;
    b[*len > 0 ? *len : 0] = 0;
    fclose(f);
    return b;
}

// Random-weight tokenizer and flow checkpoints plus an encoded store.
static void setup_models(void) {
    need_bins();
    dir = test_tmpdir("toy_pipe");
    char p[600];
    toy_tok *t;
    cr_assert_eq(toy_tok_create(&t, 1, 16, 64), 0);
    toy_tok_init(t, 1);
    snprintf(p, sizeof p, "%s/tok.safetensors", dir);
    cr_assert_eq(toy_ckpt_save(p, &t->pt, "toy-tokenizer", 1, 16, NULL, 0), 0, "%s", vel_error_detail());
    toy_tok_destroy(&t);
    toy_flow *f;
    cr_assert_eq(toy_flow_create(&f, 1, 16, 64, TOY_TIME_RAW, 0), 0);
    toy_flow_init(f, 2);
    snprintf(p, sizeof p, "%s/flow.safetensors", dir);
    cr_assert_eq(toy_ckpt_save(p, &f->pt, "toy-flow", 1, 16, NULL, 0), 0, "%s", vel_error_detail());
    toy_flow_destroy(&f);
    cr_assert_eq(test_sh("OMP_NUM_THREADS=1 bin/encode --model toy --ckpt %s/tok.safetensors --store %s/store --n 500 2>%s/encode.log",
                    dir, dir, dir), 0, "encode failed (see %s/encode.log)", dir);
}

static void teardown_models(void) {
    rm_rf(dir);
    free(dir);
}

// One sampling run: source + nsamp workers + decode + eval. When die_after
// > 0 the first worker dies on taking its die_after-th job and the others
// start 1 s later, so the dying one surely holds jobs (PUSH would otherwise
// hand every job to whichever worker connected first). Returns eval's code.
static int run(const char *tag, int nsamp, int die_after) {
    return test_sh("cd %s && S=$(mktemp -d /tmp/toyt.XXXXXX) && "
              "J=ipc://$S/j A=ipc://$S/a C=ipc://$S/c L=ipc://$S/l P=ipc://$S/p; cd - >/dev/null; "
              "export OMP_NUM_THREADS=1; d0=%d; "
              "bin/eval --model toy --in $P --ctl $C --acks $A --out %s/%s --n-true 200 --timeout-s 60 --no-figures 2>%s/%s.eval.log & E=$!; "
              "bin/decode --model toy --ckpt %s/tok.safetensors --store %s/store --in $L --ctl $C --out $P 2>%s/%s.dec.log & "
              "(for i in $(seq 1 %d); do d=0; [ $i = 1 ] && d=%d; [ $i = 2 ] && [ $d0 -gt 0 ] && sleep 1; "
              "  bin/sample --model toy-flow --ckpt %s/flow.safetensors --jobs $J --ctl $C --out $L --die-after $d 2>%s/%s.s$i.log & done; wait) & "
              "bin/sample --model toy-flow --role source --n 600 --job-size 50 --seed 7 --deadline-ms 1500 "
              "  --jobs-bind $J --acks-bind $A --ctl-bind $C 2>%s/%s.src.log; "
              "wait $E; rc=$?; wait; rm -rf $S; exit $rc",
              dir, die_after, dir, tag, dir, tag, dir, dir, dir, tag, nsamp, die_after, dir, dir, tag, dir, tag);
}

TestSuite(toy_pipeline, .init = setup_models, .fini = teardown_models, .timeout = 200);

Test(toy_pipeline, one_or_three_samplers_identical_and_kill_loses_nothing) {
    cr_assert_eq(run("one", 1, 0), 0, "1-sampler run failed (logs in %s)", dir);
    cr_assert_eq(run("three", 3, 0), 0, "3-sampler run failed (logs in %s)", dir);
    cr_assert_eq(run("killed", 2, 2), 0, "run with a killed sampler failed (logs in %s)", dir);
    char p[700];
    long n1, n3, nk;
    snprintf(p, sizeof p, "%s/one/samples.npy", dir);
    char *a = slurp(p, &n1);
    snprintf(p, sizeof p, "%s/three/samples.npy", dir);
    char *b = slurp(p, &n3);
    snprintf(p, sizeof p, "%s/killed/samples.npy", dir);
    char *c = slurp(p, &nk);
    cr_assert(a && b && c, "missing samples.npy");
    cr_assert_eq(n1, 128 + 600 * 2 * 4, "samples.npy of 600 x 2 f32 expected, got %ld bytes", n1);
    cr_assert(n1 == n3 && memcmp(a, b, n1) == 0, "1 vs 3 samplers differ");
    cr_assert(n1 == nk && memcmp(a, c, n1) == 0, "run with a killed sampler differs");
    long ls;
    snprintf(p, sizeof p, "%s/killed.s1.log", dir);
    char *log = slurp(p, &ls);
    cr_assert(log && strstr(log, "--die-after 2"), "the sampler did not die as asked: %s", log ? log : "");
    snprintf(p, sizeof p, "%s/killed.src.log", dir);
    char *src = slurp(p, &ls);
    cr_assert(src && !strstr(src, " 0 re-issued"), "nothing was re-issued: %s", src ? src : "");
    free(a); free(b); free(c); free(log); free(src);
}

Test(toy_pipeline, eval_rejects_points_of_wrong_dimension) {
    char ep[700], cmd[2000];
    snprintf(ep, sizeof ep, "ipc://%s/pts", dir);
    snprintf(cmd, sizeof cmd,
             "exec bin/eval --model toy --in %s --ctl ipc://%s/ctl --acks ipc://%s/acks --out %s/bad --timeout-s 20 2>%s/bad.log",
             ep, dir, dir, dir, dir);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    bus_socket *s;
    cr_assert_eq(bus_socket_open(&s, BUS_PUSH, NULL), 0);
    cr_assert_eq(bus_connect(s, ep), 0);
    bus_msg *m;
    float x[12] = {0};
    tensor t = tensor_view(DT_F32, x, 2, (int64_t[]){4, 3});
    cr_assert_eq(bus_msg_new(&m, "points", 0, 5), 0);
    cr_assert_eq(bus_msg_add_tensor(m, "x", &t), 0);
    cr_assert_eq(bus_send(s, &m, 5000), 0);
    int st;
    waitpid(pid, &st, 0);
    bus_socket_close(&s);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "eval should exit 1, status %d", st);
    char p[700];
    long n;
    snprintf(p, sizeof p, "%s/bad.log", dir);
    char *log = slurp(p, &n);
    cr_assert(log && strstr(log, "item 5") && strstr(log, "last dim 3") && strstr(log, "(n, 2)"), "message: %s", log);
    free(log);
}

Test(toy_pipeline, clear_errors_for_bad_checkpoints_stores_and_models) {
    char p[700];
    long n;
    // a tokenizer checkpoint given to the sampler
    cr_assert_eq(test_sh("bin/sample --model toy-flow --ckpt %s/tok.safetensors --jobs ipc://%s/j --ctl ipc://%s/c --out ipc://%s/l 2>%s/e1.log",
                    dir, dir, dir, dir, dir), 2);   // a checkpoint of the wrong kind is an input error
    snprintf(p, sizeof p, "%s/e1.log", dir);
    char *log = slurp(p, &n);
    cr_assert(log && strstr(log, "holds model 'toy-tokenizer', expected 'toy-flow'"), "message: %s", log);
    free(log);
    // a flow checkpoint given to encode
    cr_assert_eq(test_sh("bin/encode --model toy --ckpt %s/flow.safetensors --store %s/s2 2>%s/e2.log", dir, dir, dir), 2);
    snprintf(p, sizeof p, "%s/e2.log", dir);
    log = slurp(p, &n);
    cr_assert(log && strstr(log, "expected 'toy-tokenizer'"), "message: %s", log);
    free(log);
    // a missing store
    cr_assert_eq(test_sh("bin/train --model toy-flow --store %s/nostore --out %s/f 2>%s/e3.log", dir, dir, dir), 2);   // input error
    snprintf(p, sizeof p, "%s/e3.log", dir);
    log = slurp(p, &n);
    cr_assert(log && strstr(log, "cannot open store") && strstr(log, "nostore"), "message: %s", log);
    free(log);
    // a checkpoint that is not safetensors at all
    cr_assert_eq(test_sh("echo garbage > %s/junk.safetensors; bin/decode --model toy --ckpt %s/junk.safetensors --store %s/store "
                    "--in ipc://%s/i --ctl ipc://%s/c --out ipc://%s/o 2>%s/e4.log", dir, dir, dir, dir, dir, dir, dir), 2);
    snprintf(p, sizeof p, "%s/e4.log", dir);
    log = slurp(p, &n);
    cr_assert(log && strstr(log, "junk.safetensors"), "message: %s", log);
    free(log);
    // a model without its required flags (dit), an unknown model, bad flags
    cr_assert_eq(test_sh("bin/train --model dit 2>/dev/null"), 2);
    cr_assert_eq(test_sh("bin/sample --model dit 2>/dev/null"), 2);
    cr_assert_eq(test_sh("bin/eval --model nope 2>/dev/null"), 2);
    cr_assert_eq(test_sh("bin/train --model toy-tokenizer --out %s/x --iters abc 2>/dev/null", dir), 2);
    cr_assert_eq(test_sh("bin/encode --help >/dev/null"), 0);
    cr_assert_eq(test_sh("bin/decode --model toy --help >/dev/null"), 0);
}

// train --model toy-flow's flow options through the executable: Fourier time
// input recorded in the checkpoint (and loaded back as that model), --ema
// writes the EMA and the raw weights to two different files, --save-every
// snapshots, --time late; bad values exit 2.
Test(toy_pipeline, flow_time_embed_ema_snapshots) {
    cr_assert_eq(test_sh("OMP_NUM_THREADS=1 bin/train --model toy-flow --store %s/store --out %s/ff --depth 1 --width 8 "
                    "--batch 32 --iters 5 --time-embed fourier --time-freqs 3 --ema 0.9 --time late --save-every 2 "
                    "2>%s/ff.log", dir, dir, dir), 0, "train failed (see %s/ff.log)", dir);
    char p[700], q[700];
    const char *files[] = {"flow", "flow-noema", "flow-it2", "flow-it4"};
    toy_flow *f[4] = {0};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/ff/%s.safetensors", dir, files[i]);
        cr_assert_eq(toy_flow_load(&f[i], p, 8), 0, "%s", vel_error_detail());
        cr_assert_eq(f[i]->time_embed, TOY_TIME_FOURIER);
        cr_assert_eq(f[i]->nfreq, 3);
        cr_assert_eq(f[i]->in_dim, 8);
    }
    cr_assert_neq(memcmp(f[0]->pt.values, f[1]->pt.values, f[0]->pt.total * sizeof(float)), 0,
                  "EMA and raw weights are identical");
    for (int i = 0; i < 4; i++) toy_flow_destroy(&f[i]);
    snprintf(q, sizeof q, "%s/ff/config.json", dir);
    long n;
    char *cfg = slurp(q, &n);
    cr_assert(cfg && strstr(cfg, "\"fourier\"") && strstr(cfg, "\"late\""), "config: %s", cfg);
    free(cfg);
    const char *bad[] = {"--time-embed wavelet", "--time-freqs 0", "--ema 1", "--time early", "--save-every -1"};
    for (int i = 0; i < 5; i++)
        cr_assert_eq(test_sh("bin/train --model toy-flow --store %s/store --out %s/fb %s 2>/dev/null", dir, dir, bad[i]), 2,
                     "%s", bad[i]);
}
