// test_encode_folder.c: `encode --model vae-folder`, an image folder (two
// class folders of RGB PNGs of odd sizes) -> the latent store through a
// source, N workers and one writer, all real processes over ipc:
//   - 1 worker and 3 workers give byte-identical stores (every record's mu,
//     sigma, flipped mu and sigma, label), the labels are the class folders'
//     indices, and record 0 equals the in-process encode of the ADM centre
//     crop (1e-5: the in-process batch differs);
//   - a second run on a full store has nothing to do (resume) and changes
//     nothing;
//   - a corrupt image is left out, named and counted; the run still ends 0;
//   - bad usage exits 2.
// Random tokenizer weights; no dataset needed.
#include <cblas.h>
#include <criterion/criterion.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "data/image_folder.h"
#include "data/image_io.h"
#include "models/vae.h"
#include "nn/safetensors.h"
#include "store/store.h"
#include "tests/util.h"

enum { NCAT = 7, NDOG = 6, NIMG = NCAT + NDOG, PER = 4 * 8 * 8 };

static char *dir, ck[600];

static void setup(void) {
    cr_assert(access("bin/encode", X_OK) == 0, "bin/encode missing: run make first");
    omp_set_num_threads(1);
    openblas_set_num_threads(1);
    dir = test_tmpdir("enc_folder");
    char p[700];
    vae_config vc;
    cr_assert_eq(vae_config_preset("f4c4", 3, &vc), 0);
    vae *m = NULL;
    cr_assert_eq(vae_create(&m, &vc, 1, 0), 0);
    vae_init_params(m, 31);
    snprintf(ck, sizeof ck, "%s/tok", dir);
    snprintf(p, sizeof p, "%s.safetensors", ck);
    st_kv meta[2] = {{"vae.config", "f4c4"}, {"vae.in_ch", "3"}};
    cr_assert_eq(st_save_params(p, &m->pt, DT_F32, meta, 2), 0, "%s", vel_error_detail());
    vae_destroy(&m);
    const char *cls[2] = {"cat", "dog"};
    snprintf(p, sizeof p, "%s/folder", dir);
    cr_assert_eq(mkdir(p, 0755), 0);
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, "%s/folder/%s", dir, cls[k]);
        cr_assert_eq(mkdir(p, 0755), 0);
        for (int i = 0; i < (k ? NDOG : NCAT); i++) {
            int w = k ? 36 : 40, h = k ? 44 : 36;   // cropped to 32 x 32 (the tokenizer's resolution)
            float f[44 * 40 * 3];
            uint8_t px[44 * 40 * 3];
            fill_uniform(f, w * h * 3, 100 + (uint64_t)(k * 50 + i), 0, 255);
            for (int j = 0; j < w * h * 3; j++) px[j] = (uint8_t)f[j];
            snprintf(p, sizeof p, "%s/folder/%s/%02d.png", dir, cls[k], i);
            cr_assert_eq(png_write(p, px, w, h, 3), 0);
        }
    }
}

static void teardown(void) {
    rm_rf(dir);
    free(dir);
}

