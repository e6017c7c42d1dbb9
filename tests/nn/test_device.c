// Tests for nn/device.h's context and memory functions on a machine without
// a GPU (they also pass with one): device_activate's errors, host-side
// allocation / copy / zero, and the device paths refusing cleanly when no
// device is active (a registered fake range stands in for device memory).
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "core/error.h"
#include "nn/arena.h"
#include "nn/backend.h"
#include "nn/device.h"
#include "nn/optim.h"
#include "nn/params.h"

// Without device_activate the device side refuses (CUDA build: no context;
// CPU-only build: no CUDA) and host memory is left as it was.
static int want_no_device(void) { return device_cuda_built() ? DEVICE_ENOCTX : DEVICE_ENOCUDA; }

Test(device, cpu_activation_is_a_no_op) {
    char msg[256] = "x";
    cr_expect_eq(device_activate(DEVICE_CPU, -1, msg, sizeof msg), 0);
    cr_expect_str_empty(msg);
    cr_expect_eq(device_current(), DEVICE_CPU);
}

Test(device, cuda_without_gpu_or_build_is_a_clear_error) {
    char msg[256];
    int r = device_activate(DEVICE_CUDA, -1, msg, sizeof msg);
    if (device_cuda_count() > 0) {   // a GPU machine: the context comes up
        cr_expect_eq(r, 0, "%s", msg);
        cr_expect_eq(device_current(), DEVICE_CUDA);
        device_release();
        cr_expect_eq(device_current(), DEVICE_CPU);
        return;
    }
    if (device_cuda_built()) {
        cr_expect_eq(r, DEVICE_ENOGPU);
        cr_expect(strstr(msg, "no GPU found") != NULL, "msg: %s", msg);
    } else {
        cr_expect_eq(r, DEVICE_ENOCUDA);
        cr_expect(strstr(msg, "no CUDA support") != NULL, "msg: %s", msg);
    }
    cr_expect(strstr(msg, "--device cuda") != NULL, "msg: %s", msg);
    cr_expect_str_eq(vel_error_detail(), msg);   // the same sentence in the one error style
    cr_expect_eq(device_current(), DEVICE_CPU);
    cr_expect_eq(nn_cuda_ctx(), NULL);
}

Test(device, host_alloc_copy_zero) {
    float *a, *b;
    cr_assert_eq(device_alloc(DEVICE_CPU, (void **)&a, 100 * sizeof(float)), 0);
    cr_assert_eq(device_alloc(DEVICE_CPU, (void **)&b, 100 * sizeof(float)), 0);
    cr_expect_eq((uintptr_t)a % 64, 0);
    for (int i = 0; i < 100; i++) cr_expect_eq(a[i], 0.0f);
    for (int i = 0; i < 100; i++) a[i] = (float)i;
    cr_expect_eq(device_copy(b, a, 100 * sizeof(float)), 0);
    cr_expect_eq(memcmp(a, b, 100 * sizeof(float)), 0);
    cr_expect_eq(device_zero(a + 10, 5 * sizeof(float)), 0);
    cr_expect_eq(a[9], 9.0f);
    cr_expect_eq(a[10], 0.0f);
    cr_expect_eq(a[14], 0.0f);
    cr_expect_eq(a[15], 15.0f);
    cr_expect_eq(device_of(a), DEVICE_CPU);
    device_free((void **)&a);
    device_free((void **)&b);
    cr_expect_null(a);
}


Test(device, device_memory_needs_an_active_device) {
    void *p = (void *)1;
    cr_expect_eq(device_alloc(DEVICE_CUDA, &p, 64), want_no_device());
    cr_expect_null(p);
    cr_expect(strstr(vel_error_detail(), "device_alloc") != NULL, "%s", vel_error_detail());

    static float fake[16], host[16];
    for (int i = 0; i < 16; i++) host[i] = 3.0f;
    cr_assert_eq(nn_register_device_range(fake, sizeof fake), 0);
    cr_expect_eq(device_of(fake), DEVICE_CUDA);
    cr_expect_eq(device_copy(host, fake, sizeof host), want_no_device());
    cr_expect_eq(device_zero(fake, sizeof fake), want_no_device());
    for (int i = 0; i < 16; i++) cr_expect_eq(host[i], 3.0f);
    nn_unregister_device_range(fake);
}

// bf16 autocast needs an active GPU context: without one it is the same
// clear error as device memory, naming itself.
Test(device, autocast_needs_an_active_device) {
    cr_expect_eq(device_autocast_bf16(1), want_no_device());
    cr_expect(strstr(vel_error_detail(), "device_autocast_bf16") != NULL, "%s", vel_error_detail());
}

Test(device, arena_on_cpu_is_the_plain_arena) {
    arena a;
    arena_measure(&a);
    arena_floats(&a, 10);
    arena_floats(&a, 100);
    cr_assert_eq(arena_commit_on(&a, DEVICE_CPU), 0);
    float *x = arena_floats(&a, 10), *y = arena_floats(&a, 100);
    cr_expect_eq((char *)y - (char *)x, 64);
    for (int i = 0; i < 100; i++) cr_expect_eq(y[i], 0.0f);
    arena_free(&a);
    cr_expect_null(a.base);
    arena_measure(&a);
    arena_floats(&a, 10);
    cr_expect_eq(arena_commit_on(&a, DEVICE_CUDA), want_no_device());   // none active
    arena_free(&a);
    cr_expect_null(a.base);
}

Test(device, param_table_move_to_where_it_is_keeps_everything) {
    param_table pt;
    param_table_init(&pt);
    param_add(&pt, "w", 2, (int64_t[]){3, 4});
    cr_assert_eq(param_table_commit(&pt), 0);
    float *v = pt.values;
    v[5] = 2.5f;
    cr_expect_eq(param_table_move(&pt, DEVICE_CPU), 0);
    cr_expect_eq(pt.values, v);
    cr_expect_eq(pt.values[5], 2.5f);
    cr_expect_eq(param_table_move(&pt, DEVICE_CUDA), want_no_device());
    cr_expect_eq(pt.values, v);   // unchanged on failure
    cr_expect_eq(pt.values[5], 2.5f);
    param_table_free(&pt);
}

// Muon on device parameters keeps its state and scratch there (the GPU path
// itself: tests/cuda/test_parity_muon.c); without a CUDA context optim_create
// fails with the device's code and allocates nothing.
Test(device, muon_on_device_parameters_needs_a_device) {
    param_table pt;
    param_table_init(&pt);
    param_add(&pt, "w", 2, (int64_t[]){4, 4});
    cr_assert_eq(param_table_commit(&pt), 0);
    cr_assert_eq(nn_register_device_range(pt.values, 16 * sizeof(float)), 0);
    optim_config c = optim_defaults(OPTIM_MUON);
    optim *o = NULL;
    cr_expect_eq(optim_create(&o, &pt, &c), want_no_device());
    cr_expect_null(o);
    nn_unregister_device_range(pt.values);
    nn_sync();
    param_table_free(&pt);
}
