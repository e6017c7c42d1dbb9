// image_vae.c: `decode --model vae`, latents from the store -> images: the
// first --n records' mu (or mu + sigma*eps with --sample, Philox-seeded)
// decoded by the tokenizer, written as a PNG grid (DIR/decoded.png) and as an
// ADM-compatible DIR/decoded.npz (uint8 N x 32 x 32 x C, "arr_0").
// Bus mode (--in/--ctl/--out, the sampler -> decode -> eval leg of the
// pipeline): PULL "latents" messages with z f32 (n, C, H, W) in the store's
// normalised units, de-normalise them with the store's __meta__
// (store_denormalise, the one normalisation), decode, and PUSH an "images"
// reply with x f32 (n, C, 32, 32) in [-1, 1], u8 (n, 32, 32, C) and, when the
// latents carried one, the "labels" tensor (i32 (n)) unchanged; finish once
// every one of --sources producers has sent eos on --ctl (loop: bus/worker.h).
// The tokenizer's preset and image channels C (1 Fashion-MNIST, 3 photos)
// come from the checkpoint (models/vae_ckpt.h), as in encode and eval.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/image_io.h"
#include "models/vae.h"
#include "models/vae_ckpt.h"
#include "core/base.h"
#include "core/philox.h"
#include "bus/bus.h"
#include "bus/worker.h"
#include "nn/safetensors.h"
#include "stages/common/flags.h"
#include "stages/decode/decode.h"
#include "store/store.h"

static const char STAGE[] = "decode";
// Bounds: --n images are held (and gridded) at once.
enum { DECODE_MAX_N = 65536, DECODE_MAX_BATCH = 1024, DECODE_MAX_SOURCES = 1024 };

static void help(void) {
    printf("usage: decode --model vae --ckpt PREFIX --store DIR --out DIR [options]\n"
           "Decodes latents from the store into images.\n"
           "  --ckpt PREFIX   tokenizer weights PREFIX.safetensors\n"
           "  --config NAME   f4c4, f4c8, f8c4: only checked against the checkpoint's vae.config\n"
           "                  (the preset and image channels come from the checkpoint; f4c4 if unnamed)\n"
           "  --n N           records 0..N-1 (default 64)   --batch N (16)\n"
           "  --sample        decode mu + sigma*eps instead of mu   --seed N (0)\n"
           "  --ncols N       grid columns (default 8)\n"
           "Writes DIR/decoded.png, DIR/decoded.npz.\n"
           "Bus mode (instead of --out): --in EP (bind, PULL latents) --ctl EP (connect, SUB eos)\n"
           "  --reply EP (connect, PUSH images) --sources N (producers, default 1); --store gives\n"
           "  the latent normalisation. A 'labels' tensor (i32 (n)) on a latents message is passed\n"
           "  on to its images message. --bind-any: allow binding --in on any address, not\n"
           "  only 127.0.0.1 (default: loopback only).\n"
           DEVICE_HELP);
}

typedef struct {
    vae *m;
    const store_meta *meta;
    int batch;
    float *z, *x;              // (cap, z, zs, zs), (cap, C, 32, 32)
    uint8_t *u8;               // (cap, 32, 32, C)
    int64_t cap;
} vae_decode_ctx;

// (n, C, H, W) floats in [-1, 1] -> (n, H, W, C) bytes (SPEC's mapping).
static void to_u8_nhwc(uint8_t *u8, const float *x, int64_t n, int C, int HW) {
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < C; c++)
            for (int p = 0; p < HW; p++) u8[(i * HW + p) * C + c] = image_f32_to_u8(x[(i * C + c) * HW + p]);
}

