// test_train_dit_flags.c: `train --model dit` parses its command line with
// stages/common/flags.h: every flag of --help is accepted, numbers outside
// their range, bad choices and bad --device names exit 2 with one line naming
// the flag, before anything is read or written; --device cuda is refused only
// where it cannot work (no GPU, Muon), else accepted.
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nn/device.h"
#include "tests/util.h"

#define TRAIN "OMP_NUM_THREADS=1 bin/train --model dit "

static void need_bin(void) { cr_assert_eq(access("bin/train", X_OK), 0, "bin/train not built (make)"); }

// Runs train with args (no cache at d/none, --out d/out); returns the exit
// code; stderr in d/err.
static int run(const char *d, const char *args) {
    return test_sh(TRAIN "--store %s/none --out %s/out %s > /dev/null 2> %s/err", d, d, args, d);
}

// 1 when d/err contains s.
static int err_has(const char *d, const char *s) {
    char path[1024], buf[4096];
    snprintf(path, sizeof path, "%s/err", d);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strstr(buf, s) != NULL;
}

Test(train_dit_flags, out_of_range_and_bad_values_exit_2_naming_the_flag) {
    need_bin();
    char *d = test_tmpdir("dit_flags");
    static const char *cases[][2] = {
        {"--steps -3", "--steps must be an integer in [1, "},
        {"--steps 2.5", "--steps must be an integer"},
        {"--batch 0", "--batch must be an integer in [1, 65536]"},
        {"--batch 4294967297", "--batch must be an integer"},
        {"--depth 0", "--depth must be an integer in [1, 256]"},
        {"--width 70000", "--width must be an integer"},
        {"--heads -1", "--heads must be an integer"},
        {"--patch 65", "--patch must be an integer"},
        {"--num-classes 0", "--num-classes must be an integer"},
        {"--sample-steps 10001", "--sample-steps must be an integer in [1, 10000]"},
        {"--sample-every -1", "--sample-every must be an integer"},
        {"--ckpt-every 0", "--ckpt-every must be an integer"},
        {"--log-every 0", "--log-every must be an integer"},
        {"--warmup -1", "--warmup must be an integer"},
        {"--seed -1", "--seed must be an integer"},
        {"--lr 0", "--lr must be a number"},
        {"--lr nan", "--lr must be a number"},
        {"--beta1 1", "--beta1 must be a number in [0, 1)"},
        {"--beta2 -0.1", "--beta2 must be a number"},
        {"--wd -1", "--wd must be a number"},
        {"--clip -1", "--clip must be a number"},
        {"--ema 1", "--ema must be a number in [0, 1)"},
        {"--ema-halflife -2", "--ema-halflife must be a number"},
        {"--label-drop 1.5", "--label-drop must be a number in [0, 1]"},
        {"--cos-weight -1", "--cos-weight must be a number"},
        {"--time-limit -1", "--time-limit must be a number"},
        {"--progress 0", "--progress must be a number"},
        {"--time normal", "--time must be uniform or logit-normal, not 'normal'"},
        {"--flip maybe", "--flip must be auto, on or off, not 'maybe'"},
        {"--optimizer adam", "--optimizer must be adamw or muon, not 'adam'"},
        {"--device cuda:99999", "--device 'cuda:99999'"},
        {"--bf16", "--bf16 is for --device cuda"},
        {"--device cpu --bf16", "--bf16 is for --device cuda"},
        {"--device tpu", "--device 'tpu'"},
        {"--preset XXL", "unknown --preset 'XXL'"},
        {"--no-such-flag", "unknown or incomplete option '--no-such-flag'"},
        {"stray", "unexpected argument 'stray'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int rc = run(d, cases[i][0]);
        cr_expect_eq(rc, 2, "%s: exit %d, want 2", cases[i][0], rc);
        cr_expect(err_has(d, "train: ") && err_has(d, cases[i][1]), "%s: stderr lacks \"%s\"", cases[i][0],
                  cases[i][1]);
        cr_expect_eq(test_sh("test $(wc -l < %s/err) -eq 1", d), 0, "%s: not one line", cases[i][0]);
    }
    struct stat sb;
    cr_expect_neq(stat(d, &sb), -1);
    char out[1024];
    snprintf(out, sizeof out, "%s/out", d);
    cr_expect_eq(stat(out, &sb), -1, "a refused command created --out");
    rm_rf(d);
    free(d);
}

// --device cuda: without a usable GPU (this build, this machine) exit 2 naming
// what is missing; with one, the flag is accepted and the run stops at the
// missing cache.
Test(train_dit_flags, device_cuda_refused_only_without_a_gpu) {
    need_bin();
    char *d = test_tmpdir("dit_flags_cuda");
    cr_expect_eq(run(d, "--device cuda"), 2);
    if (device_cuda_count() > 0)
        cr_expect(err_has(d, "train: no latent cache at "), "--device cuda refused with a GPU present");
    else
        cr_expect(err_has(d, "train: --device cuda: "), "no reason given for refusing --device cuda");
    rm_rf(d);
    free(d);
}

// Good values of every flag pass the parser: the run stops at the missing
// cache (exit 2, "no latent cache"), not at a flag.
Test(train_dit_flags, every_flag_accepted_in_range) {
    need_bin();
    char *d = test_tmpdir("dit_flags_ok");
    const char *all = "--preset S --depth 2 --width 32 --heads 2 --patch 1 --qk-norm --num-classes 10 "
                      "--time uniform --label-drop 0 --cos-weight 0 --flip off --batch 8 --steps 1 --lr 1e-3 "
                      "--warmup 0 --optimizer muon --beta1 0 --beta2 0.999 --wd 0.1 --clip 0 --ema 0 "
                      "--ema-halflife 3 --seed 18446744073709551615 --time-limit 0 --ckpt-every 1 "
                      "--sample-every 0 --sample-steps 10000 --tokenizer /x/tok --log-every 1 --progress 0.5 "
                      "--resume --device cpu --flip=auto --steps=1099511627776";
    cr_expect_eq(run(d, all), 2);
    cr_expect(err_has(d, "train: no latent cache at "), "a good flag was refused");
    rm_rf(d);
    free(d);
}

// --help names every flag the table holds (and exits 0); --list-presets runs.
Test(train_dit_flags, help_lists_every_flag) {
    need_bin();
    char *d = test_tmpdir("dit_flags_help");
    cr_assert_eq(test_sh(TRAIN "--help > %s/help", d), 0);
    static const char *names[] = {"store", "out", "preset", "depth", "width", "heads", "patch", "qk-norm",
                                  "num-classes", "list-presets", "time", "label-drop", "cos-weight", "flip",
                                  "batch", "steps", "lr", "warmup", "optimizer", "beta1", "beta2", "wd", "clip",
                                  "ema", "ema-halflife", "seed", "time-limit", "ckpt-every", "sample-every",
                                  "sample-steps", "tokenizer", "log-every", "progress", "resume", "device"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        cr_expect_eq(test_sh("grep -qE -- '--%s( |$)' %s/help", names[i], d), 0, "--help lacks --%s", names[i]);
    cr_expect_eq(test_sh(TRAIN "--list-presets | grep -q '^XL/2 '"), 0);
    rm_rf(d);
    free(d);
}
