// test_stage_flags.c: the stage executables' flag checks (stages/common/
// flags.h) as a user meets them. Numbers that used to wrap to something
// runnable (`sample --n 4294967297` ran one job; --steps, --job-size,
// --iters, --n-true, --sources likewise) or to allocate gigabytes before
// failing (`--width 1e8`-sized widths) exit 2 at once with one line naming
// the flag, before any socket, file or model is touched. `--device cuda`
// without a GPU is a usage error with a clear message; `--bind-any` is the
// only way to bind a non-loopback tcp address.
// Needs bin/ built (make); skips otherwise.
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nn/device.h"
#include "tests/util.h"

static char *dir;

static void need_bins(void) {
    const char *b[] = {"bin/train", "bin/encode", "bin/sample", "bin/decode", "bin/eval"};
    for (int i = 0; i < 5; i++)
        if (access(b[i], X_OK)) cr_skip_test("%s not built (make)", b[i]);
}

static void setup(void) {
    dir = test_tmpdir("stage_flags");
}

static void teardown(void) {
    rm_rf(dir);
    free(dir);
}

// Runs `CMD 2>DIR/err` under sh; returns the exit status and leaves stderr
// in err (NUL-terminated, truncated to cap).
static int run(char *err, size_t cap, const char *fmt, ...) {
    char cmd[4096], path[600];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(path, sizeof path, "%s/err", dir);
    snprintf(cmd + n, sizeof cmd - (size_t)n, " </dev/null >/dev/null 2>%s", path);
    int rc = system(cmd);
    FILE *f = fopen(path, "r");
    size_t len = f ? fread(err, 1, cap - 1, f) : 0;
    err[len] = 0;
    if (f) fclose(f);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

// cmd with every "DIR" replaced by the test folder.
static void expand(char *cmd, size_t cap, const char *s) {
    size_t k = 0;
    while (*s && k + 600 < cap) {
        if (!strncmp(s, "DIR", 3)) { k += (size_t)snprintf(cmd + k, cap - k, "%s", dir); s += 3; }
        else cmd[k++] = *s++;
    }
    cmd[k] = 0;
}

typedef struct {
    const char *cmd;     // the stage invocation with one bad value
    const char *flag;    // what the message must name
} bad_case;

Test(stage_flags, wrapping_and_huge_numbers_exit_2_naming_the_flag, .init = setup, .fini = teardown) {
    need_bins();
    const bad_case cases[] = {
        {"bin/sample --model toy-flow --role source --n 4294967297 --jobs-bind ipc://@x --acks-bind ipc://@y "
         "--ctl-bind ipc://@z", "--n"},
        {"bin/sample --model toy-flow --role source --n 100 --job-size 4294967297 --jobs-bind ipc://@x "
         "--acks-bind ipc://@y --ctl-bind ipc://@z", "--job-size"},
        {"bin/sample --model toy-flow --exact --jobs ipc://@x --ctl ipc://@y --out ipc://@z --steps 4294967297", "--steps"},
        {"bin/sample --model toy-flow --exact --jobs ipc://@x --ctl ipc://@y --out ipc://@z --sources 4294967297",
         "--sources"},
        {"bin/sample --model toy-flow --exact --jobs ipc://@x --ctl ipc://@y --out ipc://@z", "--store"},
        {"bin/sample --model toy-flow --exact --exact-coords raw --store DIR/s --jobs ipc://@x --ctl ipc://@y "
         "--out ipc://@z", "--store"},
        {"bin/sample --model toy-flow --exact --exact-coords data --jobs ipc://@x --ctl ipc://@y --out ipc://@z",
         "--exact-coords"},
        {"bin/sample --model toy-flow --role source --n 10 --seed 4294967297 --jobs-bind ipc://@x "
         "--acks-bind ipc://@y --ctl-bind ipc://@z", "--seed"},
        {"bin/train --model toy-tokenizer --out DIR/t --iters 4294967297", "--iters"},
        {"bin/train --model toy-tokenizer --out DIR/t --width 100000000", "--width"},
        {"bin/train --model toy-tokenizer --out DIR/t --width 12abc", "--width"},
        {"bin/train --model toy-tokenizer --out DIR/t --lr -1", "--lr"},
        {"bin/train --model toy-flow --store DIR/s --out DIR/t --ema 1", "--ema"},
        {"bin/train --model vae --out DIR/t --steps 4294967297", "--steps"},
        {"bin/train --model vae --out DIR/t --beta nan", "--beta"},
        {"bin/train --model vae --out DIR/t --recon-reduction median", "--recon-reduction"},
        {"bin/train --model vae --out DIR/t --seed -1", "--seed"},
        {"bin/train --model classifier --out DIR/t --batch 0", "--batch"},
        {"bin/train --model classifier --out DIR/t --shift 5", "--shift"},
        {"bin/train --model classifier --out DIR/t --init DIR/none.safetensors", "--init"},
        {"bin/eval --model toy --in ipc://@x --ctl ipc://@y --acks ipc://@z --out DIR/e --n-true 4294967297", "--n-true"},
        {"bin/eval --model toy --in ipc://@x --ctl ipc://@y --acks ipc://@z --out DIR/e --sources -1", "--sources"},
        {"bin/eval --model vae --ckpt DIR/none --out DIR/e --n 4294967297", "--n"},
        {"bin/decode --model toy --identity --in ipc://@x --ctl ipc://@y --out ipc://@z --sources 4294967297", "--sources"},
        {"bin/decode --model vae --ckpt DIR/none --store DIR/s --out DIR/d --n 4294967297", "--n"},
        {"bin/encode --model toy --identity --store DIR/s --n 4294967297", "--n"},
        {"bin/encode --model vae --ckpt DIR/none --store DIR/s --first -1", "--first"},
        {"bin/encode --model vae --ckpt DIR/none --store DIR/s --batch 4294967297", "--batch"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char cmd[2048], err[2048];
        expand(cmd, sizeof cmd, cases[i].cmd);
        int rc = run(err, sizeof err, "%s", cmd);
        cr_expect_eq(rc, 2, "rc %d for: %s\nstderr: %s", rc, cmd, err);
        char want[64];
        snprintf(want, sizeof want, " %s ", cases[i].flag);
        cr_expect(strstr(err, want) != NULL, "message does not name %s: %s\ncmd: %s", cases[i].flag, err, cmd);
        cr_expect(strchr(err, '\n') == strrchr(err, '\n'), "more than one line for %s: %s", cmd, err);
    }
    // Nothing was created by the refused runs.
    char p[700];
    snprintf(p, sizeof p, "%s/t", dir);
    cr_expect(access(p, F_OK) != 0, "%s created by a refused run", p);
}

Test(stage_flags, device_cuda_without_gpu_is_a_usage_error, .init = setup, .fini = teardown) {
    need_bins();
    if (device_cuda_count() > 0) cr_skip_test("a GPU is present");
    char err[2048];
    int rc = run(err, sizeof err, "bin/train --model toy-tokenizer --out %s/t --device cuda", dir);
    cr_expect_eq(rc, 2, "rc %d: %s", rc, err);
    cr_expect(strstr(err, "--device cuda") != NULL, "%s", err);
    rc = run(err, sizeof err, "bin/encode --model toy --identity --store %s/s --device tpu", dir);
    cr_expect_eq(rc, 2, "rc %d: %s", rc, err);
    cr_expect(strstr(err, "--device") != NULL, "%s", err);
}

// Loopback stays the default: eval refuses to bind tcp://0.0.0.0 without
// --bind-any (exit 2, a usage error naming the flag) and binds it with the
// flag (then gives up after --timeout-s 1 for want of items: a different
// message, after the socket was set up).
Test(stage_flags, bind_any_is_needed_for_non_loopback, .init = setup, .fini = teardown) {
    need_bins();
    char err[2048];
    int rc = run(err, sizeof err,
                 "bin/eval --model toy --in tcp://0.0.0.0:* --ctl ipc://%s/c --acks ipc://%s/a --out %s/e "
                 "--timeout-s 1 --no-figures", dir, dir, dir);
    cr_expect_eq(rc, 2, "rc %d: %s", rc, err);
    cr_expect(strstr(err, "cannot set up sockets") && strstr(err, "needs --bind-any") && strstr(err, "tcp://0.0.0.0:*"),
              "%s", err);
    rc = run(err, sizeof err,
             "bin/eval --model toy --in tcp://0.0.0.0:* --ctl ipc://%s/c --acks ipc://%s/a --out %s/e "
             "--timeout-s 1 --no-figures --bind-any", dir, dir, dir);
    cr_expect_eq(rc, 1, "rc %d: %s", rc, err);
    cr_expect(strstr(err, "cannot set up sockets") == NULL, "bind refused with --bind-any: %s", err);
    cr_expect(strstr(err, "nothing arrived") != NULL, "%s", err);
}

// One exit-code convention in every stage (issue 15 item 11; docs/ARCHITECTURE.md
// "Errors"): 2 for usage and input errors (flags, endpoints, missing or
// malformed input files), 1 for runtime failures (nothing arrived, the
// sources went away). Each message names what is wrong once: a bad port is
// called a bad port, and a checkpoint's path is not printed twice.
typedef struct {
    const char *cmd;
    int rc;
    const char *says;    // a substring of the message
} exit_case;

Test(stage_flags, exit_codes_follow_one_convention, .init = setup, .fini = teardown) {
    need_bins();
    char junk[700];
    snprintf(junk, sizeof junk, "%s/junk.safetensors", dir);
    FILE *f = fopen(junk, "wb");
    cr_assert_not_null(f);
    for (int i = 0; i < 3000; i++) fputc((i * 7919) & 0xff, f);   // not a safetensors file
    fclose(f);
    // A VAE checkpoint whose header passes the config check (f4c4, 1-channel
    // conv_in / conv_out) but that lacks every other tensor: malformed input.
    snprintf(junk, sizeof junk, "%s/partial.safetensors", dir);
    f = fopen(junk, "wb");
    cr_assert_not_null(f);
    char hdr[256];
    int hn = snprintf(hdr, sizeof hdr,
                      "{\"__metadata__\":{\"vae.config\":\"f4c4\"},"
                      "\"encoder.conv_in.weight\":{\"dtype\":\"F32\",\"shape\":[8,1,3,3],\"data_offsets\":[0,288]},"
                      "\"decoder.conv_out.weight\":{\"dtype\":\"F32\",\"shape\":[1,8,3,3],\"data_offsets\":[288,576]}}");
    const uint64_t hlen = (uint64_t)hn;
    cr_assert_eq(fwrite(&hlen, 8, 1, f), 1);   // little-endian host (x86-64, arm64)
    cr_assert_eq(fwrite(hdr, 1, (size_t)hn, f), (size_t)hn);
    for (int i = 0; i < 576; i++) fputc(0, f);
    fclose(f);
    const exit_case cases[] = {
        {"bin/sample --model toy-flow --role source --n 10 --jobs-bind tcp://127.0.0.1:99999 --acks-bind ipc://DIR/a "
         "--ctl-bind ipc://DIR/c", 2, "bad tcp port"},
        {"bin/eval --model toy --in tcp://127.0.0.1:abc --ctl ipc://DIR/c --acks ipc://DIR/a --out DIR/e", 2,
         "bad tcp port"},
        {"bin/decode --model toy --identity --in tcp://10.1.2.3:5555 --ctl ipc://DIR/c --out ipc://DIR/p", 2,
         "needs --bind-any"},
        {"bin/sample --model toy-flow --exact --exact-coords raw --jobs tcp://127.0.0.1:0 --ctl ipc://DIR/c "
         "--out ipc://DIR/l", 2, "bad tcp port"},
        {"bin/sample --model toy-flow --ckpt DIR/missing.safetensors --jobs ipc://DIR/j --ctl ipc://DIR/c "
         "--out ipc://DIR/l", 2, "not found"},
        {"bin/sample --model toy-flow --ckpt DIR/junk.safetensors --jobs ipc://DIR/j --ctl ipc://DIR/c "
         "--out ipc://DIR/l", 2, "checkpoint"},
        {"bin/sample --model dit --ckpt DIR/junk.safetensors --jobs ipc://DIR/j --ctl ipc://DIR/c --out ipc://DIR/l",
         2, "checkpoint"},
        {"bin/train --model classifier --data DIR --out DIR/t", 2, "not found"},
        {"bin/eval --model vae --ckpt DIR/junk --data DIR --out DIR/e", 2, "checkpoint"},
        {"bin/eval --model vae --ckpt DIR/partial --out DIR/e --n 4", 2, "tensor missing"},
        {"bin/encode --model vae --ckpt DIR/partial --store DIR/st --end 4", 2, "tensor missing"},
        {"bin/decode --model vae --ckpt DIR/partial --store DIR/st --out DIR/d", 2, "tensor missing"},
        {"bin/store-info DIR/missing", 2, "not an LMDB"},
        {"bin/eval --model toy --in ipc://DIR/i --ctl ipc://DIR/c --acks ipc://DIR/a --out DIR/e --timeout-s 1", 1,
         "nothing arrived"},
        {"bin/sample --model toy-flow --exact --exact-coords raw --jobs ipc://DIR/j --ctl ipc://DIR/c "
         "--out ipc://DIR/l --idle-s 1", 1, "idle"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char cmd[2048], err[2048];
        expand(cmd, sizeof cmd, cases[i].cmd);
        int rc = run(err, sizeof err, "%s", cmd);
        cr_expect_eq(rc, cases[i].rc, "rc %d (want %d) for: %s\nstderr: %s", rc, cases[i].rc, cmd, err);
        cr_expect(strstr(err, cases[i].says) != NULL, "message without '%s': %s\ncmd: %s", cases[i].says, err, cmd);
        const char *p = strstr(err, "junk.safetensors");
        cr_expect(!p || !strstr(p + 1, "junk.safetensors"), "path printed twice: %s", err);
    }
}
