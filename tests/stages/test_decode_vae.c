// test_decode_vae.c: `bin/decode --model vae` with a 3-channel (RGB)
// tokenizer whose preset comes from the checkpoint's metadata (no --config):
// - bus mode: images (n, 3, 32, 32) equal the in-process decode of the
//   de-normalised latents, u8 is their NHWC byte image, a "labels" tensor on
//   the latents message comes back unchanged on the images message (and is
//   absent when the latents had none), labels of the wrong length drop the
//   item, eos ends the process with status 0;
// - store mode: decoded.npz holds the NHWC bytes of the decoded records;
//   --out names a folder that does not exist yet: it is created (mkdir -p).
// - SIGKILL of one of two decoders mid-run loses and duplicates nothing.
// Random weights and a hand-made store (no dataset needed). Skips when
// bin/decode is not built.
#include <cblas.h>
#include <criterion/criterion.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus/bus.h"
#include "data/image_io.h"
#include "models/vae.h"
#include "nn/safetensors.h"
#include "store/store.h"
#include "tests/util.h"

static void one_thread(void) {
    omp_set_num_threads(1);
    openblas_set_num_threads(1);
}

// RGB f4c4 tokenizer with random weights at PREFIX.safetensors (metadata
// vae.config f4c4, as train --model vae writes it) and a store of latent
// shape (4, 8, 8) with per-channel stats and two records.
static vae *make_fixture(const char *dir, char *ck, size_t ckcap, char *spath, size_t scap) {
    vae_config vc;
    cr_assert_eq(vae_config_preset("f4c4", 3, &vc), 0);
    vae *m = NULL;
    cr_assert_eq(vae_create(&m, &vc, 2, 0), 0);
    vae_init_params(m, 31);
    snprintf(ck, ckcap, "%s/rgb", dir);
    char wpath[700];
    snprintf(wpath, sizeof wpath, "%s.safetensors", ck);
    st_kv meta[2] = {{"vae.config", "f4c4"}, {"vae.in_ch", "3"}};
    cr_assert_eq(st_save_params(wpath, &m->pt, DT_F32, meta, 2), 0, "%s", vel_error_detail());
    snprintf(spath, scap, "%s/store", dir);
    store_meta sm;
    cr_assert_eq(store_meta_init(&sm, "rgbtest", 4, 8, 8, false, "photos", 2, "test"), 0);
    store *st = NULL;
    cr_assert_eq(store_create(&st, spath, &sm, NULL), 0);
    float mean[4] = {0.1f, -0.2f, 0.3f, 0.0f}, sd[4] = {0.9f, 1.1f, 0.7f, 1.3f};
    cr_assert_eq(store_set_stats(st, mean, sd), 0);
    float mu[2 * 256], sig[2 * 256];
    fill_normal(mu, 2 * 256, 5, 1.0f);
    fill_uniform(sig, 2 * 256, 6, 0.1f, 0.5f);
    store_record r[2] = {{.index = 0, .label = 4, .mu = mu, .sigma = sig},
                         {.index = 1, .label = 9, .mu = mu + 256, .sigma = sig + 256}};
    cr_assert_eq(store_put_batch(st, r, 2, NULL), 0);
    store_close(&st);
    return m;
}

static void send_latents(bus_socket *push, uint64_t id, const float *zn, int n, const int32_t *labels,
                         int nlabels) {
    bus_msg *msg = NULL;
    tensor tz = tensor_view(DT_F32, (void *)zn, 4, (int64_t[]){n, 4, 8, 8});
    cr_assert_eq(bus_msg_new(&msg, "latents", 0, id), 0);
    cr_assert_eq(bus_msg_add_tensor(msg, "z", &tz), 0);
    if (labels) {
        tensor tl = tensor_view(DT_I32, (void *)labels, 1, (int64_t[]){nlabels});
        cr_assert_eq(bus_msg_add_tensor(msg, "labels", &tl), 0);
    }
    cr_assert_eq(bus_send(push, &msg, 30000), 0);
}