// Source, writer and n workers on folder `data` into `store`; tag names the
// endpoints and logs. Returns the first non-zero exit code, or 0.
static int run_graph(const char *tag, const char *data, const char *store, int nworkers) {
    char ep[5][700];
    const char *nm[5] = {"jobs", "acks", "ctl", "in", ""};
    for (int i = 0; i < 4; i++) snprintf(ep[i], sizeof ep[i], "ipc://%s/%s-%s", dir, tag, nm[i]);
    pid_t pid[8];
    int np = 0;
    pid[np++] = test_spawn("exec bin/encode --model vae-folder --role writer --data %s --ckpt %s --store %s --in %s "
                           "--ctl %s --acks %s --timeout-s 60 2>%s/%s-writer.log", data, ck, store, ep[3], ep[2], ep[1],
                           dir, tag);
    pid[np++] = test_spawn("exec bin/encode --model vae-folder --role source --data %s --store %s --jobs-bind %s "
                           "--acks-bind %s --ctl-bind %s --job-size 4 --deadline-ms 30000 --stall-s 60 "
                           "2>%s/%s-source.log", data, store, ep[0], ep[1], ep[2], dir, tag);
    for (int w = 0; w < nworkers; w++)
        pid[np++] = test_spawn("OMP_NUM_THREADS=1 exec bin/encode --model vae-folder --role worker --data %s --ckpt %s "
                               "--jobs %s --ctl %s --out %s --batch 2 2>%s/%s-worker%d.log", data, ck, ep[0], ep[2],
                               ep[3], dir, tag, w);
    int rc = 0;
    for (int i = 0; i < np; i++) {
        int st;
        cr_assert_gt(pid[i], 0);
        cr_assert_eq(waitpid(pid[i], &st, 0), pid[i]);
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
        if (code && !rc) rc = code;
    }
    return rc;
}

static void read_all(const char *path, float *mom, int32_t *lab, uint64_t *count) {
    store *st = NULL;
    cr_assert_eq(store_open(&st, path, NULL, NULL, NULL), 0, "%s", vel_error_detail());
    cr_assert_eq(store_count(st, count), 0);
    for (int i = 0; i < NIMG; i++)
        for (int fl = 0; fl < 2; fl++)
            if (store_get(st, mom + (size_t)(4 * i + 2 * fl) * PER, mom + (size_t)(4 * i + 2 * fl + 1) * PER, &lab[i],
                          (uint64_t)i, fl) != 0)
                lab[i] = -100;   // absent
    store_close(&st);
}

Test(encode_folder, workers_writer_identical_for_any_n, .init = setup, .fini = teardown, .timeout = 300) {
    char data[700], s1[700], s3[700];
    snprintf(data, sizeof data, "%s/folder", dir);
    snprintf(s1, sizeof s1, "%s/store1", dir);
    snprintf(s3, sizeof s3, "%s/store3", dir);
    cr_assert_eq(run_graph("a", data, s1, 1), 0, "1 worker: see the logs in %s", dir);
    cr_assert_eq(run_graph("b", data, s3, 3), 0, "3 workers: see the logs in %s", dir);
    static float m1[NIMG * 4 * PER], m3[NIMG * 4 * PER];
    int32_t l1[NIMG], l3[NIMG];
    uint64_t c1, c3;
    read_all(s1, m1, l1, &c1);
    read_all(s3, m3, l3, &c3);
    cr_assert(c1 == NIMG && c3 == NIMG, "records %llu and %llu of %d", (unsigned long long)c1, (unsigned long long)c3, NIMG);
    cr_assert_eq(memcmp(m1, m3, sizeof m1), 0, "the stores of 1 and 3 workers differ");
    for (int i = 0; i < NIMG; i++) cr_assert_eq(l1[i], i < NCAT ? 0 : 1, "label of %d", i);
    cr_assert_eq(memcmp(l1, l3, sizeof l1), 0);
    // record 0 vs the in-process encode of image 0's centre crop
    image_folder *fo = NULL;
    cr_assert_eq(image_folder_open(data, &fo), 0);
    float x[3 * 1024];
    cr_assert_eq(image_folder_load_f32(fo, 0, 32, x, NULL), 0);
    image_folder_destroy(&fo);
    vae_config vc;
    cr_assert_eq(vae_config_preset("f4c4", 3, &vc), 0);
    vae *m = NULL;
    cr_assert_eq(vae_create(&m, &vc, 1, 0), 0);
    char p[700];
    snprintf(p, sizeof p, "%s.safetensors", ck);
    cr_assert_eq(st_load_params(p, &m->pt), 0);
    vae_encode(m, x, 1);
    expect_close_f32("record 0 mu vs in-process", m1, m->mu, PER, 1e-5, 1e-5);
    vae_destroy(&m);
    // resume: nothing left to do, nothing changed
    cr_assert_eq(run_graph("c", data, s1, 1), 0);
    cr_assert_eq(test_sh("grep -q '0 of %d images to encode' %s/c-source.log", NIMG, dir), 0);
    static float m1b[NIMG * 4 * PER];
    read_all(s1, m1b, l3, &c3);
    cr_assert(c3 == NIMG && memcmp(m1, m1b, sizeof m1) == 0, "a resumed run changed the store");
}

