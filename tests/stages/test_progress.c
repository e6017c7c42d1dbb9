// test_progress.c: stages/common/progress.h: a report rewritten in place on a
// terminal (a pseudo-terminal here), one line per report in a file.
#define _XOPEN_SOURCE 700
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stages/common/progress.h"

Test(progress, file_gets_one_line_per_report) {
    FILE *f = tmpfile();
    cr_assert(f);
    cr_expect_str_eq(progress_start(f), "");
    cr_expect_str_eq(progress_end(f), "\n");
    cr_expect_str_eq(progress_done(f), "");
    fclose(f);
}

Test(progress, terminal_gets_one_rewritten_line) {
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0) cr_skip_test("no pseudo-terminal here");
    cr_assert(grantpt(master) == 0 && unlockpt(master) == 0);
    const char *name = ptsname(master);
    cr_assert(name);
    FILE *f = fopen(name, "w");
    cr_assert(f, "cannot open %s", name);
    cr_expect_str_eq(progress_start(f), "\r");
    cr_expect_str_eq(progress_end(f), "   ");
    cr_expect_str_eq(progress_done(f), "\n");
    fclose(f);
    close(master);
}