// Checks an images reply against the in-process decode of zn (n images).
static void check_images(bus_msg *got, vae *m, const store_meta *meta, const float *zn, int n) {
    tensor tx, tu;
    cr_assert_eq(bus_msg_find(got, "x", &tx), 0);
    cr_assert_eq(bus_msg_find(got, "u8", &tu), 0);
    cr_assert(tx.dtype == DT_F32 && tx.ndim == 4 && tx.shape[0] == n && tx.shape[1] == 3 && tx.shape[2] == 32 &&
              tx.shape[3] == 32, "x must be f32 (n, 3, 32, 32)");
    cr_assert(tu.dtype == DT_U8 && tu.ndim == 4 && tu.shape[0] == n && tu.shape[1] == 32 && tu.shape[2] == 32 &&
              tu.shape[3] == 3, "u8 must be (n, 32, 32, 3)");
    float z[2 * 256];
    cr_assert_eq(store_denormalise(z, zn, meta, n), 0);
    const float *want = vae_decode(m, z, n);
    float *gx = malloc(sizeof(float) * (size_t)n * 3072);
    memcpy(gx, tx.data, sizeof(float) * (size_t)n * 3072);   // payloads may be unaligned
    expect_close_f32("bus-decoded RGB images vs in-process", gx, want, (int64_t)n * 3072, 1e-5, 1e-5);
    const uint8_t *gu = tu.data;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < 1024; p++)
                cr_assert_eq(gu[(i * 1024 + p) * 3 + c], image_f32_to_u8(gx[(i * 3 + c) * 1024 + p]),
                             "u8 is not the NHWC image of x at (%d, %d, %d)", i, p, c);
    free(gx);
}

Test(decode_vae, rgb_bus_mode_passes_labels, .init = one_thread) {
    if (access("bin/decode", X_OK)) cr_skip_test("bin/decode not built (make)");
    alarm(150);   // no Criterion .timeout (HACKING.md)
    char *dir = test_tmpdir("dec_rgb");
    char ck[600], spath[600], cmd[4096], ep_in[700], ep_ctl[700], ep_out[700];
    vae *m = make_fixture(dir, ck, sizeof ck, spath, sizeof spath);
    snprintf(ep_in, sizeof ep_in, "ipc://%s/in", dir);
    snprintf(ep_ctl, sizeof ep_ctl, "ipc://%s/ctl", dir);
    snprintf(ep_out, sizeof ep_out, "ipc://%s/out", dir);
    bus_socket *ctl = NULL, *rep = NULL, *push = NULL;
    cr_assert_eq(bus_socket_open(&ctl, BUS_PUB, NULL), 0);
    cr_assert_eq(bus_bind(ctl, ep_ctl), 0);
    cr_assert_eq(bus_socket_open(&rep, BUS_PULL, NULL), 0);
    cr_assert_eq(bus_bind(rep, ep_out), 0);
    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=1 exec bin/decode --model vae --ckpt %s --store %s --in %s --ctl %s --reply %s "
             "--batch 2 2>%s/decode.log",
             ck, spath, ep_in, ep_ctl, ep_out, dir);
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
    float zn[3 * 256];
    fill_normal(zn, 3 * 256, 77, 1.0f);
    int32_t labels[3] = {7, 3, 5};
    send_latents(push, 1, zn, 2, labels, 3);          // labels of the wrong length: dropped
    send_latents(push, 2, zn, 2, labels, 2);          // labels passed on
    send_latents(push, 3, zn + 512, 1, NULL, 0);      // no labels: none on the reply

    bus_msg *got = NULL;
    cr_assert_eq(bus_recv(rep, &got, 60000), 0, "no images from decode (log in %s)", dir);
    cr_assert(bus_msg_is(got, "images"));
    cr_assert_eq(bus_msg_id(got), 2, "item 1 (bad labels) must be dropped, item 2 answered first");
    check_images(got, m, meta, zn, 2);
    tensor tl;
    cr_assert_eq(bus_msg_find(got, "labels", &tl), 0, "labels not passed on");
    cr_assert(tl.dtype == DT_I32 && tl.ndim == 1 && tl.shape[0] == 2);
    int32_t gl[2];
    memcpy(gl, tl.data, sizeof gl);
    cr_assert(gl[0] == 7 && gl[1] == 3, "labels %d %d", gl[0], gl[1]);
    bus_msg_destroy(&got);
    cr_assert_eq(bus_recv(rep, &got, 60000), 0);
    cr_assert_eq(bus_msg_id(got), 3);
    check_images(got, m, meta, zn + 512, 1);
    cr_assert_eq(bus_msg_find(got, "labels", &tl), VEL_ENOTFOUND);
    bus_msg_destroy(&got);

    int status = -1;
    for (int t = 0; t < 100; t++) {
        bus_send_eos(ctl, 0, 1000);
        if (waitpid(pid, &status, WNOHANG) == pid) break;
        usleep(100000);
    }
    if (status == -1) { kill(pid, SIGKILL); waitpid(pid, &status, 0); }
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "decode did not finish cleanly (log in %s)", dir);
    store_close(&st);
    bus_socket_close(&push); bus_socket_close(&ctl); bus_socket_close(&rep);
    vae_destroy(&m);
    rm_rf(dir);
    free(dir);
    alarm(0);
}

