// test_toy_train.c: train --model toy-tokenizer / toy-flow --lr-schedule
// (issue 14's flow search). The learning rate each step used, as written to
// log.jsonl with --log-every 1, must equal the closed form:
//   cosine    lr_ref (1 + cos(pi it / iters)) / 2, it = 0 .. iters-1
//   constant  lr_ref
//   inv-sqrt  lr_ref / sqrt(max(it / 512, 1))   (the default; flat for it < 512)
// and config.json must name the formula; inv_sqrt (nn/schedule.h's name) is
// accepted for inv-sqrt. Bad schedules exit 2. --device: a bad name exits 2,
// and without a GPU (this machine) so does --device cuda, with a message
// that says so and nothing written (the GPU runs: tests/device/run.sh).
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include "nn/device.h"
#include "tests/util.h"

static char *dir;

static void setup(void) {
    const char *b[] = {"bin/encode", "bin/train"};
    for (int i = 0; i < 2; i++) cr_assert(access(b[i], X_OK) == 0, "%s missing: run make first", b[i]);
    dir = test_tmpdir("toy_train");
    cr_assert_eq(test_sh("OMP_NUM_THREADS=1 bin/encode --model toy --identity --store %s/store --n 300 "
                         "--data-seed 1 2>%s/encode.log", dir, dir), 0, "encode failed (%s/encode.log)", dir);
}

static void teardown(void) {
    rm_rf(dir);
    free(dir);
}

TestSuite(toy_train, .init = setup, .fini = teardown, .timeout = 120);

// Reads the "lr" of each line of DIR/SUB/log.jsonl into lr (at most cap);
// checks that the "it" fields run 1, 2, ...; returns the count.
static int read_lrs(const char *sub, double *lr, int cap) {
    char p[700];
    snprintf(p, sizeof p, "%s/%s/log.jsonl", dir, sub);
    size_t len = 0;
    char *txt = test_read_file(p, &len);
    cr_assert(txt, "missing %s", p);
    int n = 0;
    for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        cr_assert(j, "bad line in %s: %s", p, line);
        cJSON *it = cJSON_GetObjectItem(j, "it"), *l = cJSON_GetObjectItem(j, "lr");
        cr_assert(it && l && n < cap, "line %d of %s", n, p);
        cr_assert_eq(it->valueint, n + 1, "%s: line %d has it %d", p, n, it->valueint);
        lr[n++] = l->valuedouble;
        cJSON_Delete(j);
    }
    free(txt);
    return n;
}

static void expect_config_schedule(const char *sub, const char *formula) {
    char p[700];
    snprintf(p, sizeof p, "%s/%s/config.json", dir, sub);
    char *txt = test_read_file(p, NULL);
    cr_assert(txt, "missing %s", p);
    cJSON *j = cJSON_Parse(txt);
    cJSON *s = j ? cJSON_GetObjectItem(j, "lr_schedule") : NULL;
    cr_assert(s && cJSON_IsString(s), "%s has no lr_schedule", p);
    cr_expect_str_eq(s->valuestring, formula, "%s", p);
    cJSON_Delete(j);
    free(txt);
}

// The log prints %.6g: agreement to 1e-5 relative is the closed form, while
// an off-by-one step (cos(pi (it+1)/iters)) differs by > 1% at every step.
static void expect_cosine(const char *sub, double lr_ref, int iters) {
    double lr[64];
    int n = read_lrs(sub, lr, 64);
    cr_assert_eq(n, iters, "%s: %d log lines, expected %d", sub, n, iters);
    for (int it = 0; it < iters; it++) {
        double want = lr_ref * 0.5 * (1.0 + cos(M_PI * it / iters));
        cr_expect(fabs(lr[it] - want) <= 1e-5 * want, "%s step %d: lr %.9g, closed form %.9g", sub, it, lr[it],
                  want);
    }
    cr_expect(lr[iters - 1] < 0.06 * lr_ref, "%s: the last step's lr %.3g has not decayed", sub, lr[iters - 1]);
    expect_config_schedule(sub, "lr_ref*(1+cos(pi*it/iters))/2");
}

