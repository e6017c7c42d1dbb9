// test_launch.c: pipelines/launch/gen.sh, the generation-graph launcher
// (source -> samplers -> decoders -> eval sink as separate processes), on a
// random tiny DiT and tokenizer (launch_fixture.h):
//   - the plain local launch (1 sampler, 1 decoder, ipc), an Open MPI MPMD
//     launch over tcp on localhost with 2 samplers and 2 decoders, the Slurm
//     plan run by a stand-in srun (which reads the multi-prog file and the
//     SLURM_HOSTFILE as srun does and sets SLURM_PROCID), and a local run
//     whose first sampler dies after its first job all give byte-identical
//     samples.npz and class grids;
//   - --dry-run prints every rank's command with endpoints derived from the
//     rank table (a non-loopback host binds with --bind-any);
//   - bad options exit 2 with a message, before anything starts;
//   - a run interrupted with SIGTERM leaves no stage process behind.
// The mpirun part skips (with the reason) when mpirun is not installed
// (scripts/deps.sh installs openmpi-bin).
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/pipelines/launch_fixture.h"

static char *dir;

static void setup(void) {
    cr_assert(access("bin/sample", X_OK) == 0 && access("bin/decode", X_OK) == 0 && access("bin/eval", X_OK) == 0,
              "bin/sample, bin/decode, bin/eval missing: run make first");
    dir = test_tmpdir("launch");
    lfx_make(dir);
}

static void teardown(void) {
    if (getenv("VEL_TEST_KEEP")) cr_log_info("kept %s", dir);   // for looking at the logs
    else rm_rf(dir);
    free(dir);
}

// The graph's common options: 40 images in 10 jobs, 2 Euler steps with
// guidance, one thread per stage.
#define GEN "pipelines/launch/gen.sh --dit %s/dit.safetensors --tokenizer %s/tok --store %s/store --n 40 " \
            "--job-size 4 --seed 5 --threads 1 --sample-args '--steps 2 --cfg 1.5 --batch 4' "

// The end of DIR/name and of every rank's log, for failure messages.
static const char *tail_of(const char *name) {
    static char buf[4096];
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "tail -c 2000 %s/%s 2>&1; for f in %s/*/logs/*.log; do echo \"== $f\"; tail -n 3 $f; done",
             dir, name, dir);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(buf, 1, sizeof buf - 1, p) : 0;
    buf[n] = 0;
    if (p) pclose(p);
    return buf;
}

static void same_outputs(const char *a, const char *b) {
    const char *files[] = {"samples.npz", "grid_class_0.png", "grid_class_9.png"};
    for (int i = 0; i < 3; i++) {
        char pa[800], pb[800];
        snprintf(pa, sizeof pa, "%s/%s/%s", dir, a, files[i]);
        snprintf(pb, sizeof pb, "%s/%s/%s", dir, b, files[i]);
        cr_assert(access(pa, R_OK) == 0 && access(pb, R_OK) == 0, "%s or %s missing", pa, pb);
        cr_assert(test_files_equal(pa, pb), "%s differs between the %s and %s launches", files[i], a, b);
    }
}

// Items a stage reported in its log ("decoded N items" / "answered N").
static int log_count(const char *run, const char *glob, const char *word) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cat %s/%s/logs/%s 2>/dev/null | grep -o '%s [0-9]*' | awk '{s+=$2} END{print s+0}'",
             dir, run, glob, word);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) { if (fscanf(p, "%d", &n) != 1) n = -1; pclose(p); }
    return n;
}