// Store mode: decoded.npz ("arr_0", uint8 (2, 32, 32, 3), stored ZIP) holds
// the NHWC bytes of the decoded records' mu; --out may name a missing folder.
Test(decode_vae, rgb_store_mode_npz_is_nhwc, .init = one_thread) {
    if (access("bin/decode", X_OK)) cr_skip_test("bin/decode not built (make)");
    alarm(150);
    char *dir = test_tmpdir("dec_rgb_store");
    char ck[600], spath[600], cmd[4096], path[700];
    vae *m = make_fixture(dir, ck, sizeof ck, spath, sizeof spath);
    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=1 bin/decode --model vae --ckpt %s --store %s --out %s --n 2 2>%s/decode.log", ck,
             spath, dir, dir);
    cr_assert_eq(system(cmd), 0, "decode failed: %s", cmd);
    store *st = NULL;
    cr_assert_eq(store_open(&st, spath, NULL, NULL, NULL), 0);
    float mu[2 * 256];
    uint64_t idx[2] = {0, 1};
    cr_assert_eq(store_read_batch(st, mu, NULL, NULL, idx, NULL, 2), 0);
    store_close(&st);
    const float *x = vae_decode(m, mu, 2);
    uint8_t want[2 * 3072];
    for (int i = 0; i < 2; i++)
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < 1024; p++) want[(i * 1024 + p) * 3 + c] = image_f32_to_u8(x[(i * 3 + c) * 1024 + p]);
    snprintf(path, sizeof path, "%s/decoded.npz", dir);
    FILE *f = fopen(path, "rb");
    cr_assert(f, "no %s", path);
    uint8_t buf[16384];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    cr_assert(len > sizeof want && len < sizeof buf, "npz of %zu bytes", len);
    cr_assert(memmem(buf, len, "(2, 32, 32, 3)", 14) != NULL, "npy header must give shape (2, 32, 32, 3)");
    cr_assert(memmem(buf, len, want, sizeof want) != NULL, "npz payload is not the NHWC decode");
    int w, h, c;
    uint8_t *png = NULL;
    snprintf(path, sizeof path, "%s/decoded.png", dir);
    cr_assert_eq(png_read(path, 0, &png, &w, &h, &c), 0);
    cr_assert_eq(c, 3, "the grid is in colour");
    free(png);
    // --out into a folder that does not exist (two levels): created, as mkdir
    // -p (it used to fail with "I/O error" when writing decoded.png).
    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=1 bin/decode --model vae --ckpt %s --store %s --out %s/new/deeper --n 2 2>%s/decode2.log",
             ck, spath, dir, dir);
    cr_assert_eq(system(cmd), 0, "decode into a missing folder failed: %s", cmd);
    snprintf(path, sizeof path, "%s/new/deeper/decoded.npz", dir);
    cr_assert_eq(access(path, R_OK), 0, "no %s", path);
    vae_destroy(&m);
    rm_rf(dir);
    free(dir);
    alarm(0);
}

