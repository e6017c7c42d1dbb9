// test_vae_stages.c: the image stages as processes. Two `bin/encode --model
// vae` processes fill one store over overlapping index ranges at the same
// time; every record must equal the in-process encoding (mu, sigma, label,
// flipped variant), and `bin/decode` must turn the store back into a PNG grid
// and an .npz. Skips when the stage binaries are not built.
#include <cblas.h>
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus/bus.h"
#include "data/augment.h"
#include "data/image_io.h"
#include "data/idx.h"
#include "data/photos.h"
#include "models/vae.h"
#include "models/vae_ckpt.h"
#include "nn/safetensors.h"
#include "store/store.h"
#include "tests/util.h"

static void one_thread(void) {
    omp_set_num_threads(1);
    openblas_set_num_threads(1);
}

Test(vae_stages, encode_two_processes_then_decode, .init = one_thread, .timeout = 120) {
    if (access("bin/encode", X_OK) || access("bin/decode", X_OK))
        cr_skip_test("bin/encode or bin/decode not built (make)");
    if (access(FMNIST_DEFAULT_DIR "/t10k-images-idx3-ubyte.gz", R_OK))
        cr_skip_test("Fashion-MNIST not installed");
    vae_config vc;
    cr_assert_eq(vae_config_preset("f4c4", 1, &vc), 0);
    vae *m = NULL;
    cr_assert_eq(vae_create(&m, &vc, 12, 0), 0);
    vae_init_params(m, 77);
    char *dir = test_tmpdir("vae_stages");
    char ck[512], wpath[600], spath[600], cmd[4096];
    snprintf(ck, sizeof ck, "%s/vae", dir);
    snprintf(wpath, sizeof wpath, "%s.safetensors", ck);
    snprintf(spath, sizeof spath, "%s/store", dir);
    cr_assert_eq(st_save_params(wpath, &m->pt, DT_F32, NULL, 0), 0, "%s", vel_error_detail());
    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=1 bin/encode --model vae --split test --ckpt %s --store %s --first 0 --end 8 --batch 3 >/dev/null 2>&1 & "
             "OMP_NUM_THREADS=1 bin/encode --model vae --split test --ckpt %s --store %s --first 4 --end 12 --batch 5 >/dev/null 2>&1; "
             "r=$?; wait $!; r2=$?; exit $((r + r2))",
             ck, spath, ck, spath);
    cr_assert_eq(system(cmd), 0, "encode processes failed: %s", cmd);

    fmnist *ds = NULL;
    cr_assert_eq(fmnist_load(NULL, "test", &ds), 0, "%s", vel_error_detail());
    float x[12 * 1024], xf[12 * 1024];
    int32_t lab[12];
    fmnist_batch_f32(ds, x, lab, NULL, 0, 12);
    image_hflip(xf, x, 12, 1, 32, 32);
    int per = 4 * 8 * 8;
    store *st = NULL;
    int64_t shape[3] = {4, 8, 8};
    cr_assert_eq(store_open(&st, spath, NULL, shape, NULL), 0, "%s", vel_error_detail());
    uint64_t count = 0;
    store_count(st, &count);
    cr_assert_eq(count, 12);
    float mu[256], sg[256], want_mu[12 * 256], want_sg[12 * 256];
    for (int v = 0; v < 2; v++) {
        vae_encode(m, v ? xf : x, 12);
        memcpy(want_mu, m->mu, sizeof(float) * 12 * per);
        for (int i = 0; i < 12 * per; i++) {
            float l = fminf(fmaxf(m->logvar[i], LOGVAR_MIN), LOGVAR_MAX);
            want_sg[i] = expf(0.5f * l);
        }
        for (int i = 0; i < 12; i++) {
            int32_t l = -1;
            cr_assert_eq(store_get(st, mu, sg, &l, (uint64_t)i, v == 1), 0);
            cr_assert_eq(l, lab[i]);
            // Same code, same weights, but batch sizes 3/5 vs 12: GEMM blocking
            // may differ, so compare at 1e-5 rather than bit-exactly.
            expect_close_f32("store mu vs in-process", mu, want_mu + i * per, per, 1e-5, 1e-5);
            expect_close_f32("store sigma vs in-process", sg, want_sg + i * per, per, 1e-5, 1e-5);
        }
    }
    const store_meta *meta = store_get_meta(st);
    cr_assert(meta->has_flip);
    store_close(&st);

    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=1 bin/decode --model vae --ckpt %s --store %s --out %s --n 12 --batch 5 >/dev/null 2>&1",
             ck, spath, dir);
    cr_assert_eq(system(cmd), 0, "decode failed: %s", cmd);
    snprintf(wpath, sizeof wpath, "%s/decoded.png", dir);
    uint8_t *pix = NULL;
    int w, h, c;
    cr_assert_eq(png_read(wpath, 0, &pix, &w, &h, &c), 0);
    cr_assert(w == 8 * 34 + 2 && h == 2 * 34 + 2 && c == 1, "grid %dx%dx%d", w, h, c);
    free(pix);
    snprintf(wpath, sizeof wpath, "%s/decoded.npz", dir);
    cr_assert_eq(access(wpath, R_OK), 0);
    fmnist_destroy(&ds);
    vae_destroy(&m);
    rm_rf(dir);
    free(dir);
}