static void write_fake_srun(void) {
    char p[700];
    snprintf(p, sizeof p, "%s/bin", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/bin/srun", dir);
    FILE *f = fopen(p, "w");
    cr_assert(f);
    // srun --ntasks=N --distribution=arbitrary [...] --multi-prog CONF: task t
    // runs the first CONF line whose task list ("*", "t", "a-b") holds t, with
    // %t replaced, SLURM_PROCID=t; the host list must have N lines.
    fputs("#!/usr/bin/env bash\n"
          "n=; conf=; dist=; prev=\n"
          "for a in \"$@\"; do case $a in --ntasks=*) n=${a#*=} ;; --distribution=*) dist=${a#*=} ;; esac;\n"
          "  [ \"$prev\" = --multi-prog ] && conf=$a; prev=$a; done\n"
          "[ -n \"$n\" ] && [ -r \"$conf\" ] && [ \"$dist\" = arbitrary ] || { echo 'fake srun: bad args' >&2; exit 9; }\n"
          "[ \"$(wc -l <\"$SLURM_HOSTFILE\")\" = \"$n\" ] || { echo 'fake srun: host list size' >&2; exit 9; }\n"
          "pids=()\n"
          "for ((t = 0; t < n; t++)); do\n"
          "  cmd=$(awk -v t=$t '{ split($1, r, \"-\"); if ($1 == \"*\" || $1 == t || (r[2] != \"\" && t >= r[1] && t <= r[2])) {"
          " $1 = \"\"; print; exit } }' \"$conf\")\n"
          "  SLURM_PROCID=$t bash -c \"${cmd//%t/$t}\" & pids+=($!)\n"
          "done\n"
          "rc=0; for p in \"${pids[@]}\"; do wait $p || rc=1; done; exit $rc\n",
          f);
    fclose(f);
    chmod(p, 0755);
}

Test(launch, same_bytes_local_mpirun_slurm_and_a_dead_sampler, .init = setup, .fini = teardown, .timeout = 300) {
    double t0 = vel_now();
    int rc = test_sh(GEN "--out %s/local >%s/local.log 2>&1", dir, dir, dir, dir, dir);
    cr_assert_eq(rc, 0, "local launch failed:\n%s", tail_of("local.log"));
    double t_local = vel_now() - t0;

    // A sampler that dies after its first job (exit 3): survived, same bytes
    // (its job comes back after the 1 s deadline).
    t0 = vel_now();
    rc = test_sh("SAMPLE_CMD_0='%s/bin/sample --die-after 1' " GEN "--samplers 2 --source-args '--deadline-ms 1000' --out %s/dead >%s/dead.log 2>&1",
                 getcwd((char[600]){0}, 600), dir, dir, dir, dir, dir);
    cr_assert_eq(rc, 0, "launch with a dying sampler failed:\n%s", tail_of("dead.log"));
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "grep -q 'died (exit 3)' %s/dead/logs/rank2-sample0.log", dir);
    cr_assert_eq(system(cmd), 0, "sampler 0 did not die as asked");
    same_outputs("local", "dead");
    double t_dead = vel_now() - t0;

    // The Slurm plan under a stand-in srun (tcp on localhost, 2 + 2).
    write_fake_srun();
    int port = test_free_ports(6);
    t0 = vel_now();
    rc = test_sh("PATH=%s/bin:$PATH SLURM_JOB_ID=1 " GEN "--launcher slurm --samplers 2 --decoders 2 --port-base %d "
                 "--out %s/slurm >%s/slurm.log 2>&1", dir, dir, dir, dir, port, dir, dir);
    cr_assert_eq(rc, 0, "slurm plan failed:\n%s", tail_of("slurm.log"));
    same_outputs("local", "slurm");
    double t_slurm = vel_now() - t0;

    if (test_sh("command -v mpirun >/dev/null") != 0)
        cr_skip_test("mpirun not installed (scripts/deps.sh installs openmpi-bin): the local, slurm-plan and "
                     "dead-sampler launches agreed; the mpirun launch was not run");
    port = test_free_ports(6);
    const char *root = getuid() == 0 ? "--allow-run-as-root" : "";
    t0 = vel_now();
    rc = test_sh(GEN "--launcher mpirun --hosts localhost --transport tcp --samplers 2 --decoders 2 --port-base %d "
                 "--mpirun-args '%s' --out %s/mpirun >%s/mpirun.log 2>&1", dir, dir, dir, port, root, dir, dir);
    cr_assert_eq(rc, 0, "mpirun launch failed:\n%s", tail_of("mpirun.log"));
    same_outputs("local", "mpirun");
    double t_mpi = vel_now() - t0;
    // Endpoints came from the rank table: tcp on 127.0.0.1 at the given ports.
    snprintf(cmd, sizeof cmd, "grep -q 'tcp://127.0.0.1:%d' %s/mpirun/logs/rank1-source0.log && "
             "grep -q 'tcp://127.0.0.1:%d' %s/mpirun/logs/rank5-decode1.log", port, dir, port + 5, dir);
    cr_assert_eq(system(cmd), 0, "the mpirun ranks did not use the planned tcp endpoints");
    cr_log_info("launch: local 1+1 %.1f s, local 2+1 with a dead sampler %.1f s, slurm plan 2+2 %.1f s, "
                "mpirun 2+2 tcp %.1f s; mpirun decoders decoded %d items (%d + %d)", t_local, t_dead, t_slurm, t_mpi,
                log_count("mpirun", "rank*-decode*.log", "decoded"), log_count("mpirun", "rank4-decode0.log", "decoded"),
                log_count("mpirun", "rank5-decode1.log", "decoded"));
}

