// Tests for nn/tensor.c and nn/arena.c: dtype table, views, half conversions.
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "nn/arena.h"
#include "core/tensor.h"

Test(tensor, dtype_names_round_trip) {
    for (int i = 0; i < DT_COUNT; i++) {
        dtype_t d;
        const char *n = dtype_name((dtype_t)i);
        cr_assert_eq(dtype_from_name(n, strlen(n), &d), 0);
        cr_assert_eq(d, (dtype_t)i);
    }
    dtype_t d;
    cr_assert_neq(dtype_from_name("f64", 3, &d), 0);
    cr_assert_neq(dtype_from_name("f3", 2, &d), 0);
}

Test(tensor, view_strides_and_numel) {
    int64_t shape[3] = {2, 3, 5};
    tensor t = tensor_view(DT_F32, NULL, 3, shape);
    cr_assert_eq(t.stride[0], 15);
    cr_assert_eq(t.stride[1], 5);
    cr_assert_eq(t.stride[2], 1);
    cr_assert_eq(tensor_numel(&t), 30);
    cr_assert_eq(tensor_nbytes(&t), 120);
    cr_assert(tensor_is_contiguous(&t));
    t.stride[0] = 16;
    cr_assert(!tensor_is_contiguous(&t));
}

Test(tensor, shape_overflow_detected) {
    int64_t big[3] = {1ll << 40, 1ll << 30, 4};
    cr_assert_eq(shape_numel_checked(3, big), -1);
    int64_t neg[2] = {3, -1};
    cr_assert_eq(shape_numel_checked(2, neg), -1);
    int64_t ok[2] = {3, 0};
    cr_assert_eq(shape_numel_checked(2, ok), 0);
}

Test(tensor, bf16_round_to_nearest_even) {
    cr_assert_eq(f32_to_bf16(1.0f), 0x3f80);
    cr_assert_eq(bf16_to_f32(0x3f80), 1.0f);
    // 1 + 2^-8 is exactly half way between bf16 1.0 and 1.0078125: ties to even.
    cr_assert_eq(f32_to_bf16(1.00390625f), 0x3f80);
    cr_assert_eq(f32_to_bf16(1.01171875f), 0x3f82);
    cr_assert(isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

Test(tensor, f16_exhaustive_round_trip) {
    // Every finite f16 value converts to f32 and back unchanged.
    for (uint32_t h = 0; h < 0x10000; h++) {
        if (((h >> 10) & 0x1f) == 31) continue;
        float f = f16_to_f32((uint16_t)h);
        cr_assert_eq(f32_to_f16(f), (uint16_t)h, "h=%04x f=%g", h, f);
    }
    cr_assert_eq(f16_to_f32(0x3c00), 1.0f);
    cr_assert_eq(f16_to_f32(0x0001), 5.9604644775390625e-08f);
    cr_assert_eq(f32_to_f16(65520.0f), 0x7c00); // rounds to inf
    cr_assert_eq(f32_to_f16(65504.0f), 0x7bff);
}

Test(arena, measure_then_commit_gives_same_layout) {
    arena a;
    arena_measure(&a);
    cr_assert_null(arena_floats(&a, 10));
    cr_assert_null(arena_alloc(&a, 1));
    size_t need = a.used;
    cr_assert_eq(need, 128);
    cr_assert_eq(arena_commit(&a), 0);
    float *x = arena_floats(&a, 10);
    char *c = arena_alloc(&a, 1);
    cr_assert_eq((uintptr_t)x % ARENA_ALIGN, 0);
    cr_assert_eq(c - (char *)x, 64);
    cr_assert_eq(a.used, need);
    cr_assert_eq(x[9], 0.0f);
    arena_free(&a);
    cr_assert_null(a.base);
}
