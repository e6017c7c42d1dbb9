// test_train_dit.c: `bin/train --model dit` as a process on small synthetic
// caches (tests/stages/dit_fixture.h): the outputs a user expects; resume is
// bit-exact (N steps straight == N/2 + --resume + N/2, byte for byte);
// world size 2 under mpirun equals world size 1 to fp32 rounding; bad inputs
// (missing cache, cache without stats, another tokenizer's cache, another
// preset's checkpoint, a corrupt checkpoint, a run already in --out) exit 2
// and leave the checkpoint as it was. Needs bin/train (make).
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "nn/safetensors.h"
#include "tests/stages/dit_fixture.h"
#include "tests/util.h"

// Small and fast: depth 2, width 32, 2 heads, 4x4x4 latents.
#define TRAIN "OMP_NUM_THREADS=1 bin/train --model dit --preset tiny --depth 2 --width 32 --heads 2 " \
              "--batch 8 --log-every 1 --sample-steps 4 --ema-halflife 5 "

static int sh(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void need_bin(void) {
    cr_assert_eq(access("bin/train", X_OK), 0, "bin/train not built (make)");
}

static char *setup(const char *tag) {
    need_bin();
    char *dir = test_tmpdir(tag);
    char p[1024];
    snprintf(p, sizeof p, "%s/cache", dir);
    cr_assert_eq(dfx_make(p, "tokA", 48, 3, 4, 4, 1, 0), 0);
    return dir;
}

// A whole text file, NUL-terminated (caller frees); NULL if unreadable.
static char *text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *p = calloc(1, 1 << 20);
    size_t n = fread(p, 1, (1 << 20) - 1, f);
    fclose(f);
    p[n] = 0;
    return p;
}

Test(train_dit, writes_what_a_user_expects, .timeout = 120) {
    char *d = setup("dit_out");
    cr_assert_eq(sh(TRAIN "--store %s/cache --out %s/run --steps 6 --ckpt-every 3 --sample-every 3 "
                    "> %s/stdout 2> %s/stderr", d, d, d, d), 0);
    const char *files[] = {"config.json", "log.jsonl", "dit.safetensors", "dit.optim.safetensors",
                           "dit-ema.safetensors", "samples-00000003.png", "samples-00000006.png", "loss.png"};
    char p[1024];
    for (int i = 0; i < 8; i++) {
        snprintf(p, sizeof p, "%s/run/%s", d, files[i]);
        cr_expect_eq(access(p, R_OK), 0, "missing %s", p);
    }
    // Not a terminal: one progress line per report, with step, loss, img/s, ETA.
    snprintf(p, sizeof p, "%s/stdout", d);
    char *out = text(p);
    cr_assert_not_null(out);
    cr_expect_null(strchr(out, '\r'), "carriage return in non-terminal output");
    cr_expect_not_null(strstr(out, "step 6/6 loss "), "%s", out);
    cr_expect_not_null(strstr(out, "img/s ETA"), "%s", out);
    cr_expect_not_null(strstr(out, "parameters"), "%s", out);
    free(out);
    snprintf(p, sizeof p, "%s/run/log.jsonl", d);
    out = text(p);
    cr_assert_not_null(out);
    int lines = 0;
    for (char *q = out; *q; q++) lines += *q == '\n';
    cr_expect_eq(lines, 6, "log.jsonl has %d lines", lines);
    cr_expect_not_null(strstr(out, "\"step\":6,\"loss\":"));
    free(out);
    // The EMA file carries the model's configuration for the sampler.
    snprintf(p, sizeof p, "%s/run/dit-ema.safetensors", d);
    st_file *f = NULL;
    cr_assert_eq(st_open(&f, p), 0, "%s", vel_error_detail());
    cr_expect_str_eq(st_meta_get(f, "dit.depth"), "2");
    cr_expect_str_eq(st_meta_get(f, "dit.hidden"), "32");
    cr_expect_str_eq(st_meta_get(f, "dit.num_classes"), "3");
    cr_expect_str_eq(st_meta_get(f, "store.tokenizer_hash"), "tokA");
    cr_expect_str_eq(st_meta_get(f, "store.shape"), "4,4,4");
    cr_expect_not_null(st_meta_get(f, "store.mean"));
    cr_expect_geq(st_find(f, "final_layer.linear.weight"), 0);
    st_close(&f);
    rm_rf(d);
    free(d);
}

