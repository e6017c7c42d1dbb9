// test_toy_exact.c: the sampler floor through the stages. sample --exact in
// the store's normalised coordinates (decoded back by decode --identity
// --store) must reach the data far better at 20 Euler steps than
// --exact-coords raw (measured at n 10000: 2.4% vs 14.4% off-manifold,
// docs/experiments/TOY.md), and eval's density figure must carry its labels: the
// framed size, the frame, the title and the legend swatches (issue 14).
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include "data/image_io.h"
#include "tests/util.h"

static char *dir;

static void setup(void) {
    const char *b[] = {"bin/encode", "bin/sample", "bin/decode", "bin/eval"};
    for (int i = 0; i < 4; i++) cr_assert(access(b[i], X_OK) == 0, "%s missing: run make first", b[i]);
    dir = test_tmpdir("toy_exact");
    cr_assert_eq(test_sh("OMP_NUM_THREADS=1 bin/encode --model toy --identity --store %s/store --n 4000 "
                         "--data-seed 1 2>%s/encode.log", dir, dir), 0, "encode failed (%s/encode.log)", dir);
}

static void teardown(void) {
    rm_rf(dir);
    free(dir);
}

// source + 1 exact sampler + decode + eval; store "" = none. Eval's code.
static int run(const char *tag, const char *sample_flags, const char *store) {
    return test_sh("S=$(mktemp -d /tmp/toyx.XXXXXX); J=ipc://$S/j A=ipc://$S/a C=ipc://$S/c L=ipc://$S/l "
                   "P=ipc://$S/p; export OMP_NUM_THREADS=1; "
                   "bin/eval --model toy --in $P --ctl $C --acks $A --out %s/%s --n-true 2000 --title %s "
                   "--timeout-s 120 2>%s/%s.eval.log & E=$!; "
                   "bin/decode --model toy --identity %s --in $L --ctl $C --out $P 2>%s/%s.dec.log & "
                   "bin/sample --model toy-flow %s --steps 20 --jobs $J --ctl $C --out $L 2>%s/%s.s.log & "
                   "bin/sample --model toy-flow --role source --n 1000 --job-size 250 --seed 3 --deadline-ms 20000 "
                   "--jobs-bind $J --acks-bind $A --ctl-bind $C 2>%s/%s.src.log; "
                   "wait $E; rc=$?; wait; rm -rf $S; exit $rc",
                   dir, tag, tag, dir, tag, store, dir, tag, sample_flags, dir, tag, dir, tag);
}

static double off_manifold(const char *tag) {
    char p[700];
    snprintf(p, sizeof p, "%s/%s/report.json", dir, tag);
    FILE *f = fopen(p, "rb");
    cr_assert(f, "missing %s", p);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    cJSON *j = cJSON_Parse(buf);
    cr_assert(j && cJSON_GetObjectItem(j, "off_manifold"), "bad %s", p);
    double v = cJSON_GetObjectItem(j, "off_manifold")->valuedouble;
    cJSON_Delete(j);
    return v;
}

static const uint8_t *px(const uint8_t *pix, int w, int i, int j) { return pix + 3 * ((size_t)j * w + i); }

TestSuite(toy_exact, .init = setup, .fini = teardown, .timeout = 300);

Test(toy_exact, normalised_floor_below_raw_and_labelled_figure) {
    char st[700];
    snprintf(st, sizeof st, "--store %s/store", dir);
    char fl[800];
    snprintf(fl, sizeof fl, "--exact --store %s/store", dir);
    cr_assert_eq(run("norm", fl, st), 0, "normalised run failed (logs in %s)", dir);
    cr_assert_eq(run("raw", "--exact --exact-coords raw", ""), 0, "raw run failed (logs in %s)", dir);
    double on = off_manifold("norm"), orw = off_manifold("raw");
    cr_log_info("exact Euler-20 off-manifold: normalised %.4f raw %.4f", on, orw);
    cr_assert(on < 0.07 && orw > 0.09, "normalised %.4f should be well under raw %.4f", on, orw);

    char p[700];
    snprintf(p, sizeof p, "%s/norm/density.png", dir);
    uint8_t *pix = NULL;
    int w, h, ch;
    cr_assert_eq(png_read(p, 3, &pix, &w, &h, &ch), 0, "cannot read %s", p);
    // panel 384 x 384 framed: 56 left, 16 right, 30 above, 42 below + 4 legend rows of 16 + 4
    cr_assert(w == 56 + 384 + 16 && h == 30 + 384 + 42 + 4 * 16 + 4, "framed size %d x %d", w, h);
    const uint8_t black[3] = {0, 0, 0}, orange[3] = {255, 150, 0}, red[3] = {200, 30, 30};
    cr_assert(!memcmp(px(pix, w, 55, 29), black, 3) && !memcmp(px(pix, w, 440, 414), black, 3), "no frame");
    int title = 0;
    for (int j = 8; j < 18; j++)
        for (int i = 0; i < w; i++) title += !memcmp(px(pix, w, i, j), black, 3);
    cr_assert(title > 50, "no title text (%d black pixels)", title);
    int key0 = 30 + 384 + 42;   // legend row 0: density, 1: samples, 2: off-manifold
    cr_assert(!memcmp(px(pix, w, 10, key0 + 16 + 5), red, 3), "no samples swatch");
    cr_assert(!memcmp(px(pix, w, 10, key0 + 32 + 5), orange, 3), "no off-manifold swatch");
    free(pix);
}