// `train --model vae`: 3 steps straight vs 2 steps + --resume to 3 must write
// byte-identical weights and optimizer files (batches and noise are pure
// functions of (seed, step)).
Test(vae_stages, train_resume_is_bit_exact, .timeout = 180) {
    if (access("bin/train", X_OK)) cr_skip_test("bin/train not built (make)");
    if (access(FMNIST_DEFAULT_DIR "/train-images-idx3-ubyte.gz", R_OK))
        cr_skip_test("Fashion-MNIST not installed");
    char *dir = test_tmpdir("vae_resume_stage");
    char cmd[4096], a[600], b[600];
    const char *common = "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 bin/train --model vae --reg ve "
                         "--batch 2 --ckpt-every 1 --seed 3";
    snprintf(cmd, sizeof cmd,
             "%s --out %s/a --steps 3 >/dev/null 2>&1 && %s --out %s/b --steps 2 >/dev/null 2>&1 && "
             "%s --out %s/b --steps 3 --resume >/dev/null 2>&1",
             common, dir, common, dir, common, dir);
    cr_assert_eq(system(cmd), 0, "train runs failed: %s", cmd);
    snprintf(a, sizeof a, "%s/a/vae.safetensors", dir);
    snprintf(b, sizeof b, "%s/b/vae.safetensors", dir);
    cr_assert(test_files_equal(a, b), "resumed weights differ");
    snprintf(a, sizeof a, "%s/a/vae.optim.safetensors", dir);
    snprintf(b, sizeof b, "%s/b/vae.optim.safetensors", dir);
    cr_assert(test_files_equal(a, b), "resumed optimizer state differs");
    rm_rf(dir);
    free(dir);
}

