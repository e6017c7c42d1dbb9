// test_recon_grid.c: train --model vae's DIR/recon.png (stages/common/
// recon_grid.c, shared with eval --model vae): a title band, row labels, and
// the test images upscaled 3x by nearest neighbour, the input row holding
// exactly the first Fashion-MNIST test images (issue 14: a grid a reader can
// read). Also records --recon-reduction in config.json and keeps it on --resume.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/idx.h"
#include "data/image_io.h"
#include "tests/util.h"

Test(recon_grid, train_vae_writes_labelled_upscaled_grid, .timeout = 300) {
    cr_assert(access("bin/train", X_OK) == 0, "bin/train missing: run make first");
    fmnist *fm = NULL;
    if (fmnist_load(NULL, "test", &fm)) cr_skip_test("no Fashion-MNIST in " FMNIST_DEFAULT_DIR);
    char *dir = test_tmpdir("recon_grid");
    cr_assert_eq(test_sh("OMP_NUM_THREADS=1 bin/train --model vae --steps 1 --batch 2 --log-every 1 --ckpt-every 1 "
                         "--recon-reduction mean --out %s/run 2>%s/train.log", dir, dir), 0,
                 "train failed (%s/train.log)", dir);
    char p[700];
    snprintf(p, sizeof p, "%s/run/config.json", dir);
    FILE *f = fopen(p, "rb");
    cr_assert(f);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    cr_assert(strstr(buf, "\"recon_reduction\":\t\"mean\""), "config.json lacks the reduction: %s", buf);

    snprintf(p, sizeof p, "%s/run/recon.png", dir);
    uint8_t *pix = NULL;
    int w, h, ch;
    cr_assert_eq(png_read(p, 3, &pix, &w, &h, &ch), 0, "cannot read %s", p);
    // label column 96, 2 images of 96 + 4 gap, 4 margin; title 24, 2 rows of 100, 4 margin
    cr_assert(w == 96 + 2 * 100 + 4 && h == 24 + 2 * 100 + 4, "grid %d x %d", w, h);
    int title = 0, label = 0;
    for (int j = 0; j < 24; j++)
        for (int i = 0; i < w; i++) title += pix[3 * ((size_t)j * w + i)] == 0;
    for (int j = 28; j < 128; j++)
        for (int i = 0; i < 96; i++) label += pix[3 * ((size_t)j * w + i)] == 0;
    cr_assert(title > 50 && label > 20, "title %d, label %d black pixels", title, label);
    float img[2 * 1024];
    cr_assert_eq(fmnist_batch_f32(fm, img, NULL, NULL, 0, 2), 0);
    for (int b = 0; b < 2; b++)
        for (int y = 0; y < 96; y++)
            for (int x = 0; x < 96; x++) {
                int i = 96 + 4 + b * 100 + x, j = 24 + 4 + y;
                uint8_t want = image_f32_to_u8(img[b * 1024 + (y / 3) * 32 + x / 3]);
                const uint8_t *q = pix + 3 * ((size_t)j * w + i);
                cr_assert(q[0] == want && q[1] == want && q[2] == want, "image %d (%d, %d): %u vs %u", b, x, y,
                          q[0], want);
            }
    free(pix);
    // --resume keeps the loss: a different reduction is refused (exit 2), the same one resumes.
    int rc = test_sh("OMP_NUM_THREADS=1 bin/train --model vae --steps 2 --batch 2 --out %s/run --resume "
                     "2>%s/resume_sum.log", dir, dir);
    cr_assert_eq(rc, 2, "resume with another reduction: exit %d, expected 2", rc);
    snprintf(p, sizeof p, "%s/resume_sum.log", dir);
    f = fopen(p, "rb");
    cr_assert(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    cr_assert(strstr(buf, "--recon-reduction mean"), "message does not name the reduction: %s", buf);
    cr_assert_eq(test_sh("OMP_NUM_THREADS=1 bin/train --model vae --steps 2 --batch 2 --out %s/run --resume "
                         "--recon-reduction mean 2>%s/resume_mean.log", dir, dir), 0, "resume failed");
    fmnist_destroy(&fm);
    rm_rf(dir);
    free(dir);
}