// One "latents" item -> its "images" reply (bus/worker.h callback). A
// "labels" tensor (i32 (n)) on the item travels on to the reply.
static int decode_item(void *ctx, const bus_msg *msg, bus_msg **reply) {
    vae_decode_ctx *c = ctx;
    vae *m = c->m;
    int zc = m->cfg.z_channels, zs = m->zside, per = zc * zs * zs, C = m->cfg.out_ch;
    const int npix = C * 1024;
    tensor tz, tl;
    if (!bus_msg_is(msg, "latents") || bus_msg_find(msg, "z", &tz) || tz.dtype != DT_F32 || tz.ndim != 4 ||
        tz.shape[1] != zc || tz.shape[2] != zs || tz.shape[3] != zs || tz.shape[0] < 1) {
        fprintf(stderr, "decode: item %llu: expected 'latents' with z f32 (n, %d, %d, %d); dropped\n",
                (unsigned long long)bus_msg_id(msg), zc, zs, zs);
        return 0;
    }
    int64_t n = tz.shape[0];
    int has_labels = bus_msg_find(msg, "labels", &tl) == 0;
    if (has_labels && (tl.dtype != DT_I32 || tl.ndim != 1 || tl.shape[0] != n)) {
        fprintf(stderr, "decode: item %llu: labels must be i32 (%lld); dropped\n",
                (unsigned long long)bus_msg_id(msg), (long long)n);
        return 0;
    }
    if (n > c->cap) {
        free(c->z); free(c->x); free(c->u8);
        c->z = malloc(sizeof(float) * (size_t)(n * per));
        c->x = malloc(sizeof(float) * (size_t)(n * npix));
        c->u8 = malloc((size_t)(n * npix));
        c->cap = n;
        if (!c->z || !c->x || !c->u8) { fprintf(stderr, "decode: out of memory\n"); c->cap = 0; return VEL_ENOMEM; }
    }
    int e;
    if ((e = store_denormalise(c->z, tz.data, c->meta, n))) {
        fprintf(stderr, "decode: %s\n", vel_strerror(e));
        return e;
    }
    for (int64_t i0 = 0; i0 < n; i0 += c->batch) {
        int B = (int)(n - i0 < c->batch ? n - i0 : c->batch);
        memcpy(c->x + i0 * npix, vae_decode(m, c->z + i0 * per, B), sizeof(float) * (size_t)B * npix);
    }
    to_u8_nhwc(c->u8, c->x, n, C, 1024);
    tensor tx = tensor_view(DT_F32, c->x, 4, (int64_t[]){n, C, 32, 32});
    tensor tu = tensor_view(DT_U8, c->u8, 4, (int64_t[]){n, 32, 32, C});
    if ((e = bus_msg_new_reply(reply, "images", msg)) || (e = bus_msg_add_tensor(*reply, "x", &tx)) ||
        (e = bus_msg_add_tensor(*reply, "u8", &tu)) ||
        (has_labels && (e = bus_msg_add_tensor(*reply, "labels", &tl)))) {
        fprintf(stderr, "decode: cannot build images: %s\n", vel_strerror(e));
        bus_msg_destroy(reply);
    }
    return 0;
}

// Bus mode: see the file header.
static int decode_bus(vae *m, const store_meta *meta, const char *in_ep, const char *ctl_ep,
                      const char *out_ep, int sources, int batch, int bind_any) {
    vae_decode_ctx c = {.m = m, .meta = meta, .batch = batch};
    bus_worker_opts wo = {.name = "decode",
                          .in = {.data_ep = in_ep, .bind = 1, .ctl_ep = ctl_ep, .nproducers = sources,
                                 .idle_ms = BUS_IDLE_DEFAULT_MS, .sock = {.allow_remote = bind_any}},
                          .out_ep = out_ep};
    bus_worker_stats ws;
    int e = bus_worker_run(&wo, decode_item, &c, &ws);
    if (!e) fprintf(stderr, "[decode vae] decoded %llu items\n", (unsigned long long)ws.answered);
    free(c.z); free(c.x); free(c.u8);
    return vel_exit_code(e);   // 2: bad endpoint; 1: the run failed (abort, idle, ...)
}

