// test_flags.c: stages/common/flags.c, the number/device/folder parsing of
// every stage. Values that used to wrap or pass with junk (2^32 + 1, 2^63,
// "-1" for a seed, "12abc", " 5", "1e8" for an integer) are refused with
// FLAG_EUSAGE and a message naming the flag; in-range values come back
// exactly; float ranges honour open and closed ends; mkdir -p creates every
// missing parent and refuses a file in the way.
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stages/common/flags.h"
#include "tests/util.h"

Test(flags, int_in_range_and_bounds) {
    int v = -7;
    cr_assert_eq(flag_int("t", "--n", "42", 1, 100, &v), 0);
    cr_assert_eq(v, 42);
    cr_assert_eq(flag_int("t", "--n", "1", 1, 100, &v), 0);
    cr_assert_eq(v, 1);
    cr_assert_eq(flag_int("t", "--n", "100", 1, 100, &v), 0);
    cr_assert_eq(v, 100);
    cr_assert_eq(flag_int("t", "--n", "+5", 1, 100, &v), 0);
    cr_assert_eq(v, 5);
    cr_assert_eq(flag_int("t", "--x", "-3", -5, 5, &v), 0);
    cr_assert_eq(v, -3);
    cr_assert_eq(flag_int("t", "--x", "2147483647", 0, INT_MAX, &v), 0);
    cr_assert_eq(v, INT_MAX);
}

Test(flags, int_refuses_wrap_junk_and_range) {
    const char *bad[] = {"4294967297", "4294967296", "2147483648", "9223372036854775808",
                         "99999999999999999999", "-1", "0", "101", "12abc", "1e8", "1.5", "", " 5", "5 ",
                         "0x10", "abc", "-", "+"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int v = 77;
        cr_assert_eq(flag_int("t", "--n", bad[i], 1, 100, &v), FLAG_EUSAGE, "'%s' accepted", bad[i]);
        cr_assert_eq(v, 77, "'%s' wrote the output", bad[i]);
    }
    int v = 77;
    cr_assert_eq(flag_int("t", "--n", NULL, 1, 100, &v), FLAG_EUSAGE);
}

Test(flags, i64_full_range) {
    int64_t v = 0;
    cr_assert_eq(flag_i64("t", "--first", "4294967297", 0, INT64_MAX, &v), 0);
    cr_assert_eq(v, 4294967297LL);
    cr_assert_eq(flag_i64("t", "--first", "9223372036854775807", 0, INT64_MAX, &v), 0);
    cr_assert_eq(v, INT64_MAX);
    cr_assert_eq(flag_i64("t", "--first", "9223372036854775808", 0, INT64_MAX, &v), FLAG_EUSAGE);
    cr_assert_eq(flag_i64("t", "--first", "-9223372036854775808", INT64_MIN, 0, &v), 0);
    cr_assert_eq(v, INT64_MIN);
    cr_assert_eq(flag_i64("t", "--first", "-9223372036854775809", INT64_MIN, 0, &v), FLAG_EUSAGE);
    cr_assert_eq(flag_i64("t", "--first", "-1", 0, INT64_MAX, &v), FLAG_EUSAGE);
}

