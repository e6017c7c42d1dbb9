// test_lightningdit_device.c: a LightningDiT step never touches device memory
// from the host, shown without a GPU. The model's parameter values and
// gradients, its activation arena and the step's x, t, v, dv are registered
// as (fake) device ranges (nn/backend.h), and their page-aligned interiors
// are made PROT_NONE. Forward + backward then have to reach that memory only
// through the op API and nn/device.h copies: each op sees device pointers and
// no CUDA context, records the sticky error and does nothing. One host loop
// over activations (the old q/k/v slot copies or the position-embedding add)
// reads a protected page and the test dies with SIGSEGV.
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/error.h"
#include "models/lightningdit.h"
#include "nn/backend.h"
#include "tests/util.h"

static void protect(void *base, size_t bytes, int prot) {
    const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)base + pg - 1) & ~(pg - 1), hi = ((uintptr_t)base + bytes) & ~(pg - 1);
    if (hi > lo) cr_assert_eq(mprotect((void *)lo, hi - lo, prot), 0);
}

// A region that is all protected pages (the step's inputs and outputs).
static float *fake_buf(size_t floats) {
    const size_t pg = (size_t)sysconf(_SC_PAGESIZE), bytes = (floats * sizeof(float) + pg - 1) / pg * pg;
    void *p = mmap(NULL, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(p, MAP_FAILED);
    cr_assert_eq(nn_register_device_range(p, bytes), 0);
    return p;
}

Test(lightningdit_device, step_reads_no_device_memory_on_the_host) {
    // qk norm on: the q/k slot copies run too
    const ldit_config c = {.depth = 2, .hidden = 64, .heads = 4, .patch = 1, .in_channels = 4,
                           .input_size = 8, .num_classes = 10, .qk_norm = 1};
    enum { B = 2 };
    ldit *m = NULL;
    cr_assert_eq(ldit_create(&m, &c, B), 0);
    ldit_init_params(m, 1);
    const size_t X = (size_t)B * 4 * 8 * 8, P = sizeof(float) * (size_t)m->pt.total;
    cr_assert_gt(m->act.size, 64 * 4096, "the arena must span many pages for the check to mean much");
    void *regions[3] = {m->act.base, m->pt.values, m->pt.grads};
    const size_t sizes[3] = {m->act.size, P, P};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(nn_register_device_range(regions[i], sizes[i]), 0);
        protect(regions[i], sizes[i], PROT_NONE);
    }
    float *x = fake_buf(X), *v = fake_buf(X), *dv = fake_buf(X), *t = fake_buf(B);
    const int32_t y[B] = {3, 10};
    const uint8_t drop[B] = {0, 1};
    cr_assert_eq(nn_sync(), 0);

    cr_expect_eq(ldit_forward(m, v, x, t, y, drop, B), 0);
    ldit_backward(m, NULL, dv);
    const int e = nn_sync();
#ifdef VEL_HAVE_CUDA
    cr_expect_eq(e, DEVICE_ENOCTX, "%s", vel_errmsg(e));   // no device_activate here
#else
    cr_expect_eq(e, DEVICE_ENOCUDA, "%s", vel_errmsg(e));
#endif
    // bad labels are still refused on the host, before anything is queued
    const int32_t bad[B] = {11, 0};
    cr_expect_eq(ldit_forward(m, v, x, t, bad, NULL, B), LDIT_ELABEL);
    cr_expect_eq(nn_pending_error(), 0);

    for (int i = 0; i < 3; i++) {
        protect(regions[i], sizes[i], PROT_READ | PROT_WRITE);
        nn_unregister_device_range(regions[i]);
    }
    ldit_destroy(&m);
}
