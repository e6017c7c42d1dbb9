// Tests for nn/params.c: declaration pass, commit, lookup, alignment.
#include <criterion/criterion.h>
#include <stdint.h>

#include "nn/params.h"

Test(params, declare_commit_lookup) {
    param_table pt;
    param_table_init(&pt);
    cr_assert_null(param_add(&pt, "fc.weight", 2, (int64_t[]){3, 5}));
    cr_assert_null(param_add(&pt, "fc.bias", 1, (int64_t[]){3}));
    cr_assert_eq(pt.count, 2);
    cr_assert_eq(pt.info[0].numel, 15);
    cr_assert_eq(pt.info[1].offset, 16);
    cr_assert_eq(pt.info[0].no_decay, 0);
    cr_assert_eq(pt.info[1].no_decay, 1);
    cr_assert_eq(param_table_commit(&pt), 0);
    cr_assert_eq(param_find(&pt, "fc.bias"), 1);
    cr_assert_eq(param_find(&pt, "fc.nope"), -1);
    float *b = param_data(&pt, 1);
    cr_assert_eq((uintptr_t)b % 64, 0);
    cr_assert_eq(b - pt.values, 16);
    b[0] = 1;
    param_grad(&pt, 1)[0] = 2;
    param_zero_grads(&pt);
    cr_assert_eq(param_grad(&pt, 1)[0], 0.0f);
    cr_assert_eq(b[0], 1.0f);
    param_table_free(&pt);
    cr_assert_null(pt.values);
}