// --dry-run: the plan's commands, endpoints from the rank table.
Test(launch, dry_run_prints_the_ranks, .init = setup, .fini = teardown) {
    int rc = test_sh(GEN "--launcher mpirun --hosts nodeA,nodeB --samplers 3 --decoders 2 --port-base 31000 "
                     "--eval-args \"--title 'run 3' --per-class 2\" --out %s/dry --dry-run >%s/dry.log 2>&1", dir, dir,
                     dir, dir, dir);
    cr_assert_eq(rc, 0, "%s", tail_of("dry.log"));
    char cmd[1600];
    // 7 ranks; sink and source on nodeA binding every interface; samplers
    // then decoders round-robin from nodeA (A B A, then B A): decoder 0
    // (rank 5) on nodeB binds its port 31000 + 4 + 0; the samplers connect
    // to both decoders and to the source. A quoted --eval-args argument
    // stays one argument ('run 3', printed shell-quoted).
    snprintf(cmd, sizeof cmd,
             "f=%s/dry.log; [ $(grep -c '^rank ' $f) = 7 ] && "
             "grep '^rank 0 (eval 0 on nodeA)' $f | grep -F -- \"--in tcp://\\\\*:31003 \" | grep -- --bind-any | "
             "grep -q -F -- ' --title run\\ 3 --per-class 2' && "
             "grep '^rank 1 (source 0 on nodeA)' $f | grep -q -F -- \"--jobs-bind tcp://\\\\*:31000 \" && "
             "grep '^rank 3 (sample 1 on nodeB)' $f | grep -q -F -- '--jobs tcp://nodeA:31000 --ctl tcp://nodeA:31002 "
             "--out tcp://nodeB:31004,tcp://nodeA:31005' && "
             "grep '^rank 5 (decode 0 on nodeB)' $f | grep -q -F -- \"--in tcp://\\\\*:31004 --ctl tcp://nodeA:31002 "
             "--reply tcp://nodeA:31003 --bind-any\" && "
             "grep -q -- '-np 1 --host nodeB:2 ' %s/dry/launch/appfile && [ $(wc -l <%s/dry/launch/appfile) = 7 ] && "
             "[ $(wc -l <%s/dry/launch/slurm-hosts) = 7 ]",
             dir, dir, dir, dir);
    cr_assert_eq(system(cmd), 0, "plan not as documented:\n%s", tail_of("dry.log"));
}

// tcp ports inside the kernel's ephemeral range work but earn a note on
// stderr (a connection's local port there makes a bind fail); ports below
// it, and ipc, earn none. The highest base for 1 decoder, 65531, is accepted.
Test(launch, ports_in_the_ephemeral_range_noted, .init = setup, .fini = teardown) {
    int lo, hi;
    test_ephemeral_range(&lo, &hi);
    const struct { int port; const char *transport; int noted; } cases[] = {
        {lo, "tcp", 1}, {lo - 4, "tcp", 1}, {lo - 5, "tcp", 0}, {lo, "ipc", 0}, {65531, "tcp", 65531 <= hi},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (cases[i].port < 1024 || cases[i].port > 65531) continue;   // not a valid --port-base here
        int rc = test_sh(GEN "--transport %s --port-base %d --out %s/p --dry-run >%s/p.log 2>&1", dir, dir, dir,
                         cases[i].transport, cases[i].port, dir, dir);
        cr_assert_eq(rc, 0, "--port-base %d: exit %d\n%s", cases[i].port, rc, tail_of("p.log"));
        char cmd[800];
        snprintf(cmd, sizeof cmd, "grep -q 'overlap this host.s ephemeral range' %s/p.log", dir);
        cr_expect_eq(system(cmd) == 0, cases[i].noted, "--transport %s --port-base %d: note %s", cases[i].transport,
                     cases[i].port, cases[i].noted ? "missing" : "printed");
    }
}