// Bus mode of `decode --model vae`: normalised latents in over PULL, images
// out over PUSH, eos on the control PUB; the images must equal the
// in-process decode of the de-normalised latents.
Test(vae_stages, decode_bus_mode, .init = one_thread, .timeout = 120) {
    if (access("bin/encode", X_OK) || access("bin/decode", X_OK))
        cr_skip_test("bin/encode or bin/decode not built (make)");
    if (access(FMNIST_DEFAULT_DIR "/t10k-images-idx3-ubyte.gz", R_OK))
        cr_skip_test("Fashion-MNIST not installed");
    vae_config vc;
    cr_assert_eq(vae_config_preset("f4c4", 1, &vc), 0);
    vae *m = NULL;
    cr_assert_eq(vae_create(&m, &vc, 3, 0), 0);
    vae_init_params(m, 78);
    char *dir = test_tmpdir("vae_bus");
    char ck[512], wpath[600], spath[600], cmd[4096], ep_in[600], ep_ctl[600], ep_out[600];
    snprintf(ck, sizeof ck, "%s/vae", dir);
    snprintf(wpath, sizeof wpath, "%s.safetensors", ck);
    snprintf(spath, sizeof spath, "%s/store", dir);
    snprintf(ep_in, sizeof ep_in, "ipc://%s/in", dir);
    snprintf(ep_ctl, sizeof ep_ctl, "ipc://%s/ctl", dir);
    snprintf(ep_out, sizeof ep_out, "ipc://%s/out", dir);
    cr_assert_eq(st_save_params(wpath, &m->pt, DT_F32, NULL, 0), 0, "%s", vel_error_detail());
    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=1 bin/encode --model vae --split test --ckpt %s --store %s --first 0 --end 8 --stats >/dev/null 2>&1",
             ck, spath);
    cr_assert_eq(system(cmd), 0, "encode failed: %s", cmd);

    bus_socket *ctl = NULL, *rep = NULL, *push = NULL;
    cr_assert_eq(bus_socket_open(&ctl, BUS_PUB, NULL), 0);
    cr_assert_eq(bus_bind(ctl, ep_ctl), 0);
    cr_assert_eq(bus_socket_open(&rep, BUS_PULL, NULL), 0);
    cr_assert_eq(bus_bind(rep, ep_out), 0);
    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=1 exec bin/decode --model vae --ckpt %s --store %s --in %s --ctl %s --reply %s --batch 2",
             ck, spath, ep_in, ep_ctl, ep_out);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    cr_assert_gt(pid, 0);
    cr_assert_eq(bus_socket_open(&push, BUS_PUSH, NULL), 0);
    cr_assert_eq(bus_connect(push, ep_in), 0);

    store *st = NULL;
    cr_assert_eq(store_open(&st, spath, NULL, NULL, NULL), 0);
    const store_meta *meta = store_get_meta(st);
    cr_assert(meta->has_stats);
    float mu[3 * 256], zn[3 * 256];
    uint64_t idx[3] = {0, 1, 2};
    cr_assert_eq(store_read_batch(st, mu, NULL, NULL, idx, NULL, 3), 0);
    cr_assert_eq(store_normalise(zn, mu, meta, 3), 0);
    bus_msg *msg = NULL;
    tensor tz = tensor_view(DT_F32, zn, 4, (int64_t[]){3, 4, 8, 8});
    cr_assert_eq(bus_msg_new(&msg, "latents", 0, 5), 0);
    cr_assert_eq(bus_msg_add_tensor(msg, "z", &tz), 0);
    cr_assert_eq(bus_send(push, &msg, 30000), 0);
    bus_msg *got = NULL;
    cr_assert_eq(bus_recv(rep, &got, 60000), 0, "no images from decode");
    cr_assert(bus_msg_is(got, "images"));
    cr_assert_eq(bus_msg_id(got), 5);
    tensor tx, tu;
    cr_assert_eq(bus_msg_find(got, "x", &tx), 0);
    cr_assert_eq(bus_msg_find(got, "u8", &tu), 0);
    cr_assert(tx.ndim == 4 && tx.shape[0] == 3 && tu.dtype == DT_U8);
    // Reference: de-normalise in-process and decode (z_n round trip ~1 ulp).
    float z[3 * 256];
    cr_assert_eq(store_denormalise(z, zn, meta, 3), 0);
    const float *want = vae_decode(m, z, 3);
    float *gx = malloc(sizeof(float) * 3 * 1024);
    memcpy(gx, tx.data, sizeof(float) * 3 * 1024);   // payloads may be unaligned
    expect_close_f32("bus-decoded images vs in-process", gx, want, 3 * 1024, 1e-5, 1e-5);
    const uint8_t *gu = tu.data;
    for (int k = 0; k < 3 * 1024; k++) cr_assert_eq(gu[k], image_f32_to_u8(gx[k]));
    free(gx);
    bus_msg_destroy(&got);
    // End of stream: decode exits 0.
    int status = -1;
    for (int t = 0; t < 100; t++) {
        bus_send_eos(ctl, 0, 1000);
        if (waitpid(pid, &status, WNOHANG) == pid) break;
        usleep(100000);
    }
    if (!WIFEXITED(status)) { kill(pid, SIGKILL); waitpid(pid, &status, 0); }
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "decode did not finish cleanly");
    store_close(&st);
    bus_socket_close(&push); bus_socket_close(&ctl); bus_socket_close(&rep);
    vae_destroy(&m);
    rm_rf(dir);
    free(dir);
}