int decode_vae_main(int argc, char **argv) {
    const char *ckpt = NULL, *spath = NULL, *out = NULL, *config = NULL;
    const char *in_ep = NULL, *ctl_ep = NULL, *reply_ep = NULL;
    int n = 64, batch = 16, sample = 0, ncols = 8, sources = 1, bind_any = 0;
    uint64_t seed = 0;
    const flag_spec F[] = {
        FLAG_STR_("ckpt", &ckpt), FLAG_STR_("store", &spath), FLAG_STR_("out", &out), FLAG_STR_("config", &config),
        FLAG_INT_("n", &n, 1, DECODE_MAX_N), FLAG_INT_("batch", &batch, 1, DECODE_MAX_BATCH),
        FLAG_BOOL_("sample", &sample), FLAG_U64_("seed", &seed), FLAG_INT_("ncols", &ncols, 1, DECODE_MAX_N),
        FLAG_STR_("in", &in_ep), FLAG_STR_("ctl", &ctl_ep), FLAG_STR_("reply", &reply_ep),
        FLAG_INT_("sources", &sources, 1, DECODE_MAX_SOURCES), FLAG_BOOL_("bind-any", &bind_any), FLAG_DEVICE_};
    int help_asked;
    if (flag_parse(STAGE, argc, argv, F, FLAG_COUNT(F), &help_asked, NULL)) return 2;
    if (help_asked) { help(); return 0; }
    int bus_mode = in_ep || ctl_ep || reply_ep;
    if (bus_mode && (!in_ep || !ctl_ep || !reply_ep)) {
        fprintf(stderr, "decode: bus mode needs --in, --ctl, --reply\n");
        return 2;
    }
    if (!ckpt || !spath || (!out && !bus_mode)) {
        fprintf(stderr, "decode: --ckpt, --store and --out (or the bus flags) are required\n");
        return 2;
    }
    if (!bus_mode && stage_mkdir_p(STAGE, out)) return 1;
    // Preset and image channels from the checkpoint (models/vae_ckpt.h).
    char path[1200];
    snprintf(path, sizeof path, "%s.safetensors", ckpt);
    vae_config vc;
    int e = vae_config_from_ckpt(path, config, &vc);
    if (e) { fprintf(stderr, "decode: %s\n", vel_errmsg(e)); return vel_exit_code(e); }
    if (vc.resolution != 32 || (vc.out_ch != 1 && vc.out_ch != 3)) {
        fprintf(stderr, "decode: %s: only 32x32 tokenizers with 1 or 3 output channels are supported\n", path);
        return 2;
    }
    const int C = vc.out_ch, npix = C * 1024;
    int zc = vc.z_channels, zs = vae_latent_side(&vc), per = zc * zs * zs;
    int64_t shape[3] = {zc, zs, zs};
    vae *m = NULL;
    store *st = NULL;
    int rc = 0;
    float *mu = malloc(sizeof(float) * (size_t)batch * per), *sig = malloc(sizeof(float) * (size_t)batch * per);
    float *eps = malloc(sizeof(float) * (size_t)batch * per), *imgs = malloc(sizeof(float) * (size_t)n * npix);
    uint8_t *u8 = malloc((size_t)n * npix);
    uint64_t *idx = malloc(sizeof(uint64_t) * (size_t)batch);
    if (!mu || !sig || !eps || !imgs || !u8 || !idx || vae_create(&m, &vc, batch, 0)) {
        fprintf(stderr, "decode: out of memory\n");
        rc = 1;
        goto done;
    }
    // A malformed checkpoint or store is an input error (2); EIO and the like stay 1.
    if ((e = st_load_params(path, &m->pt))) {
        fprintf(stderr, "decode: %s: %s (%s)\n", path, vel_strerror(e), vel_error_detail());
        rc = vel_exit_code(e);
        goto done;
    }
    if ((e = store_open(&st, spath, NULL, shape, NULL))) {
        fprintf(stderr, "decode: store %s: %s (%s)\n", spath, vel_strerror(e), vel_error_detail());
        rc = vel_exit_code(e);
        goto done;
    }
    if (bus_mode) {
        const store_meta *meta = store_get_meta(st);
        if (!meta->has_stats) {
            fprintf(stderr, "decode: store %s has no latent statistics (run encode with --stats)\n", spath);
            rc = 2;
            goto done;
        }
        rc = decode_bus(m, meta, in_ep, ctl_ep, reply_ep, sources, batch, bind_any);
        goto done;
    }
    for (int i0 = 0; i0 < n; i0 += batch) {
        int B = n - i0 < batch ? n - i0 : batch;
        for (int b = 0; b < B; b++) idx[b] = (uint64_t)(i0 + b);
        if ((e = store_read_batch(st, mu, sig, NULL, idx, NULL, (size_t)B))) {
            fprintf(stderr, "decode: reading records %d..%d: %s (%s)\n", i0, i0 + B - 1, vel_strerror(e),
                    vel_error_detail());
            rc = vel_exit_code(e);
            goto done;
        }
        if (sample) {
            philox_normal(eps, (int64_t)B * per, seed, 9, (uint64_t)i0 * per);
            for (int64_t k = 0; k < (int64_t)B * per; k++) mu[k] += sig[k] * eps[k];
        }
        memcpy(imgs + (size_t)i0 * npix, vae_decode(m, mu, B), sizeof(float) * (size_t)B * npix);
    }
    to_u8_nhwc(u8, imgs, n, C, 1024);
    snprintf(path, sizeof path, "%s/decoded.png", out);
    if ((e = image_grid_write_png(path, imgs, n, C, 32, 32, ncols))) {
        fprintf(stderr, "decode: cannot write %s (%s)\n", path, vel_strerror(e));
        rc = 1;
        goto done;
    }
    snprintf(path, sizeof path, "%s/decoded.npz", out);
    int64_t ishape[4] = {n, 32, 32, C};
    if ((e = image_npz_write_u8(path, u8, 4, ishape))) {
        fprintf(stderr, "decode: cannot write %s (%s)\n", path, vel_strerror(e));
        rc = 1;
        goto done;
    }
    fprintf(stderr, "[decode vae] %d images -> %s/decoded.png, decoded.npz\n", n, out);
done:
    store_close(&st);
    vae_destroy(&m);
    free(mu); free(sig); free(eps); free(imgs); free(u8); free(idx);
    return rc;
}