Test(launch, bad_options_exit_2, .init = setup, .fini = teardown) {
    const char *bad[] = {
        "--samplers 0", "--decoders x", "--launcher pbs", "--transport udp", "--n -3", "--port-base 80",
        "--port-base 65532",   // with 1 decoder its last port would be 65536
        "--launcher mpirun --hosts a,b --transport ipc", "--hosts a", "--frobnicate", "--threads 0", "--seed -1",
        "--eval-args \"--title 'unbalanced\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = test_sh(GEN "--out %s/bad %s --dry-run >%s/bad.log 2>&1", dir, dir, dir, dir, bad[i], dir);
        cr_assert_eq(rc, 2, "'%s' gave exit %d, not 2", bad[i], rc);
        char cmd[800];
        snprintf(cmd, sizeof cmd, "grep -q '^gen.sh: ' %s/bad.log", dir);
        cr_assert_eq(system(cmd), 0, "'%s': no message", bad[i]);
    }
    // missing inputs
    cr_assert_eq(test_sh("pipelines/launch/gen.sh --dit %s/none --tokenizer %s/tok --store %s/store --out %s/o "
                         ">%s/bad.log 2>&1", dir, dir, dir, dir, dir), 2);
    cr_assert_eq(test_sh("pipelines/launch/gen.sh --dit %s/dit.safetensors --tokenizer %s/none --store %s/store "
                         "--out %s/o >%s/bad.log 2>&1", dir, dir, dir, dir, dir), 2);
    cr_assert_eq(test_sh("pipelines/launch/gen.sh --dit %s/dit.safetensors --tokenizer %s/tok --store %s "
                         "--out %s/o >%s/bad.log 2>&1", dir, dir, dir, dir, dir), 2);
    cr_assert_eq(test_sh("pipelines/launch/gen.sh --tokenizer %s/tok --store %s/store --out %s/o >%s/bad.log 2>&1",
                         dir, dir, dir, dir), 2);
    // a stage refusing its options (exit 2 from every sampler) fails the run at once
    int rc = test_sh(GEN "--sample-args '--method rk4' --out %s/refused >%s/bad.log 2>&1", dir, dir, dir, dir, dir);
    cr_assert_eq(rc, 1, "a refused sampler option gave exit %d:\n%s", rc, tail_of("bad.log"));
}

// Processes (other than this one) whose command line mentions this test's
// folder: every stage and wrapper gets paths in it.
static int stage_processes(void) {
    const char *want = dir;
    DIR *d = opendir("/proc");
    cr_assert(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0 || pid == (long)getpid()) continue;
        char path[64], buf[8192];
        snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        for (size_t i = 0; i < len; i++) if (!buf[i]) buf[i] = ' ';
        buf[len] = 0;
        n += strstr(buf, want) != NULL;
    }
    closedir(d);
    return n;
}

// SIGTERM to the launcher in the middle of a long run: every rank is
// terminated and reaped before it exits.
Test(launch, interrupted_run_leaves_no_process, .init = setup, .fini = teardown, .timeout = 120) {
    pid_t pid = test_spawn("exec pipelines/launch/gen.sh --dit %s/dit.safetensors --tokenizer %s/tok --store %s/store "
                           "--n 100000 --samplers 2 --decoders 2 --threads 1 --sample-args '--steps 50' --out %s/long "
                           ">%s/long.log 2>&1", dir, dir, dir, dir, dir);
    // Ready: the sink has written its first log line and every worker too.
    char cmd[800];
    snprintf(cmd, sizeof cmd, "[ $(ls %s/long/logs 2>/dev/null | wc -l) = 6 ]", dir);
    for (int i = 0; i < 600 && system(cmd) != 0; i++) usleep(100000);
    cr_assert_eq(system(cmd), 0, "the ranks did not start:\n%s", tail_of("long.log"));
    cr_assert_gt(stage_processes(), 0, "no stage process found running");
    kill(pid, SIGTERM);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) != 0, "an interrupted launch must not report success");
    int left = stage_processes();
    cr_assert_eq(left, 0, "%d stage processes outlived the launcher", left);
    snprintf(cmd, sizeof cmd, "grep -q interrupted %s/long.log", dir);
    cr_assert_eq(system(cmd), 0, "%s", tail_of("long.log"));
}