Test(flags, u64_seed) {
    uint64_t v = 0;
    cr_assert_eq(flag_u64("t", "--seed", "18446744073709551615", &v), 0);
    cr_assert_eq(v, UINT64_MAX);
    cr_assert_eq(flag_u64("t", "--seed", "0", &v), 0);
    cr_assert_eq(v, 0);
    v = 5;
    const char *bad[] = {"18446744073709551616", "-1", "+1", " 1", "1x", "", "1e3"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(flag_u64("t", "--seed", bad[i], &v), FLAG_EUSAGE, "'%s' accepted", bad[i]);
    cr_assert_eq(v, 5);
}

Test(flags, floats_ranges_open_and_closed) {
    double d = 0;
    cr_assert_eq(flag_f64("t", "--lr", "1e-3", 0, INFINITY, FLAG_OPEN_LO, &d), 0);
    cr_assert_eq(d, 1e-3);
    cr_assert_eq(flag_f64("t", "--lr", "0", 0, INFINITY, FLAG_OPEN_LO, &d), FLAG_EUSAGE);
    cr_assert_eq(flag_f64("t", "--w", "0", 0, INFINITY, 0, &d), 0);
    cr_assert_eq(d, 0.0);
    cr_assert_eq(flag_f64("t", "--ema", "0.999", 0, 1, FLAG_OPEN_HI, &d), 0);
    cr_assert_eq(d, 0.999);
    cr_assert_eq(flag_f64("t", "--ema", "1", 0, 1, FLAG_OPEN_HI, &d), FLAG_EUSAGE);
    cr_assert_eq(flag_f64("t", "--p", "1", 0, 1, 0, &d), 0);
    cr_assert_eq(d, 1.0);
    cr_assert_eq(flag_f64("t", "--p", "-0.5", -1, 1, 0, &d), 0);
    cr_assert_eq(d, -0.5);
    d = 3;
    const char *bad[] = {"nan", "inf", "-inf", "1e400", "0.5x", "", " 0.5", "x", "-2", "2"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(flag_f64("t", "--p", bad[i], -1, 1, 0, &d), FLAG_EUSAGE, "'%s' accepted", bad[i]);
    cr_assert_eq(d, 3.0);
    float f = 0;
    cr_assert_eq(flag_f32("t", "--beta", "1e-6", 0, INFINITY, 0, &f), 0);
    cr_assert_eq(f, 1e-6f);
    cr_assert_eq(flag_f32("t", "--beta", "1e300", 0, INFINITY, 0, &f), FLAG_EUSAGE);   // finite double, inf float
    cr_assert_eq(f, 1e-6f);
}

Test(flags, message_names_stage_flag_and_value, .init = cr_redirect_stderr) {
    int v;
    cr_assert_eq(flag_int("sample", "--n", "4294967297", 1, 1000, &v), FLAG_EUSAGE);
    fflush(stderr);
    cr_assert_stderr_eq_str("sample: --n must be an integer in [1, 1000], not '4294967297'\n");
}

// An infinite bound is printed open: inf itself is never accepted.
Test(flags, infinite_bound_printed_open, .init = cr_redirect_stderr) {
    double d;
    cr_assert_eq(flag_f64("train", "--lr", "inf", 0, INFINITY, FLAG_OPEN_LO, &d), FLAG_EUSAGE);
    cr_assert_eq(flag_f64("train", "--wd", "-1", 0, INFINITY, 0, &d), FLAG_EUSAGE);
    cr_assert_eq(flag_f64("eval", "--x", "nan", -INFINITY, 1, 0, &d), FLAG_EUSAGE);
    fflush(stderr);
    cr_assert_stderr_eq_str("train: --lr must be a number in (0, inf), not 'inf'\n"
                            "train: --wd must be a number in [0, inf), not '-1'\n"
                            "eval: --x must be a number in (-inf, 1], not 'nan'\n");
}

Test(flags, device_names) {
    device_kind k = DEVICE_CUDA;
    int idx = 9;
    cr_assert_eq(flag_device("t", "cpu", &k, &idx), 0);
    cr_assert_eq(k, DEVICE_CPU);
    cr_assert_eq(flag_device("t", "cuda:1", &k, &idx), 0);
    cr_assert_eq(k, DEVICE_CUDA);
    cr_assert_eq(idx, 1);
    cr_assert_eq(flag_device("t", "tpu", &k, &idx), FLAG_EUSAGE);
    cr_assert_eq(flag_device("t", "cuda:x", &k, &idx), FLAG_EUSAGE);
    cr_assert_eq(flag_device_use("t", "cpu"), 0);
    cr_assert_eq(flag_device_use("t", "tpu"), FLAG_EUSAGE);
    // Without a usable GPU, cuda is refused with a usage error (never a crash);
    // with one it is refused too until stages place their models on it.
    cr_assert_eq(flag_device_use("t", "cuda"), FLAG_EUSAGE);
}

Test(flags, mkdir_p_creates_parents_and_refuses_files) {
    char path[512];
    char *dir = test_tmpdir("flags");
    snprintf(path, sizeof path, "%s/a/b/c", dir);
    cr_assert_eq(stage_mkdir_p("t", path), 0);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert(S_ISDIR(sb.st_mode));
    cr_assert_eq(stage_mkdir_p("t", path), 0);   // already there
    snprintf(path, sizeof path, "%s/a/b/c/file.npz", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fclose(f);
    cr_assert_eq(stage_mkdir_p("t", path), -1);   // a file in the way
    snprintf(path, sizeof path, "%s/a/b/c/file.npz/x", dir);
    cr_assert_eq(stage_mkdir_p("t", path), -1);
    snprintf(path, sizeof path, "%s/d/e/out.png", dir);
    cr_assert_eq(stage_mkdir_parent("t", path), 0);
    snprintf(path, sizeof path, "%s/d/e", dir);
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(stage_mkdir_parent("t", "plain.png"), 0);
    cr_assert_eq(stage_mkdir_p("t", ""), -1);
    rm_rf(dir);
    free(dir);
}

// flag_parse over a table: values of every kind land in their variables,
// --name=value and unambiguous prefixes work as getopt_long's, operands are
// moved after the options, --model is taken, --help stops parsing, and
// unknown options, missing values, bad choices and bad numbers are usage
// errors.
Test(flags, parse_table) {
    const char *s = NULL;
    int n = 0, b = 0, ch = 0, help = 7, ops = -1;
    int64_t big = 0;
    uint64_t seed = 0;
    double d = 0;
    float f = 0;
    static const char *const CH[] = {"kl", "ve", NULL};
    const flag_spec F[] = {FLAG_STR_("out", &s), FLAG_INT_("n", &n, 1, 10), FLAG_BOOL_("flag", &b),
                           FLAG_CHOICE_("reg", &ch, CH), FLAG_I64_("first", &big, 0, INT64_MAX),
                           FLAG_U64_("seed", &seed), FLAG_F64_("lr", &d, 0, 1, FLAG_OPEN_LO),
                           FLAG_F32_("tau", &f, -5, 5, 0), FLAG_DEVICE_};
    char *argv[] = {"stage", "--model", "m", "op1", "--out", "dir", "--n=7", "--flag", "--reg", "ve",
                    "--first", "4294967297", "--seed", "18446744073709551615", "--lr", "0.5", "--ta", "-2.5",
                    "--device", "cpu", "op2", NULL};
    int argc = (int)(sizeof argv / sizeof *argv) - 1;
    cr_assert_eq(flag_parse("t", argc, argv, F, FLAG_COUNT(F), &help, &ops), 0);
    cr_assert_eq(help, 0);
    cr_assert_str_eq(s, "dir");
    cr_assert_eq(n, 7);
    cr_assert_eq(b, 1);
    cr_assert_eq(ch, 1);
    cr_assert_eq(big, 4294967297LL);
    cr_assert_eq(seed, UINT64_MAX);
    cr_assert_eq(d, 0.5);
    cr_assert_eq(f, -2.5f);
    cr_assert_eq(argc - ops, 2);
    cr_assert_str_eq(argv[ops], "op1");
    cr_assert_str_eq(argv[ops + 1], "op2");

    char *h[] = {"stage", "--n", "3", "--help", "--n", "99", NULL};
    n = 0;
    cr_assert_eq(flag_parse("t", 6, h, F, FLAG_COUNT(F), &help, NULL), 0);
    cr_assert_eq(help, 1);
    cr_assert_eq(n, 3);   // stopped at --help
    char *h2[] = {"stage", "-h", NULL};
    cr_assert_eq(flag_parse("t", 2, h2, F, FLAG_COUNT(F), &help, NULL), 0);
    cr_assert_eq(help, 1);

    char *bad[][3] = {{"stage", "--nope", NULL}, {"stage", "--n", "11"}, {"stage", "--reg", "xx"},
                      {"stage", "--out", NULL}, {"stage", "--flag=1", NULL}, {"stage", "--device", "tpu"},
                      {"stage", "--first", "-1"}, {"stage", "--lr", "0"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int c = bad[i][2] ? 3 : 2;
        char *a[4] = {bad[i][0], bad[i][1], bad[i][2], NULL};
        cr_assert_eq(flag_parse("t", c, a, F, FLAG_COUNT(F), &help, NULL), FLAG_EUSAGE, "case %zu (%s) accepted", i,
                     bad[i][1]);
    }
}

Test(flags, parse_messages, .init = cr_redirect_stderr) {
    int ch = 0, help;
    static const char *const CH[] = {"uniform", "logit-normal", "late", NULL};
    const flag_spec F[] = {FLAG_CHOICE_("time", &ch, CH)};
    char *a[] = {"stage", "--time", "early", NULL};
    cr_assert_eq(flag_parse("train", 3, a, F, 1, &help, NULL), FLAG_EUSAGE);
    char *b[] = {"stage", "--what", NULL};
    cr_assert_eq(flag_parse("train", 2, b, F, 1, &help, NULL), FLAG_EUSAGE);
    fflush(stderr);
    cr_assert_stderr_eq_str("train: --time must be uniform, logit-normal or late, not 'early'\n"
                            "train: unknown or incomplete option '--what' (see --help)\n");
}

// --threads N is accepted by every flag_parse table and sets the OpenMP
// thread count of the process; 0, junk and a missing value are usage errors.
Test(flags, threads_flag) {
    int n = 0, help;
    const flag_spec F[] = {FLAG_INT_("n", &n, 1, 10)};
    char *a[] = {"stage", "--threads", "3", "--n", "2", NULL};
    cr_assert_eq(flag_parse("t", 5, a, F, 1, &help, NULL), 0);
    cr_assert_eq(omp_get_max_threads(), 3);
    cr_assert_eq(n, 2);
    char *b[] = {"stage", "--threads=1", NULL};
    cr_assert_eq(flag_parse("t", 2, b, F, 1, &help, NULL), 0);
    cr_assert_eq(omp_get_max_threads(), 1);
    char *bad[][3] = {{"stage", "--threads", "0"}, {"stage", "--threads", "2x"}, {"stage", "--threads", NULL},
                      {"stage", "--threads", "1025"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int c = bad[i][2] ? 3 : 2;
        char *v[4] = {bad[i][0], bad[i][1], bad[i][2], NULL};
        cr_assert_eq(flag_parse("t", c, v, F, 1, &help, NULL), FLAG_EUSAGE, "case %zu accepted", i);
    }
    cr_assert_eq(omp_get_max_threads(), 1);
}
