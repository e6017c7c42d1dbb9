// test_device_script.c: the logic of tests/device/run.sh (the GPU machine's
// one script) checked on the CPU: --dry-run runs its self-test (part
// statuses, per-part timeouts, "not built", PyTorch's library path kept free
// of our private packages, the glibc reading of carried packages) and writes
// a summary naming every part; without --dry-run on a machine with no GPU it
// must fail loudly instead of passing with everything skipped; bad options
// exit 2; the time budget turns parts into "no time left"; the summary's
// parity table takes the worst error per op and reports the attention T
// values the log does not cover. Nothing here needs a GPU.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/util.h"

// Runs a shell command; its exit status and combined output (truncated to cap).
static int sh(const char *cmd, char *out, size_t cap) {
    char full[2048];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    cr_assert(p, "cannot run %s", cmd);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    char sink[4096];
    while (fread(sink, 1, sizeof sink, p) > 0) {}
    int st = pclose(p);
    cr_assert(WIFEXITED(st), "%s did not exit normally", cmd);
    return WEXITSTATUS(st);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    cr_assert(f, "cannot read %s", path);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static const char *parts[] = {"build", "toy_gpu", "parity", "dit_step_ours", "dit_step_torch", "sampler_cfg",
                              "vae_decode", "inception", "nccl_dp", "full_pipeline", "op_speed_ours",
                              "op_speed_torch"};

Test(device_script, dry_run_checks_itself_and_lists_every_part) {
    char *dir = test_tmpdir("devdry"), cmd[1200], out[1 << 16], path[1200];
    snprintf(cmd, sizeof cmd, "OUT='%s' tests/device/run.sh --dry-run", dir);
    int rc = sh(cmd, out, sizeof out);
    cr_assert_eq(rc, 0, "dry run failed (%d):\n%s", rc, out);
    cr_assert(strstr(out, "self-test: part statuses, timeouts, not-built"), "no self-test line:\n%s", out);
    snprintf(path, sizeof path, "%s/summary.md", dir);
    const char *s = slurp(path);
    cr_assert(strstr(s, "DRY RUN"), "%s", s);
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        char row[64];
        snprintf(row, sizeof row, "| %s | ", parts[i]);
        const char *r = strstr(s, row);
        cr_assert(r, "part %s missing from the summary:\n%s", parts[i], s);
        // Every row says "dry run" or "not built (FILE missing)", never nothing.
        r += strlen(row);
        cr_assert(!strncmp(r, "dry run |", 9) || !strncmp(r, "not built (", 11), "row %s: %.80s", parts[i], r);
    }
    // A part whose program does not exist is named as not built.
    if (access("pipelines/full.sh", F_OK) != 0)
        cr_assert(strstr(s, "| full_pipeline | not built (pipelines/full.sh missing) |"), "%s", s);
    // The self-test's synthetic parts do not leak into the real table.
    cr_assert(!strstr(s, "selftest_"), "%s", s);
    rm_rf(dir);
    free(dir);
}

Test(device_script, fails_loudly_without_a_gpu) {
    char out[1 << 14];
    if (sh("nvidia-smi -L", out, sizeof out) == 0 && strstr(out, "GPU"))
        cr_skip("this machine has a GPU: a full run is not a unit test");
    char *dir = test_tmpdir("devnogpu"), cmd[1200], path[1200];
    snprintf(cmd, sizeof cmd, "OUT='%s' tests/device/run.sh", dir);
    int rc = sh(cmd, out, sizeof out);
    cr_assert_eq(rc, 1, "expected exit 1 without a GPU, got %d:\n%s", rc, out);
    cr_assert(strstr(out, "no GPU found") || strstr(out, "no nvcc"), "no plain message:\n%s", out);
    snprintf(path, sizeof path, "%s/summary.md", dir);
    cr_assert(strstr(slurp(path), "NOT RUN"), "the summary must say so too");
    rm_rf(dir);
    free(dir);
}

Test(device_script, usage_errors_exit_2) {
    char out[4096];
    cr_assert_eq(sh("OUT=/tmp/vel-devusage tests/device/run.sh --no-such-flag", out, sizeof out), 2, "%s", out);
    cr_assert_eq(sh("OUT=/tmp/vel-devusage tests/device/run.sh --budget 0", out, sizeof out), 2, "%s", out);
    cr_assert_eq(sh("OUT=/tmp/vel-devusage tests/device/run.sh --only parity,nope", out, sizeof out), 2, "%s", out);
    cr_assert(strstr(out, "unknown part 'nope'"), "%s", out);
    cr_assert_eq(sh("tests/device/run.sh --help", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "--dry-run"), "%s", out);
}

// A budget smaller than a part's limit stops that part from starting; a run
// with such a part exits 1, and --only keeps the other parts out.
Test(device_script, budget_turns_parts_into_no_time_left) {
    char *dir = test_tmpdir("devbudget"), cmd[1200], out[1 << 15], path[1200];
    snprintf(cmd, sizeof cmd, "OUT='%s' tests/device/run.sh --dry-run --only dit_step_ours,dit_step_torch --budget 100",
             dir);
    int rc = sh(cmd, out, sizeof out);
    cr_assert_eq(rc, 1, "expected 1, got %d:\n%s", rc, out);
    snprintf(path, sizeof path, "%s/summary.md", dir);
    const char *s = slurp(path);
    cr_assert(strstr(s, "| build | no time left |"), "%s", s);          // limit 150 > 100
    cr_assert(strstr(s, "| dit_step_ours | dry run |"), "%s", s);        // limit 45 fits
    cr_assert(strstr(s, "| dit_step_torch | no time left |"), "%s", s);  // limit 120 > 100
    cr_assert(!strstr(s, "| parity |"), "--only must leave parity out:\n%s", s);
    cr_assert(!strstr(s, "| sampler_cfg |"), "--only must leave other parts out:\n%s", s);
    rm_rf(dir);
    free(dir);
}

Test(device_script, parity_table_takes_the_worst_error_and_names_missing_t) {
    char *dir = test_tmpdir("devparity"), path[1200], cmd[1400], out[1 << 14];
    snprintf(path, sizeof path, "%s/parity.log", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs("[----] tests/cuda/test_parity_transformer.c:120: attention fwd T=16: n=100 max_abs=1e-06 max_rel=2e-05 nmse=1e-12\n"
          "[----] attention fwd T=16: n=100 max_abs=3e-06 max_rel=1e-05 nmse=nan\n"
          "[----] attention fwd T=256: n=9 max_abs=1e-07 max_rel=1e-07 nmse=1e-14\n"
          "[----] linear bwd (bf16): n=10 max_abs=0.01 max_rel=0.001 nmse=1e-06\n"
          "[====] Synthesis: Tested: 3 | Passing: 2 | Failing: 1 | Crashing: 0\n",
          f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/device/summarize.py parity '%s'", path);
    cr_assert_eq(sh(cmd, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "tests: 2 passed, 1 failed, 0 crashed"), "%s", out);
    // Worst of the two T=16 lines per column; a NaN is the worst of all.
    cr_assert(strstr(out, "| attention fwd T=16 | 2 | 3e-06 | 2e-05 | nan |"), "%s", out);
    cr_assert(strstr(out, "| linear bwd (bf16) | 1 | 0.01 | 0.001 | 1e-06 |"), "%s", out);
    cr_assert(strstr(out, "attention checked at T = 16, 256; NOT checked at T = 64, 1024"), "%s", out);
    rm_rf(dir);
    free(dir);
}
