// test_eval_images_nets.c: `eval --model images` off the bus: scoring an
// existing archive (--npz), reference statistics of an image folder
// (--data DIR), and Inception-v3 as the feature network (--feature-net
// inception --weights FILE, seeded random weights written by this test: no
// real Inception weights ship with vel). The images are the first N
// Fashion-MNIST training images, so scored against statistics of those same
// images FID is ~0 and precision = recall = 1 with either network; the
// reports must name the network and its label. Bad inputs exit 2.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/base.h"
#include "data/idx.h"
#include "data/image_io.h"
#include "models/inception.h"
#include "nn/safetensors.h"
#include "tests/classifier_fixture.h"
#include "tests/util.h"

enum { N = 60, NI = 6 };   // images for the classifier, for Inception (slow on a CPU)

static char *dir;

static void setup(void) {
    cr_assert(access("bin/eval", X_OK) == 0, "bin/eval missing: run make first");
    dir = test_tmpdir("eval_nets");
    char p[600];
    snprintf(p, sizeof p, "%s/cls.safetensors", dir);
    test_save_random_classifier(p, 7);
    // N training images + labels as an ADM archive, and the first NI of them
    fmnist *ds = NULL;
    cr_assert_eq(fmnist_load(NULL, "train", &ds), 0, "%s", vel_error_detail());
    int32_t lab[N];
    for (int i = 0; i < N; i++) lab[i] = ds->labels[i];
    for (int k = 0; k < 2; k++) {
        int64_t n = k ? NI : N;
        image_npz_member m[2] = {{"arr_0", ds->pix, 0, 4, {n, 32, 32, 1}}, {"labels", lab, 1, 1, {n}}};
        snprintf(p, sizeof p, "%s/%s.npz", dir, k ? "small" : "set");
        cr_assert_eq(image_npz_write(p, m, 2), 0);
    }
    // the same N images as an image folder: class folders of gray PNGs
    snprintf(p, sizeof p, "%s/folder", dir);
    cr_assert_eq(mkdir(p, 0755), 0);
    for (int i = 0; i < N; i++) {
        snprintf(p, sizeof p, "%s/folder/class%d", dir, lab[i]);
        mkdir(p, 0755);
        snprintf(p, sizeof p, "%s/folder/class%d/%03d.png", dir, lab[i], i);
        cr_assert_eq(png_write(p, ds->pix + (size_t)i * 1024, 32, 32, 1), 0);
    }
    fmnist_destroy(&ds);
}

static void teardown(void) {
    rm_rf(dir);
    free(dir);
}

static cJSON *report(const char *sub) {
    char p[700];
    snprintf(p, sizeof p, "%s/%s/report.json", dir, sub);
    char *txt = test_read_file(p, NULL);
    cr_assert(txt, "no %s", p);
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    cr_assert(j, "%s is not JSON", p);
    return j;
}

static double metric(const cJSON *j, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "metrics"), k);
    cr_assert(cJSON_IsNumber(v), "report.json: metrics.%s missing", k);
    return v->valuedouble;
}

static const char *mstr(const cJSON *j, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "metrics"), k);
    cr_assert(cJSON_IsString(v), "report.json: metrics.%s missing", k);
    return v->valuestring;
}

