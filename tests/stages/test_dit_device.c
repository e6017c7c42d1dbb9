// test_dit_device.c: `sample --model dit --device cuda` (the worker places
// the DiT on the GPU) where no GPU can be used: exit 2 with one line naming
// --device cuda and what is missing, before the worker connects anywhere; a
// bad device name is a usage error too. With a GPU present this test skips
// (tests/cuda/test_parity_dit_train covers the GPU path). The train side is
// in test_train_dit_flags.c.
#include <criterion/criterion.h>
#include <stdio.h>
#include <unistd.h>

#include "nn/device.h"
#include "tests/stages/dit_fixture.h"
#include "tests/util.h"

Test(dit_device, sample_worker_refuses_cuda_without_a_gpu) {
    if (device_cuda_count() > 0) cr_skip_test("a GPU is present: the GPU path is tests/cuda's");
    cr_assert_eq(access("bin/sample", X_OK), 0, "bin/sample not built (make)");
    char *d = test_tmpdir("dit_device"), p[1024];
    snprintf(p, sizeof p, "%s/cache", d);
    cr_assert_eq(dfx_make(p, "tokA", 16, 3, 4, 4, 0, 0), 0);
    cr_assert_eq(test_sh("OMP_NUM_THREADS=1 bin/train --model dit --preset tiny --depth 1 --width 32 --heads 2 "
                         "--batch 8 --steps 1 --sample-every 0 --sample-steps 1 --store %s/cache --out %s/run "
                         "> /dev/null 2>&1", d, d), 0);
    static const char *const dev[][2] = {{"cuda", "sample: --device cuda: "}, {"tpu", "sample: --device must be"}};
    for (int i = 0; i < 2; i++) {
        int rc = test_sh("timeout 30 bin/sample --model dit --ckpt %s/run/dit.safetensors --jobs tcp://127.0.0.1:9 "
                         "--ctl tcp://127.0.0.1:9 --out tcp://127.0.0.1:9 --device %s > %s/out 2> %s/err",
                         d, dev[i][0], d, d);
        cr_expect_eq(rc, 2, "--device %s: exit %d", dev[i][0], rc);
        cr_expect_eq(test_sh("grep -q -- '%s' %s/err && test $(wc -l < %s/err) -eq 1", dev[i][1], d, d), 0,
                     "--device %s: stderr is not one line starting '%s'", dev[i][0], dev[i][1]);
    }
    rm_rf(d);
    free(d);
}