Test(toy_train, flow_cosine_schedule_is_the_closed_form) {
    cr_assert_eq(test_sh("OMP_NUM_THREADS=1 bin/train --model toy-flow --store %s/store --out %s/fc --depth 1 "
                         "--width 8 --batch 16 --iters 10 --lr 2e-3 --lr-schedule cosine --log-every 1 "
                         "2>%s/fc.log", dir, dir, dir), 0, "train failed (%s/fc.log)", dir);
    expect_cosine("fc", 2e-3, 10);
    // stderr is a file here, not a terminal: one progress line per report
    // (stages/common/progress.h), no carriage returns.
    char p[600];
    snprintf(p, sizeof p, "%s/fc.log", dir);
    size_t len = 0;
    char *log = test_read_file(p, &len);
    cr_assert(log, "cannot read %s", p);
    int reports = 0;
    for (char *line = log; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        reports += strncmp(line, "[train toy-flow] it ", 20) == 0;
    cr_expect(memchr(log, '\r', len) == NULL, "a carriage return in the progress written to a file");
    cr_expect_eq(reports, 10, "%d progress lines for 10 reports", reports);
    free(log);
}

Test(toy_train, tokenizer_cosine_schedule_is_the_closed_form) {
    cr_assert_eq(test_sh("OMP_NUM_THREADS=1 bin/train --model toy-tokenizer --out %s/tc --depth 1 --width 8 "
                         "--batch 16 --iters 7 --lr 1e-3 --lr-schedule cosine --log-every 1 2>%s/tc.log",
                         dir, dir), 0, "train failed (%s/tc.log)", dir);
    expect_cosine("tc", 1e-3, 7);
}

Test(toy_train, constant_and_default_schedules) {
    cr_assert_eq(test_sh("OMP_NUM_THREADS=1 bin/train --model toy-flow --store %s/store --out %s/fk --depth 1 "
                         "--width 8 --batch 16 --iters 5 --lr 3e-3 --lr-schedule constant --log-every 1 "
                         "2>%s/fk.log", dir, dir, dir), 0, "train failed (%s/fk.log)", dir);
    cr_assert_eq(test_sh("OMP_NUM_THREADS=1 bin/train --model toy-flow --store %s/store --out %s/fd --depth 1 "
                         "--width 8 --batch 16 --iters 5 --lr 3e-3 --log-every 1 2>%s/fd.log", dir, dir, dir),
                 0, "train failed (%s/fd.log)", dir);
    double lr[8];
    cr_assert_eq(read_lrs("fk", lr, 8), 5);
    for (int i = 0; i < 5; i++) cr_expect(fabs(lr[i] - 3e-3) <= 1e-9, "constant step %d: %.9g", i, lr[i]);
    cr_assert_eq(read_lrs("fd", lr, 8), 5);   // inv-sqrt is flat before step 512
    for (int i = 0; i < 5; i++) cr_expect(fabs(lr[i] - 3e-3) <= 1e-9, "inv-sqrt step %d: %.9g", i, lr[i]);
    expect_config_schedule("fk", "lr_ref");
    expect_config_schedule("fd", "lr_ref/sqrt(max(it/512,1))");
}

Test(toy_train, bad_schedules_exit_2) {
    cr_expect_eq(test_sh("bin/train --model toy-flow --store %s/store --out %s/b1 --lr-schedule linear "
                         "2>%s/b1.log", dir, dir, dir), 2, "unknown schedule");
    cr_expect_eq(test_sh("bin/train --model toy-tokenizer --out %s/b2 --iters 0 --lr-schedule cosine "
                         "2>%s/b2.log", dir, dir), 2, "cosine with 0 iterations");
    cr_expect_eq(test_sh("grep -q 'needs --iters >= 1' %s/b2.log", dir), 0, "message names --iters");
}

Test(toy_train, inv_sqrt_spelling_is_accepted) {
    cr_assert_eq(test_sh("bin/train --model toy-tokenizer --out %s/us --depth 1 --width 8 --batch 16 --iters 3 "
                         "--lr-schedule inv_sqrt --log-every 1 2>%s/us.log", dir, dir), 0);
    expect_config_schedule("us", "lr_ref/sqrt(max(it/512,1))");
}

Test(toy_train, device_refusals_exit_2_and_write_nothing) {
    cr_expect_eq(test_sh("bin/train --model toy-tokenizer --out %s/d1 --device tpu 2>%s/d1.log", dir, dir), 2);
    char p[600];
    snprintf(p, sizeof p, "%s/d1.log", dir);
    char *msg = test_read_file(p, NULL);
    cr_expect(msg && strstr(msg, "--device must be cpu, cuda or cuda:N"), "message: %s", msg ? msg : "");
    free(msg);
    if (device_cuda_count() > 0) return;   // a GPU here: run.sh's toy_gpu part trains on it
    cr_expect_eq(test_sh("bin/train --model toy-flow --store %s/store --out %s/d2 --device cuda 2>%s/d2.log", dir,
                         dir, dir), 2);
    snprintf(p, sizeof p, "%s/d2.log", dir);
    msg = test_read_file(p, NULL);
    cr_expect(msg && strstr(msg, "--device cuda") && (strstr(msg, "no GPU") || strstr(msg, "no CUDA support")),
              "message: %s", msg ? msg : "");
    free(msg);
    snprintf(p, sizeof p, "%s/d2", dir);
    cr_expect(access(p, F_OK) != 0, "%s was created by a refused run", p);
}