Test(eval_images_nets, npz_and_folder_with_the_classifier, .init = setup, .fini = teardown, .timeout = 240) {
    cr_assert_eq(test_sh("bin/eval --model images --classifier %s/cls.safetensors --ref-stats %s/ref.st "
                         "--data fashion-mnist --n-ref %d 2>%s/ref.log", dir, dir, N, dir), 0);
    cr_assert_eq(test_sh("bin/eval --model images --classifier %s/cls.safetensors --ref-stats %s/reff.st "
                         "--data %s/folder 2>%s/reff.log", dir, dir, dir, dir), 0);
    for (int k = 0; k < 2; k++) {
        const char *sub = k ? "outf" : "out";
        cr_assert_eq(test_sh("bin/eval --model images --npz %s/set.npz --out %s/%s --classifier %s/cls.safetensors "
                             "--ref-stats %s/%s 2>%s/%s.log", dir, dir, sub, dir, dir, k ? "reff.st" : "ref.st",
                             dir, sub), 0, "see %s/%s.log", dir, sub);
        cJSON *j = report(sub);
        cr_assert_eq(cJSON_GetObjectItem(j, "n_images")->valuedouble, N);
        cr_assert_str_eq(mstr(j, "features"), "classifier features, not Inception");
        cr_assert_str_eq(mstr(j, "feature_net"), "fmnist-classifier");
        // the folder's statistics come from the same images in another order
        // (class folders), so only the summation order differs
        double fid = metric(j, "fid");
        cr_log_info("%s: classifier FID of the set vs its own statistics %.3g", sub, fid);
        cr_assert(fabs(fid) < 1e-6, "%s: FID of the set against its own statistics: %g", sub, fid);
        cr_assert_eq(metric(j, "precision_k3"), 1.0);
        cr_assert_eq(metric(j, "recall_k3"), 1.0);
        char in[700];
        snprintf(in, sizeof in, "%s/set.npz", dir);
        cr_assert_str_eq(cJSON_GetObjectItem(j, "input_npz")->valuestring, in);
        cJSON_Delete(j);
    }
    char p[700];
    snprintf(p, sizeof p, "%s/out/samples.npz", dir);
    cr_assert(access(p, F_OK) != 0, "--npz must not rewrite the archive into --out");
    snprintf(p, sizeof p, "%s/out/grid_class_0.png", dir);
    cr_assert(access(p, R_OK) == 0, "no class grid");
    // a corrupt image in the folder: exit 2, the file named
    cr_assert_eq(test_sh("cp -r %s/folder %s/bad && head -c 50 %s/folder/class9/000.png > %s/bad/class9/000.png && "
                         "bin/eval --model images --classifier %s/cls.safetensors --ref-stats %s/refb.st --data %s/bad "
                         "2>%s/bad.log", dir, dir, dir, dir, dir, dir, dir, dir), 2);
    cr_assert_eq(test_sh("grep -q 000.png %s/bad.log", dir), 0);
}

Test(eval_images_nets, inception_features, .init = setup, .fini = teardown, .timeout = 300) {
    char p[600];
    inception *m = NULL;
    cr_assert_eq(inception_create(&m, 1), 0);
    inception_random_weights(m, 11);
    snprintf(p, sizeof p, "%s/inc.safetensors", dir);
    cr_assert_eq(st_save_params(p, inception_params(m), DT_F32, NULL, 0), 0, "%s", vel_error_detail());
    inception_destroy(&m);
    cr_assert_eq(test_sh("bin/eval --model images --feature-net inception --weights %s/inc.safetensors "
                         "--ref-stats %s/refi.st --data fashion-mnist --n-ref %d 2>%s/refi.log", dir, dir, NI, dir), 0);
    cr_assert_eq(test_sh("bin/eval --model images --npz %s/small.npz --out %s/outi --feature-net inception "
                         "--weights %s/inc.safetensors --ref-stats %s/refi.st 2>%s/outi.log", dir, dir, dir, dir, dir),
                 0, "see %s/outi.log", dir);
    cJSON *j = report("outi");
    cr_assert_str_eq(mstr(j, "features"), "Inception-v3 features (pytorch-fid port)");
    cr_assert_str_eq(mstr(j, "feature_net"), INCEPTION_NET_NAME);
    // 2048 dims from NI images: rank-deficient covariances, so sqrtm leaves
    // a floor; a different set lands orders of magnitude higher (below)
    double self = metric(j, "fid");
    cr_assert(fabs(self) < 1e-2, "Inception FID of the set against its own statistics: %g", self);
    cr_assert_eq(metric(j, "precision_k3"), 1.0);
    cr_assert_eq(metric(j, "recall_k3"), 1.0);
    cr_assert(metric(j, "is") >= 1.0);
    cJSON_Delete(j);
    cr_assert_eq(test_sh("grep -q 'Inception-v3 features' %s/outi/report.md", dir), 0);
    // other images score far from 0: the first NI of set.npz's later half
    cr_assert_eq(test_sh("/usr/bin/python3 -c \"\n"
                         "import numpy as np\n"
                         "d = np.load('%s/set.npz')\n"
                         "np.savez('%s/other.npz', d['arr_0'][%d:%d], d['labels'][%d:%d])\n"
                         "\"", dir, dir, N - NI, N, N - NI, N), 0);
    cr_assert_eq(test_sh("bin/eval --model images --npz %s/other.npz --out %s/outo --feature-net inception "
                         "--weights %s/inc.safetensors --ref-stats %s/refi.st 2>%s/outo.log", dir, dir, dir, dir, dir), 0);
    j = report("outo");
    cr_log_info("Inception (random weights) FID: self %.3g, other images %.6g", self, metric(j, "fid"));
    cr_assert(metric(j, "fid") > 100 * fabs(self) && metric(j, "fid") > 1e-3, "other images: FID %g vs self %g",
              metric(j, "fid"), self);
    cJSON_Delete(j);
    // statistics of the classifier are refused for Inception, and the reverse
    cr_assert_eq(test_sh("bin/eval --model images --classifier %s/cls.safetensors --ref-stats %s/refc.st "
                         "--data fashion-mnist --n-ref 8 2>%s/e.log", dir, dir, dir), 0);
    cr_assert_eq(test_sh("bin/eval --model images --npz %s/small.npz --out %s/x --feature-net inception "
                         "--weights %s/inc.safetensors --ref-stats %s/refc.st 2>%s/e.log", dir, dir, dir, dir, dir), 2);
    cr_assert_eq(test_sh("grep -q ref-stats %s/e.log", dir), 0);
    cr_assert_eq(test_sh("bin/eval --model images --npz %s/small.npz --out %s/x --classifier %s/cls.safetensors "
                         "--ref-stats %s/refi.st 2>%s/e.log", dir, dir, dir, dir, dir), 2);
}

