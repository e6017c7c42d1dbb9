// test_schedule.c: learning-rate schedules against tests/ref/gen_optim.py
// (float64 formulas) over steps 0..99, plus closed-form spot checks and the
// validation of bad schedules.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "nn/schedule.h"
#include "tests/util.h"

Test(schedule, against_numpy) {
    int64_t n;
    double *cfg = ref_f64("optim", "sched_cfg", &n);
    cr_assert_eq(n % 6, 0);
    int nc = (int)(n / 6);
    double *want = ref_f64("optim", "sched_lr", &n);
    cr_assert_eq(n, nc * 100);
    for (int c = 0; c < nc; c++) {
        const double *r = cfg + 6 * c;
        lr_schedule s = {.lr = r[1], .decay = (lr_decay)(int)r[0], .warmup = (int64_t)r[2],
                         .t_ref = (int64_t)r[3], .total = (int64_t)r[4], .min_ratio = r[5]};
        const char *why = NULL;
        cr_assert_eq(lr_schedule_check(&s, &why), 0, "config %d: %s", c, why);
        double got[100];
        for (int it = 0; it < 100; it++) got[it] = lr_at(&s, it);
        char what[64];
        snprintf(what, sizeof what, "schedule %d (%s)", c, lr_decay_name(s.decay));
        // same double formulas: measured max rel error 0 (bit-identical)
        expect_close_f64(what, got, want + 100 * c, 100, 0, 1e-12);
    }
    free(cfg);
    free(want);
}

Test(schedule, closed_forms) {
    lr_schedule s = {.lr = 1e-2, .decay = LR_INV_SQRT, .t_ref = 512};
    cr_expect_eq(lr_at(&s, 0), 1e-2);
    cr_expect_eq(lr_at(&s, 512), 1e-2);
    cr_expect(fabs(lr_at(&s, 2048) - 5e-3) < 1e-15);     // sqrt(4) = 2
    s = (lr_schedule){.lr = 1.0, .decay = LR_CONSTANT, .warmup = 4};
    cr_expect_eq(lr_at(&s, 0), 0.25);
    cr_expect_eq(lr_at(&s, 3), 1.0);
    cr_expect_eq(lr_at(&s, 1000), 1.0);
    s = (lr_schedule){.lr = 2.0, .decay = LR_COSINE, .warmup = 0, .total = 10, .min_ratio = 0.1};
    cr_expect_eq(lr_at(&s, 0), 2.0);
    cr_expect(fabs(lr_at(&s, 5) - 2.0 * 0.55) < 1e-15);
    cr_expect(fabs(lr_at(&s, 10) - 0.2) < 1e-15);
    cr_expect(fabs(lr_at(&s, 99) - 0.2) < 1e-15);
}

Test(schedule, validation) {
    const char *why;
    lr_schedule s = {.lr = 1e-3, .decay = LR_INV_SQRT, .t_ref = 0};
    cr_expect_eq(lr_schedule_check(&s, &why), VEL_EINVAL);
    cr_expect(strstr(why, "t_ref") != NULL, "%s", why);
    s = (lr_schedule){.lr = 1e-3, .decay = LR_COSINE, .warmup = 10, .total = 10};
    cr_expect_eq(lr_schedule_check(&s, &why), VEL_EINVAL);
    cr_expect(strstr(why, "total") != NULL, "%s", why);
    s = (lr_schedule){.lr = -1};
    cr_expect_eq(lr_schedule_check(&s, &why), VEL_EINVAL);
    s = (lr_schedule){.lr = NAN};
    cr_expect_eq(lr_schedule_check(&s, &why), VEL_EINVAL);
    s = (lr_schedule){.lr = 1e-3, .decay = LR_CONSTANT, .warmup = -1};
    cr_expect_eq(lr_schedule_check(&s, &why), VEL_EINVAL);
    s = (lr_schedule){.lr = 1e-3, .decay = (lr_decay)9};
    cr_expect_eq(lr_schedule_check(&s, &why), VEL_EINVAL);
    s = (lr_schedule){.lr = 1e-3, .decay = LR_CONSTANT};
    cr_expect_eq(lr_schedule_check(&s, &why), 0);
    cr_expect_null(why);
}

Test(schedule, names) {
    lr_decay d;
    for (int k = LR_CONSTANT; k <= LR_COSINE; k++) {
        cr_expect_eq(lr_decay_parse(lr_decay_name((lr_decay)k), &d), 0);
        cr_expect_eq(d, k);
    }
    cr_expect_eq(lr_decay_parse("inv-sqrt", &d), 0);   // train --model toy-*'s spelling
    cr_expect_eq(d, LR_INV_SQRT);
    cr_expect_eq(lr_decay_parse("inv-", &d), VEL_EINVAL);
    cr_expect_eq(lr_decay_parse("linear", &d), VEL_EINVAL);
    cr_expect_eq(lr_decay_parse(NULL, &d), VEL_EINVAL);
}