Test(encode_folder, corrupt_image_left_out_and_bad_usage, .init = setup, .fini = teardown, .timeout = 300) {
    char data[700], s[700];
    snprintf(data, sizeof data, "%s/folder", dir);
    snprintf(s, sizeof s, "%s/store", dir);
    cr_assert_eq(test_sh("head -c 60 %s/dog/03.png > %s/t && mv %s/t %s/dog/03.png", data, dir, dir, data), 0);
    cr_assert_eq(run_graph("d", data, s, 2), 0, "see the logs in %s", dir);
    static float mom[NIMG * 4 * PER];
    int32_t lab[NIMG];
    uint64_t c;
    read_all(s, mom, lab, &c);
    cr_assert_eq(c, NIMG - 1);
    cr_assert_eq(lab[NCAT + 3], -100, "the corrupt image must be absent");
    cr_assert_eq(test_sh("grep -q '1 images unreadable' %s/d-writer.log", dir), 0);
    cr_assert_eq(test_sh("cat %s/d-worker*.log | grep -q 'dog/03.png'", dir), 0, "the file must be named");
    // usage
    const char *bad[] = {"--role boss --data %s", "--role writer --data %s --ckpt x --in ipc://@a --ctl ipc://@b --acks ipc://@c",
                         "--role source --data %s/nonexistent --store x --jobs-bind ipc://@a --acks-bind ipc://@b --ctl-bind ipc://@c",
                         "--role worker --data %s --ckpt /nonexistent --jobs ipc://@a --ctl ipc://@b --out ipc://@c"};
    for (int k = 0; k < 4; k++) {
        char args[1200];
        snprintf(args, sizeof args, bad[k], data);
        cr_assert_eq(test_sh("bin/encode --model vae-folder %s 2>%s/err.log", args, dir), 2, "exit 2 for %s", args);
        cr_assert_eq(test_sh("grep -q '^encode: ' %s/err.log", dir), 0, "a message for %s", args);
    }
    // a bad endpoint is a usage error (exit 2, like every other stage), named once, for each role
    char ep_args[3][2400];
    snprintf(ep_args[0], sizeof ep_args[0], "--role writer --data %s --ckpt %s --store %s/ep-store "
             "--in tcp://127.0.0.1:99999 --ctl ipc://%s/c --acks ipc://%s/a", data, ck, dir, dir, dir);
    snprintf(ep_args[1], sizeof ep_args[1], "--role worker --data %s --ckpt %s --jobs tcp://127.0.0.1:99999 "
             "--ctl ipc://%s/c --out ipc://%s/o", data, ck, dir, dir);
    snprintf(ep_args[2], sizeof ep_args[2], "--role source --data %s --store %s/ep-store --jobs-bind tcp://127.0.0.1:99999 "
             "--acks-bind ipc://%s/a --ctl-bind ipc://%s/c", data, dir, dir, dir);
    for (int k = 0; k < 3; k++) {
        int rc = test_sh("bin/encode --model vae-folder %s 2>%s/err.log", ep_args[k], dir);
        cr_expect_eq(rc, 2, "exit %d, want 2, for %s", rc, ep_args[k]);
        cr_expect_eq(test_sh("grep -q 'bad tcp port' %s/err.log", dir), 0, "the port must be named for %s", ep_args[k]);
    }
}