Test(eval_images_nets, bad_inputs_exit_2, .init = setup, .fini = teardown, .timeout = 120) {
    struct { const char *args; const char *msg; } bad[] = {
        {"--npz %s/set.npz --out %s/o --feature-net alexnet", "feature-net"},
        {"--npz %s/set.npz --out %s/o --feature-net inception --classifier %s/cls.safetensors --ref-stats x", "--weights"},
        {"--npz %s/set.npz --out %s/o --weights %s/cls.safetensors", "go together"},
        {"--npz %s/set.npz --in ipc://%s/i --ctl x --acks y --out z", "one of"},
        {"--npz %s/set.npz", "--out"},
        {"--npz %s/missing.npz --out %s/o", "missing.npz"},
        {"--npz %s/cls.safetensors --out %s/o", "cls.safetensors"},
        {"--npz %s/set.npz --out %s/o --classes 3", "outside [0, 3)"},
        {"--npz %s/nolab.npz --out %s/o", "no labels"},
        {"--data %s/nonexistent --classifier %s/cls.safetensors --ref-stats %s/r", "neither"},
        {"--data %s/folder --classifier %s/cls.safetensors --ref-stats %s/r --image-size 64", "32x32"},
        {"--data %s/folder --feature-net inception --weights %s/cls.safetensors --ref-stats %s/r", "--weights"},
    };
    cr_assert_eq(test_sh("/usr/bin/python3 -c \"import numpy as np; np.savez('%s/nolab.npz', np.zeros((2, 32, 32, 1), np.uint8))\"",
                         dir), 0);
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char args[1500];
        snprintf(args, sizeof args, bad[k].args, dir, dir, dir);
        cr_assert_eq(test_sh("bin/eval --model images %s 2>%s/err.log", args, dir), 2, "exit 2 expected: %s", args);
        cr_assert_eq(test_sh("grep -qF -- '%s' %s/err.log", bad[k].msg, dir), 0, "'%s' not in the message for %s",
                     bad[k].msg, args);
        cr_assert_eq(test_sh("test $(wc -l < %s/err.log) -le 2", dir), 0, "a short message for %s", args);
    }
}