Test(train_dit, resume_is_bit_exact, .timeout = 120) {
    char *d = setup("dit_resume");
    cr_assert_eq(sh(TRAIN "--store %s/cache --out %s/straight --steps 10 --ckpt-every 100 --sample-every 0 "
                    ">/dev/null 2>&1", d, d), 0);
    cr_assert_eq(sh(TRAIN "--store %s/cache --out %s/split --steps 5 --ckpt-every 100 --sample-every 0 "
                    ">/dev/null 2>&1", d, d), 0);
    cr_assert_eq(sh("echo '{\"step\":7,\"loss\":99,\"mse\":1,\"cos\":1}' >> %s/split/log.jsonl", d), 0);
    cr_assert_eq(sh(TRAIN "--store %s/cache --out %s/split --steps 10 --ckpt-every 100 --sample-every 0 "
                    "--resume >/dev/null 2>&1", d, d), 0);
    const char *files[] = {"dit.safetensors", "dit.optim.safetensors", "dit-ema.safetensors"};
    for (int i = 0; i < 3; i++) {
        char a[1024], b[1024];
        snprintf(a, sizeof a, "%s/straight/%s", d, files[i]);
        snprintf(b, sizeof b, "%s/split/%s", d, files[i]);
        cr_expect(test_files_equal(a, b), "%s differs between 10 straight steps and 5 + resume + 5", files[i]);
    }
    // The split run's log has each step once: a line past the checkpoint that
    // a crashed run would have left (added before the resume) is dropped.
    char lp[1024];
    snprintf(lp, sizeof lp, "%s/split/log.jsonl", d);
    char *log = text(lp);
    cr_assert_not_null(log);
    for (int st = 1; st <= 10; st++) {
        char key[40];
        snprintf(key, sizeof key, "{\"step\":%d,", st);
        char *at = strstr(log, key);
        cr_expect(at && !strstr(at + 1, key), "step %d not logged exactly once", st);
    }
    free(log);
    // The same with Muon (its momentum buffers are in the optimizer file).
    const char *mu = "--optimizer muon --ckpt-every 100 --sample-every 0 >/dev/null 2>&1";
    cr_assert_eq(sh(TRAIN "--store %s/cache --out %s/m_straight --steps 4 %s", d, d, mu), 0);
    cr_assert_eq(sh(TRAIN "--store %s/cache --out %s/m_split --steps 2 %s", d, d, mu), 0);
    cr_assert_eq(sh(TRAIN "--store %s/cache --out %s/m_split --steps 4 --resume %s", d, d, mu), 0);
    for (int i = 0; i < 3; i++) {
        char a[1024], b[1024];
        snprintf(a, sizeof a, "%s/m_straight/%s", d, files[i]);
        snprintf(b, sizeof b, "%s/m_split/%s", d, files[i]);
        cr_expect(test_files_equal(a, b), "muon: %s differs between 4 straight steps and 2 + resume + 2", files[i]);
    }
    // 48 records, batch 8: 6 steps per epoch, so the resumed half crossed an
    // epoch boundary; and a run with another seed differs.
    cr_assert_eq(sh(TRAIN "--store %s/cache --out %s/seed1 --steps 10 --seed 1 --sample-every 0 "
                    ">/dev/null 2>&1", d, d), 0);
    char a[1024], b[1024];
    snprintf(a, sizeof a, "%s/straight/dit.safetensors", d);
    snprintf(b, sizeof b, "%s/seed1/dit.safetensors", d);
    cr_expect(!test_files_equal(a, b), "seed does not change the run");
    rm_rf(d);
    free(d);
}

#define MPIRUN "OMPI_MCA_btl_vader_single_copy_mechanism=none timeout 100 mpirun " \
               "--allow-run-as-root --oversubscribe --bind-to none --mca btl self,vader -np "

Test(train_dit, world2_matches_world1, .timeout = 180) {
    if (system("command -v mpirun >/dev/null 2>&1") != 0) cr_skip_test("mpirun not found");
    char *d = setup("dit_dp");
    cr_assert_eq(sh(TRAIN "--store %s/cache --out %s/w1 --steps 8 --sample-every 0 >/dev/null 2>&1", d, d), 0);
    cr_assert_eq(sh(MPIRUN "2 env OMP_NUM_THREADS=1 bin/train --model dit --preset tiny --depth 2 --width 32 "
                    "--heads 2 --batch 8 --log-every 1 --sample-steps 4 --ema-halflife 5 --store %s/cache "
                    "--out %s/w2 --steps 8 --sample-every 0 > %s/w2.log 2>&1", d, d, d), 0,
                 "mpirun -np 2 failed (see the log in the test folder)");
    char a[1024], b[1024];
    snprintf(a, sizeof a, "%s/w1/dit.safetensors", d);
    snprintf(b, sizeof b, "%s/w2/dit.safetensors", d);
    int64_t na, nb;
    float *x = dfx_weights(a, &na), *y = dfx_weights(b, &nb);
    cr_assert_eq(na, nb);
    // The gradients differ by fp32 summation order only; after 8 AdamW steps
    // at lr 2e-4 the weights agree to this (measured max |diff| below).
    double mx = 0;
    for (int64_t i = 0; i < na; i++) mx = fmax(mx, fabs((double)x[i] - y[i]));
    cr_expect_leq(mx, 1e-5, "world 2 vs world 1: max |dw| = %g", mx);
    cr_expect(memcmp(x, y, sizeof(float) * (size_t)na) != 0 || mx == 0);
    fprintf(stderr, "world 2 vs 1: max |dw| = %g over %lld weights\n", mx, (long long)na);
    free(x);
    free(y);
    rm_rf(d);
    free(d);
}

