// test_flash_tsan.c: the barriers of the tiled attention kernels, checked on
// the host by ThreadSanitizer: builds tests/cuda/flash_tsan_drv.c (the kernel
// bodies of nn/cuda/flash_attn.h, one pthread per CUDA thread) with
// -fsanitize=thread and runs it; any "ThreadSanitizer" report (a data race on
// shared memory = a missing FA_SYNC()) fails the test. Skips when the C
// compiler cannot build with ThreadSanitizer. Runs without a GPU.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/util.h"

Test(flash_tsan, kernel_barriers_have_no_data_race, .timeout = 120) {
    char *d = test_tmpdir("flash_tsan");
    if (test_sh("echo 'int main(void){return 0;}' > %s/t.c && cc -fsanitize=thread %s/t.c -o %s/t "
                ">/dev/null 2>&1 && %s/t",
                d, d, d, d))
        cr_skip_test("cc cannot build and run a -fsanitize=thread program here");
    cr_assert_eq(test_sh("cc -O1 -g -std=c11 -fsanitize=thread -D_GNU_SOURCE -I. "
                         "tests/cuda/flash_tsan_drv.c -o %s/drv -lm -lpthread",
                         d),
                 0, "building flash_tsan_drv.c failed");
    int rc = test_sh("TSAN_OPTIONS=exitcode=66 %s/drv > %s/out 2>&1", d, d);
    char p[1024];
    snprintf(p, sizeof p, "%s/out", d);
    char *out = test_read_file(p, NULL);
    cr_assert_not_null(out);
    cr_log_info("%s", out);
    cr_expect_eq(rc, 0, "driver exit %d: %s", rc, out);
    cr_expect(strstr(out, "ThreadSanitizer") == NULL, "ThreadSanitizer reported: %s", out);
    free(out);
    test_sh("rm -rf %s", d);
    free(d);
}
