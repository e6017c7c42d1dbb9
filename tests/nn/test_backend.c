// Tests for nn/backend.h without a GPU: the op API picks its branch from
// where the pointers live. A host buffer registered as a (fake) device range
// must take the device branch, which here can only end in the sticky error
// (no context / no CUDA implementation / no CUDA build), and the op must not
// have touched the buffer on the CPU; unregistered pointers take the CPU
// branch and compute as before, even while device ranges exist.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "nn/activation.h"
#include "nn/backend.h"
#include "nn/conv.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "nn/pool.h"
#ifdef VEL_HAVE_CUDA
#include "nn/cuda/lazy.h"
#include "nn/cuda/vcuda.h"
#endif

enum { N = 64 };

// Poisons the buffers and registers `fake` as device memory for one test.
static float fake[N], host[N], host_out[N];

static void setup(void) {
    for (int i = 0; i < N; i++) {
        fake[i] = 7.0f;
        host[i] = (float)i - 20.0f;
        host_out[i] = -1.0f;
    }
    cr_assert_eq(nn_register_device_range(fake, sizeof fake), 0);
    cr_assert_eq(nn_sync(), 0);   // no error left over from another test
}

static void teardown(void) {
    nn_set_cuda_ctx(NULL);
    nn_unregister_device_range(fake);
    nn_sync();
}

TestSuite(backend, .init = setup, .fini = teardown);

Test(backend, on_device_follows_the_registered_range) {
    cr_expect(nn_on_device(fake));
    cr_expect(nn_on_device(fake + N - 1));
    cr_expect(!nn_on_device(fake + N));     // one past the end
    cr_expect(!nn_on_device(host));
    cr_expect(!nn_on_device(NULL));
    nn_unregister_device_range(fake);
    cr_expect(!nn_on_device(fake));
}

Test(backend, host_pointers_take_the_cpu_branch) {
    relu_forward(host_out, host, N);
    for (int i = 0; i < N; i++) cr_expect_eq(host_out[i], host[i] > 0 ? host[i] : 0.0f);
    cr_expect_eq(nn_sync(), 0);
}

// In a CUDA build with no context on this thread the device branch stops at
// NN_ENOCTX; built without CUDA it stops at NN_ENOCUDABUILD.
#ifdef VEL_HAVE_CUDA
#define EXPECT_NO_CTX NN_ENOCTX
#else
#define EXPECT_NO_CTX NN_ENOCUDABUILD
#endif

Test(backend, device_pointers_take_the_device_branch) {
    relu_forward(fake, fake, N);
    cr_expect_eq(nn_pending_error(), EXPECT_NO_CTX);
    cr_expect(strstr(nn_last_error(), "relu_forward") != NULL, "message: %s", nn_last_error());
    for (int i = 0; i < N; i++) cr_expect_eq(fake[i], 7.0f);   // the CPU never ran
    cr_expect_eq(nn_sync(), EXPECT_NO_CTX);
    // handed over in the one error style: the message names the op
    cr_expect(strstr(vel_errmsg(EXPECT_NO_CTX), "relu_forward") != NULL, "%s",
              vel_errmsg(EXPECT_NO_CTX));
    cr_expect_eq(nn_sync(), 0);   // cleared by the first sync
}

Test(backend, mixed_pointers_are_an_error) {
    linear_forward(host_out, fake, host, NULL, 1, 8, 8);
    cr_expect_eq(nn_sync(), NN_EMIXED);
    cr_expect(strstr(nn_last_error(), "linear_forward") != NULL, "message: %s", nn_last_error());
    for (int i = 0; i < N; i++) cr_expect_eq(host_out[i], -1.0f);
}

Test(backend, the_first_error_sticks) {
    linear_forward(host_out, fake, host, NULL, 1, 8, 8);   // NN_EMIXED
    relu_forward(fake, fake, N);                            // would be EXPECT_NO_CTX
    relu_forward(host_out, host, N);                        // fine: runs on the CPU
    cr_expect_eq(host_out[30], 10.0f);
    cr_expect_eq(nn_sync(), NN_EMIXED);
    cr_expect(strstr(nn_last_error(), "linear_forward") != NULL, "message: %s", nn_last_error());
}