// SIGKILL of a decoder mid-run: an in-test job source (deadline 1 s, plain
// PUSH) and sink (bus_sink: dedupe + acks), two `decode --model vae`
// processes, and an in-test "sampler" that routes each job's latents to a
// decoder of its choosing (no reliance on which connection ZMQ picks).
// Decoder 1 answers job 0 (so it is bound and working; its re-issues go to
// decoder 1 too) while the other jobs wait in the test; it is then SIGSTOPped, sent two of the waiting jobs
// while stopped (so it provably holds them: it cannot have read, let alone
// answered them) and SIGKILLed. Everything else, and the re-issues of the
// two lost jobs, go to decoder 0. The run must complete with
// every job's images exactly once at the sink, equal to the in-process
// decode, at least 2 re-issues, decoder 0 exiting 0 on eos.
enum { KJOBS = 8 };

Test(decode_vae, sigkill_of_a_decoder_loses_nothing, .init = one_thread) {
    if (access("bin/decode", X_OK)) cr_skip_test("bin/decode not built (make)");
    alarm(240);
    char *dir = test_tmpdir("dec_kill");
    char ck[600], spath[600], ep[6][700];
    vae *m = make_fixture(dir, ck, sizeof ck, spath, sizeof spath);
    const char *names[6] = {"jobs", "acks", "ctl", "img", "lat0", "lat1"};
    for (int i = 0; i < 6; i++) snprintf(ep[i], sizeof ep[i], "ipc://%s/%s", dir, names[i]);
    bus_source *src = NULL;
    cr_assert_eq(bus_source_open(&src, &(bus_source_opts){.jobs_ep = ep[0], .acks_ep = ep[1], .ctl_ep = ep[2],
                                                           .deadline_ms = 1000}), 0);
    for (int j = 0; j < KJOBS; j++) {
        bus_msg *job = NULL;
        cr_assert_eq(bus_msg_new(&job, "job", 0, (uint64_t)j), 0);
        cr_assert_eq(bus_source_add(src, &job), 0);
    }
    bus_sink *sink = NULL;
    cr_assert_eq(bus_sink_open(&sink, &(bus_sink_opts){.in = {.data_ep = ep[3], .bind = 1, .ctl_ep = ep[2],
                                                              .nproducers = 1}, .acks_ep = ep[1]}), 0);
    pid_t dec[2];
    for (int d = 0; d < 2; d++) {
        dec[d] = test_spawn("OMP_NUM_THREADS=1 exec bin/decode --model vae --ckpt %s --store %s --in %s --ctl %s "
                            "--reply %s --batch 2 2>%s/decode%d.log", ck, spath, ep[4 + d], ep[2], ep[3], dir, d);
        cr_assert_gt(dec[d], 0);
    }
    bus_socket *pull = NULL, *push[2] = {NULL, NULL};
    cr_assert_eq(bus_socket_open(&pull, BUS_PULL, NULL), 0);
    cr_assert_eq(bus_connect(pull, ep[0]), 0);
    for (int d = 0; d < 2; d++) {
        cr_assert_eq(bus_socket_open(&push[d], BUS_PUSH, NULL), 0);
        cr_assert_eq(bus_connect(push[d], ep[4 + d]), 0);
    }
    store *st = NULL;
    cr_assert_eq(store_open(&st, spath, NULL, NULL, NULL), 0);
    static float zn[KJOBS][256];
    for (int j = 0; j < KJOBS; j++) fill_normal(zn[j], 256, 1000 + (uint64_t)j, 1.0f);
    // Until decoder 1 has answered job 0, other jobs wait here (one copy per
    // id: copies re-issued meanwhile are dropped, the source issues again).
    int got[KJOBS] = {0}, pending[KJOBS] = {0}, lost[2] = {-1, -1}, killed = 0, eos = 0;
    int32_t label = 1;
    double t0 = vel_now();
    while (!eos && vel_now() - t0 < 200) {
        int r = bus_source_step(src, 5);
        cr_assert(r >= 0, "source: %s", vel_strerror(r));
        bus_msg *job = NULL;
        if (bus_recv(pull, &job, 5) == 0) {
            uint64_t id = bus_msg_id(job);
            bus_msg_destroy(&job);
            cr_assert_lt(id, KJOBS);
            if (killed) send_latents(push[0], id, zn[id], 1, &label, 1);
            else if (id == 0) send_latents(push[1], 0, zn[0], 1, &label, 1);   // re-issues too: the
            else pending[id] = 1;   // sink drops an item whose issue table it has not seen yet
        }
        int npending = 0;
        for (int j = 1; j < KJOBS; j++) npending += pending[j];
        // Both conditions: on a fast run decoder 1 can answer job 0 before a
        // second job has left the source (seen once with two test runs at once).
        if (got[0] && !killed && npending >= 2) {
            // decoder 1 is bound and working: stop it, hand it two jobs it
            // cannot touch, kill it; the rest go to decoder 0
            cr_assert_eq(kill(dec[1], SIGSTOP), 0);
            for (int j = 1; j < KJOBS; j++) {
                if (!pending[j]) continue;
                int to1 = lost[1] < 0;
                if (to1) lost[lost[0] < 0 ? 0 : 1] = j;
                send_latents(push[to1 ? 1 : 0], (uint64_t)j, zn[j], 1, &label, 1);
                pending[j] = 0;
            }
            cr_assert(lost[1] > 0, "fewer than 2 jobs were waiting");
            usleep(100000);   // let the two messages leave this process
            cr_assert_eq(kill(dec[1], SIGKILL), 0);
            killed = 1;
        }
        bus_msg *img = NULL;
        int e = bus_sink_next(sink, &img, 5);
        if (e == BUS_EEOS) eos = 1;
        if (e || !img) continue;
        uint64_t id = bus_msg_id(img);
        cr_assert_lt(id, KJOBS);
        got[id]++;
        check_images(img, m, store_get_meta(st), zn[id], 1);
        bus_msg_destroy(&img);
    }
    cr_assert(eos, "the run did not end (every job acked, eos) in 200 s; killed %d", killed);
    cr_assert(killed);
    for (int j = 0; j < KJOBS; j++) cr_assert_eq(got[j], 1, "job %d arrived %d times at the sink", j, got[j]);
    bus_source_stats ss;
    bus_source_get_stats(src, &ss);
    cr_assert_geq(ss.reissued, 2, "the 2 jobs held by the killed decoder must come back by re-issue");
    cr_assert_eq(ss.acked, KJOBS);
    int status;
    cr_assert_eq(waitpid(dec[1], &status, 0), dec[1]);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    for (int t = 0; t < 300 && waitpid(dec[0], &status, WNOHANG) != dec[0]; t++) {
        bus_source_step(src, 10);   // keeps publishing eos until it lingers out
        usleep(100000);
    }
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "decoder 0 did not end cleanly (log %s/decode0.log)", dir);
    cr_log_info("decoder SIGKILL: jobs %d and %d lost with it; %llu issued, %llu re-issued, %llu acked", lost[0],
                lost[1], (unsigned long long)ss.issued, (unsigned long long)ss.reissued, (unsigned long long)ss.acked);
    store_close(&st);
    bus_socket_close(&pull); bus_socket_close(&push[0]); bus_socket_close(&push[1]);
    bus_sink_close(&sink);
    bus_source_close(&src);
    vae_destroy(&m);
    rm_rf(dir);
    free(dir);
    alarm(0);
}