// SPEC 5 PSNR on the uint8 images (as metrics/image.c, which
// is not linked into this test).
static double psnr_u8(const float *a, const float *b, int n) {
    double se = 0;
    for (int i = 0; i < n; i++) {
        double d = (double)image_f32_to_u8(a[i]) - (double)image_f32_to_u8(b[i]);
        se += d * d;
    }
    return se == 0 ? 100.0 : 10.0 * log10(255.0 * 255.0 / (se / n));
}

// An RGB (3-channel) tokenizer checkpoint with vae.config metadata: `eval`
// must take the channels from the weights and evaluate the photo bank's
// held-out tiles in colour; `encode --split test` must store exactly those
// tiles (label = photo index) as the in-process encoding; a --config that
// contradicts the metadata is a usage error (exit 2). Then
// --plot-robustness turns two reports into a PNG. Skips without the photo
// bank (scripts/photos.sh).
Test(vae_stages, rgb_eval_encode_and_plot, .init = one_thread, .timeout = 120) {
    if (access("bin/encode", X_OK) || access("bin/eval", X_OK)) cr_skip_test("bin/encode or bin/eval not built");
    photo_bank *pb = NULL;
    if (photos_open(NULL, 64, 32, &pb)) cr_skip_test("no photo bank: %s", vel_error_detail());
    vae_config vc;
    cr_assert_eq(vae_config_preset("f4c4", 3, &vc), 0);
    vae *m = NULL;
    cr_assert_eq(vae_create(&m, &vc, 8, 0), 0);
    vae_init_params(m, 5);
    char *dir = test_tmpdir("vae_rgb_stages");
    char ck[512], wpath[600], spath[600], cmd[4096];
    snprintf(ck, sizeof ck, "%s/vae", dir);
    snprintf(wpath, sizeof wpath, "%s.safetensors", ck);
    snprintf(spath, sizeof spath, "%s/store", dir);
    st_kv meta[2] = {{"vae.config", "f4c4"}, {"vae.reg", "ve"}};
    cr_assert_eq(st_save_params(wpath, &m->pt, DT_F32, meta, 2), 0, "%s", vel_error_detail());
    vae_config got;
    cr_assert_eq(vae_config_from_ckpt(wpath, NULL, &got), 0, "%s", vel_error_detail());
    cr_assert(got.in_ch == 3 && got.out_ch == 3 && !strcmp(got.name, "f4c4"));
    cr_assert_eq(vae_config_from_ckpt(wpath, "f4c8", &got), VEL_EINVAL);
    cr_expect(strstr(vel_error_detail(), "holds a 'f4c4' tokenizer, not 'f4c8'"), "%s", vel_error_detail());

    // Held-out tiles at base 64: 4 per held-out photo.
    int ntest = 0;
    for (int64_t i = 0; i < pb->n; i++) ntest += photos_is_test((int)(i / pb->per_photo));
    cr_assert(ntest >= 4);
    snprintf(cmd, sizeof cmd,
             // one thread like this process: OpenBLAS's 2-thread sgemm rounds differently
             "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "
             "bin/eval --model vae --ckpt %s --out %s/ev --n 6 --batch 4 --scales 1 --photo-base 64 >/dev/null 2>&1 && "
             "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "
             "bin/encode --model vae --ckpt %s --store %s --split test --photo-base 64 --batch 3 >/dev/null 2>&1",
             ck, dir, ck, spath);
    cr_assert_eq(system(cmd), 0, "eval/encode failed: %s", cmd);
    snprintf(cmd, sizeof cmd, "bin/eval --model vae --ckpt %s --config f4c8 --out %s/ev2 >/dev/null 2>&1", ck, dir);
    int st_rc = system(cmd);
    cr_assert(WIFEXITED(st_rc) && WEXITSTATUS(st_rc) == 2, "config mismatch should exit 2");

    // report.json: in_ch 3, 6 images, PSNR of the first 6 tiles as computed here.
    snprintf(wpath, sizeof wpath, "%s/ev/report.json", dir);
    FILE *f = fopen(wpath, "r");
    cr_assert(f);
    char buf[8192];
    size_t nb = fread(buf, 1, sizeof buf - 1, f);
    buf[nb] = 0;
    fclose(f);
    cr_assert(strstr(buf, "\"in_ch\":\t3") && strstr(buf, "\"n_images\":\t6"), "%s", buf);
    float *x = malloc(sizeof(float) * (size_t)ntest * 3072);
    int32_t *labs = malloc(sizeof(int32_t) * (size_t)ntest);
    int k = 0;
    for (int64_t i = 0; i < pb->n; i++)
        if (photos_is_test((int)(i / pb->per_photo))) {
            memcpy(x + (size_t)k * 3072, pb->imgs + (size_t)i * 3072, sizeof(float) * 3072);
            labs[k++] = (int32_t)(i / pb->per_photo);
        }
    double psnr = 0;
    for (int i0 = 0; i0 < 6; i0 += 4) {
        int B = 6 - i0 < 4 ? 6 - i0 : 4;
        vae_encode(m, x + (size_t)i0 * 3072, B);
        const float *rec = vae_decode(m, m->mu, B);
        for (int b = 0; b < B; b++) psnr += psnr_u8(rec + b * 3072, x + (size_t)(i0 + b) * 3072, 3072);
    }
    psnr /= 6;
    char *p = strstr(buf, "\"psnr\":\t");
    cr_assert(p);
    double rep = strtod(p + 8, NULL);
    cr_assert(fabs(rep - psnr) < 1e-6, "report PSNR %.9g vs %.9g", rep, psnr);

    // The store: every held-out tile, label = photo index, mu as in-process.
    store *st = NULL;
    int64_t shape[3] = {4, 8, 8};
    cr_assert_eq(store_open(&st, spath, NULL, shape, NULL), 0, "%s", vel_error_detail());
    uint64_t count = 0;
    store_count(st, &count);
    cr_assert_eq(count, (uint64_t)ntest);
    float mu[256], sg[256];
    for (int i = 0; i < ntest; i++) {
        int32_t l = -1;
        cr_assert_eq(store_get(st, mu, sg, &l, (uint64_t)i, false), 0);
        cr_assert_eq(l, labs[i]);
        vae_encode(m, x + (size_t)i * 3072, 1);
        expect_close_f32("rgb store mu vs in-process", mu, m->mu, 256, 1e-5, 1e-5);
    }
    cr_assert(strstr(store_get_meta(st)->dataset, "photos-test"));
    store_close(&st);

    // Two reports -> one figure.
    snprintf(cmd, sizeof cmd,
             "bin/eval --model vae --plot-robustness %s/rob.png --labels A,B %s/ev/report.json %s/ev/report.json "
             ">/dev/null 2>&1",
             dir, dir, dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    snprintf(wpath, sizeof wpath, "%s/rob.png", dir);
    uint8_t *pix = NULL;
    int w, h, c;
    cr_assert_eq(png_read(wpath, 3, &pix, &w, &h, &c), 0);
    cr_assert(w == 920 && h == 330);
    free(pix);
    snprintf(cmd, sizeof cmd, "bin/eval --model vae --plot-robustness %s/bad.png %s >/dev/null 2>&1", dir, wpath);
    st_rc = system(cmd);
    cr_assert(WIFEXITED(st_rc) && WEXITSTATUS(st_rc) == 2, "a non-report should exit 2");
    free(x);
    free(labs);
    photos_destroy(&pb);
    vae_destroy(&m);
    rm_rf(dir);
    free(dir);
}