// An op with no CUDA implementation names itself (pool_global_avg and the
// L1 loss value have none: if one gains it, pick another here, the stand-in
// context below cannot run CUDA code). With CUDA built, a
// (never dereferenced) context stands in for device_activate.
Test(backend, op_without_cuda_implementation_names_itself) {
#ifdef VEL_HAVE_CUDA
    static char stand_in;
    nn_set_cuda_ctx((struct vcuda_ctx *)&stand_in);
    int expect = NN_ENOCUDAOP;
#else
    int expect = NN_ENOCUDABUILD;
#endif
    pool_global_avg(fake, fake, 1, 1, N);
    double v = l1_loss_forward(fake, fake, N);
    nn_set_cuda_ctx(NULL);   // before nn_sync: it would wait on the context
    cr_expect(isnan(v));
    cr_expect_eq(nn_pending_error(), expect);
    cr_expect(strstr(nn_last_error(), "pool_global_avg") != NULL, "message: %s",
              nn_last_error());
    for (int i = 0; i < N; i++) cr_expect_eq(fake[i], 7.0f);
    cr_expect_eq(nn_sync(), expect);
}

Test(backend, range_table_full_is_an_error) {
    static char bytes[NN_MAX_DEVICE_RANGES + 1];
    int i, r = 0;
    for (i = 0; i < NN_MAX_DEVICE_RANGES + 1 && r == 0; i++) r = nn_register_device_range(bytes + i, 1);
    cr_expect_eq(r, NN_ERANGES);
    cr_expect_eq(i, NN_MAX_DEVICE_RANGES);   // `fake` holds one slot
    for (int k = 0; k < NN_MAX_DEVICE_RANGES + 1; k++) nn_unregister_device_range(bytes + k);
    cr_expect(!nn_on_device(bytes));
}

#ifdef VEL_HAVE_CUDA
// The CUDA half is a shared object loaded on the first CUDA call
// (nn/cuda/lazy.h): CPU ops, scratch sizing and the device checks of the op
// API must leave it, cuBLAS, cuDNN and the CUDA runtime unmapped.
static int mapped(const char *name) {
    FILE *f = fopen("/proc/self/maps", "r");
    cr_assert(f != NULL);
    char line[4096];
    int found = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, name)) found = 1;
    fclose(f);
    return found;
}

Test(backend, cpu_ops_leave_cuda_unloaded) {
    relu_forward(host_out, host, N);
    float w[4 * 4], out[2 * 4];
    for (int i = 0; i < 16; i++) w[i] = 0.25f * (float)i;
    linear_forward(out, host, w, NULL, 2, 4, 4);
    conv2d_cfg c = conv2d_make(1, 2, 4, 4, 3, 3, 2, 0);   // asymmetric pads size a CUDA copy
    c.pad_bottom = c.pad_right = 1;
    cr_expect(conv2d_scratch_floats(&c) > 0);
    relu_forward(fake, fake, N);   // device pointers, no context: an error, no load
    cr_expect_eq(nn_sync(), NN_ENOCTX);
    cr_expect_eq(vel_cuda_loaded(), 0);
    const char *libs[] = {"libvelcuda.so", "libcudart", "libcublas", "libcudnn"};
    for (int i = 0; i < 4; i++) cr_expect(!mapped(libs[i]), "%s is mapped", libs[i]);
}

// The first CUDA call loads it: the device count works (0 without a GPU) and
// the object is then mapped.
Test(backend, first_cuda_call_loads_cuda_half) {
    int n = -1;
    cr_assert_eq(vcuda_device_count(&n), 0);
    cr_expect(n >= 0);
    cr_assert_eq(vel_cuda_loaded(), 1, "%s", vel_cuda_load_error());
    cr_expect(mapped("libvelcuda.so"));
}
#endif