// Runs a bad command; expects exit 2 and dit.safetensors of `run` unchanged.
static void expect_refused(const char *d, const char *why, const char *fmt, ...) {
    char args[2048], cmd[4096], before[1024], keep[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(before, sizeof before, "%s/run/dit.safetensors", d);
    snprintf(keep, sizeof keep, "%s/keep.safetensors", d);
    cr_assert_eq(sh("cp %s %s", before, keep), 0);
    snprintf(cmd, sizeof cmd, TRAIN "%s > %s/bad.out 2> %s/bad.err", args, d, d);
    int rc = sh("%s", cmd);
    char p[1024];
    snprintf(p, sizeof p, "%s/bad.err", d);
    char *err = text(p);
    cr_assert_not_null(err);
    size_t n = strlen(err);
    cr_expect_eq(rc, 2, "%s: exit %d, want 2; stderr: %s", why, rc, err);
    cr_expect(n > 10 && strstr(err, "train: "), "%s: no clear message (%s)", why, err);
    cr_expect(test_files_equal(before, keep), "%s: the checkpoint was changed", why);
    free(err);
}

Test(train_dit, bad_inputs_exit_2_and_overwrite_nothing, .timeout = 120) {
    char *d = setup("dit_bad");
    cr_assert_eq(sh(TRAIN "--store %s/cache --out %s/run --steps 2 --sample-every 0 >/dev/null 2>&1", d, d), 0);
    char p[1024];
    snprintf(p, sizeof p, "%s/nostats", d);
    cr_assert_eq(dfx_make(p, "tokA", 16, 3, 4, 4, 1, 1), 0);
    snprintf(p, sizeof p, "%s/othertok", d);
    cr_assert_eq(dfx_make(p, "tokB", 16, 3, 4, 4, 1, 0), 0);
    snprintf(p, sizeof p, "%s/othershape", d);
    cr_assert_eq(dfx_make(p, "tokA", 16, 3, 4, 8, 1, 0), 0);
    expect_refused(d, "missing cache", "--store %s/nothing --out %s/run --steps 4 --resume", d, d);
    expect_refused(d, "cache without stats", "--store %s/nostats --out %s/run --steps 4 --resume", d, d);
    expect_refused(d, "another tokenizer", "--store %s/othertok --out %s/run --steps 4 --resume", d, d);
    expect_refused(d, "another latent shape", "--store %s/othershape --out %s/run --steps 4 --resume", d, d);
    expect_refused(d, "another preset", "--store %s/cache --out %s/run --steps 4 --resume --width 64", d, d);
    expect_refused(d, "run already there", "--store %s/cache --out %s/run --steps 4", d, d);
    expect_refused(d, "tokenizer that is not the cache's",
                   "--store %s/cache --out %s/run --steps 4 --resume --tokenizer %s/run/dit-ema", d, d, d);
    expect_refused(d, "bad flag", "--store %s/cache --out %s/run --steps -3", d, d);
    // A corrupt optimizer file (truncated) is refused without touching the weights.
    cr_assert_eq(sh("truncate -s 100 %s/run/dit.optim.safetensors", d), 0);
    expect_refused(d, "corrupt checkpoint", "--store %s/cache --out %s/run --steps 4 --resume", d, d);
    // Its message names the damaged file, and the run's path only once (it
    // used to print the prefix and then the detail that names the file again).
    snprintf(p, sizeof p, "%s/bad.err", d);
    char *err = text(p), run[1024];
    cr_assert_not_null(err);
    snprintf(run, sizeof run, "%s/run/dit", d);
    int seen = 0;
    for (const char *q = err; (q = strstr(q, run)); q += strlen(run)) seen++;
    cr_expect(strstr(err, "dit.optim.safetensors") != NULL, "message does not name the file: %s", err);
    cr_expect_eq(seen, 1, "the run's path appears %d times: %s", seen, err);
    free(err);
    // A corrupt weights file too (bytes flipped inside the JSON header).
    cr_assert_eq(sh("printf 'XXXX' | dd of=%s/run/dit.safetensors bs=1 seek=12 conv=notrunc 2>/dev/null", d), 0);
    expect_refused(d, "corrupt weights", "--store %s/cache --out %s/run --steps 4 --resume", d, d);
    rm_rf(d);
    free(d);
}
