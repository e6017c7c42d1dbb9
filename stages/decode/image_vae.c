// image_vae.c: `decode --model vae`, latents from the store -> images: the
// first --n records' mu (or mu + sigma*eps with --sample, Philox-seeded)
// decoded by the tokenizer, written as a PNG grid (DIR/decoded.png) and as an
// ADM-compatible DIR/decoded.npz (uint8 N x 32 x 32 x 1, "arr_0").
// Bus mode (--in/--ctl/--out, the sampler -> decode -> eval leg of the
// pipeline): PULL "latents" messages with z f32 (n, C, H, W) in the store's
// normalised units, de-normalise them with the store's __meta__
// (store_denormalise, the one normalisation), decode, and PUSH an "images"
// reply with x f32 (n, 1, 32, 32) in [-1, 1] and u8 (n, 32, 32, 1); finish
// once every one of --sources producers has sent eos on --ctl.
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/image_io.h"
#include "models/vae.h"
#include "nn/base.h"
#include "nn/philox.h"
#include "bus/bus.h"
#include "nn/safetensors.h"
#include "stages/decode/decode.h"
#include "store/store.h"

static void help(void) {
    printf("usage: decode --model vae --ckpt PREFIX --store DIR --out DIR [options]\n"
           "Decodes latents from the store into images.\n"
           "  --ckpt PREFIX   tokenizer weights PREFIX.safetensors\n"
           "  --config NAME   f4c4 (default), f4c8, f8c4\n"
           "  --n N           records 0..N-1 (default 64)   --batch N (16)\n"
           "  --sample        decode mu + sigma*eps instead of mu   --seed N (0)\n"
           "  --ncols N       grid columns (default 8)\n"
           "Writes DIR/decoded.png, DIR/decoded.npz.\n"
           "Bus mode (instead of --out): --in EP (bind, PULL latents) --ctl EP (connect, SUB eos)\n"
           "  --reply EP (connect, PUSH images) --sources N (producers, default 1); --store gives\n"
           "  the latent normalisation.\n");
}

// Bus mode: see the file header.
static int decode_bus(vae *m, const store_meta *meta, const char *in_ep, const char *ctl_ep,
                      const char *out_ep, int sources, int batch) {
    int zc = m->cfg.z_channels, zs = m->zside, per = zc * zs * zs;
    bus_socket *in = NULL, *ctl = NULL, *out = NULL;
    bus_eos *eos = NULL;
    float *z = NULL, *x = NULL;
    uint8_t *u8 = NULL;
    int64_t cap = 0;
    int rc = 1, done = 0, e;
    if ((e = bus_socket_open(&in, BUS_PULL, NULL)) || (e = bus_bind(in, in_ep)) ||
        (e = bus_socket_open(&ctl, BUS_SUB, NULL)) || (e = bus_connect(ctl, ctl_ep)) ||
        (e = bus_socket_open(&out, BUS_PUSH, NULL)) || (e = bus_connect(out, out_ep)) ||
        (e = bus_eos_new(&eos, sources))) {
        fprintf(stderr, "decode: cannot set up sockets: %s\n", bus_strerror(e));
        goto done;
    }
    while (!bus_eos_done(eos)) {
        bus_socket *socks[2] = {in, ctl};   // data first: drain items before eos
        int which = -1;
        bus_msg *msg = NULL;
        e = bus_recv_any(socks, 2, 1000, &which, &msg);
        if (e == BUS_ETIMEOUT) continue;
        if (e) { fprintf(stderr, "decode: rejected a message: %s\n", bus_strerror(e)); continue; }
        if (which == 1) {
            if (bus_eos_note(eos, msg) < 0) fprintf(stderr, "decode: eos from an unknown source %u\n", bus_msg_src(msg));
            bus_msg_destroy(&msg);
            continue;
        }
        tensor tz;
        if (!bus_msg_is(msg, "latents") || bus_msg_find(msg, "z", &tz) || tz.dtype != DT_F32 || tz.ndim != 4 ||
            tz.shape[1] != zc || tz.shape[2] != zs || tz.shape[3] != zs || tz.shape[0] < 1) {
            fprintf(stderr, "decode: item %llu: expected 'latents' with z f32 (n, %d, %d, %d); dropped\n",
                    (unsigned long long)bus_msg_id(msg), zc, zs, zs);
            bus_msg_destroy(&msg);
            continue;
        }
        int64_t n = tz.shape[0];
        if (n > cap) {
            free(z); free(x); free(u8);
            z = malloc(sizeof(float) * (size_t)(n * per));
            x = malloc(sizeof(float) * (size_t)n * 1024);
            u8 = malloc((size_t)n * 1024);
            cap = n;
            if (!z || !x || !u8) { fprintf(stderr, "decode: out of memory\n"); bus_msg_destroy(&msg); goto done; }
        }
        if ((e = store_denormalise(z, tz.data, meta, n))) {
            fprintf(stderr, "decode: %s\n", store_strerror(e));
            bus_msg_destroy(&msg);
            goto done;
        }
        for (int64_t i0 = 0; i0 < n; i0 += batch) {
            int B = (int)(n - i0 < batch ? n - i0 : batch);
            memcpy(x + i0 * 1024, vae_decode(m, z + i0 * per, B), sizeof(float) * (size_t)B * 1024);
        }
        for (int64_t k = 0; k < n * 1024; k++) u8[k] = image_f32_to_u8(x[k]);
        bus_msg *rep = NULL;
        tensor tx = tensor_view(DT_F32, x, 4, (int64_t[]){n, 1, 32, 32});
        tensor tu = tensor_view(DT_U8, u8, 4, (int64_t[]){n, 32, 32, 1});
        if ((e = bus_msg_new_reply(&rep, "images", msg)) || (e = bus_msg_add_tensor(rep, "x", &tx)) ||
            (e = bus_msg_add_tensor(rep, "u8", &tu)) || (e = bus_send(out, &rep, -1))) {
            fprintf(stderr, "decode: cannot send images: %s\n", bus_strerror(e));
            bus_msg_destroy(&rep);
        } else {
            done++;
        }
        bus_msg_destroy(&msg);
    }
    fprintf(stderr, "[decode vae] decoded %d items\n", done);
    rc = 0;
done:
    bus_socket_close(&in); bus_socket_close(&ctl); bus_socket_close(&out);
    bus_eos_destroy(&eos);
    free(z); free(x); free(u8);
    return rc;
}

int decode_vae_main(int argc, char **argv) {
    const char *ckpt = NULL, *spath = NULL, *out = NULL, *config = "f4c4";
    const char *in_ep = NULL, *ctl_ep = NULL, *reply_ep = NULL;
    int n = 64, batch = 16, sample = 0, ncols = 8, sources = 1;
    uint64_t seed = 0;
    static const struct option L[] = {
        {"model", 1, 0, 'm'}, {"ckpt", 1, 0, 'k'}, {"store", 1, 0, 'S'}, {"out", 1, 0, 'o'},
        {"config", 1, 0, 'c'}, {"n", 1, 0, 'n'}, {"batch", 1, 0, 'b'}, {"sample", 0, 0, 'a'},
        {"seed", 1, 0, 's'}, {"ncols", 1, 0, 'C'}, {"in", 1, 0, 'i'}, {"ctl", 1, 0, 'T'},
        {"reply", 1, 0, 'r'}, {"sources", 1, 0, 'P'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", L, NULL)) != -1) {
        char *e = NULL;
        switch (c) {
        case 'm': break;
        case 'h': help(); return 0;
        case 'k': ckpt = optarg; break;
        case 'S': spath = optarg; break;
        case 'o': out = optarg; break;
        case 'c': config = optarg; break;
        case 'a': sample = 1; break;
        case 'i': in_ep = optarg; break;
        case 'T': ctl_ep = optarg; break;
        case 'r': reply_ep = optarg; break;
        case 'P': sources = (int)strtol(optarg, &e, 10); break;
        case 'n': n = (int)strtol(optarg, &e, 10); break;
        case 'b': batch = (int)strtol(optarg, &e, 10); break;
        case 'C': ncols = (int)strtol(optarg, &e, 10); break;
        case 's': seed = strtoull(optarg, &e, 10); break;
        default: fprintf(stderr, "decode: unknown or incomplete option (see --help)\n"); return 2;
        }
        if (e && *e) { fprintf(stderr, "decode: bad number '%s'\n", optarg); return 2; }
    }
    int bus_mode = in_ep || ctl_ep || reply_ep;
    if (bus_mode && (!in_ep || !ctl_ep || !reply_ep || sources < 1)) {
        fprintf(stderr, "decode: bus mode needs --in, --ctl, --reply (and --sources >= 1)\n");
        return 2;
    }
    if (!ckpt || !spath || (!out && !bus_mode)) {
        fprintf(stderr, "decode: --ckpt, --store and --out (or the bus flags) are required\n");
        return 2;
    }
    if (n < 1 || batch < 1 || ncols < 1) { fprintf(stderr, "decode: --n, --batch, --ncols must be >= 1\n"); return 2; }
    vae_config vc;
    if (vae_config_preset(config, 1, &vc)) { fprintf(stderr, "decode: unknown --config '%s'\n", config); return 2; }
    int zc = vc.z_channels, zs = vae_latent_side(&vc), per = zc * zs * zs;
    int64_t shape[3] = {zc, zs, zs};
    vae *m = NULL;
    store *st = NULL;
    int rc = 0, e;
    char path[1200];
    float *mu = malloc(sizeof(float) * (size_t)batch * per), *sig = malloc(sizeof(float) * (size_t)batch * per);
    float *eps = malloc(sizeof(float) * (size_t)batch * per), *imgs = malloc(sizeof(float) * (size_t)n * 1024);
    uint8_t *u8 = malloc((size_t)n * 1024);
    uint64_t *idx = malloc(sizeof(uint64_t) * (size_t)batch);
    if (!mu || !sig || !eps || !imgs || !u8 || !idx || vae_create(&m, &vc, batch, 0)) {
        fprintf(stderr, "decode: out of memory\n");
        rc = 1;
        goto done;
    }
    snprintf(path, sizeof path, "%s.safetensors", ckpt);
    st_err err;
    if ((e = st_load_params(path, &m->pt, &err))) {
        fprintf(stderr, "decode: %s: %s (%s)\n", path, ckpt_strerror(e), err.msg);
        rc = 1;
        goto done;
    }
    if ((e = store_open(&st, spath, NULL, shape, NULL))) {
        fprintf(stderr, "decode: store %s: %s (%s)\n", spath, store_strerror(e), store_last_error());
        rc = 1;
        goto done;
    }
    if (bus_mode) {
        const store_meta *meta = store_get_meta(st);
        if (!meta->has_stats) {
            fprintf(stderr, "decode: store %s has no latent statistics (run encode with --stats)\n", spath);
            rc = 1;
            goto done;
        }
        rc = decode_bus(m, meta, in_ep, ctl_ep, reply_ep, sources, batch);
        goto done;
    }
    for (int i0 = 0; i0 < n; i0 += batch) {
        int B = n - i0 < batch ? n - i0 : batch;
        for (int b = 0; b < B; b++) idx[b] = (uint64_t)(i0 + b);
        if ((e = store_read_batch(st, mu, sig, NULL, idx, NULL, (size_t)B))) {
            fprintf(stderr, "decode: reading records %d..%d: %s (%s)\n", i0, i0 + B - 1, store_strerror(e),
                    store_last_error());
            rc = 1;
            goto done;
        }
        if (sample) {
            philox_normal(eps, (int64_t)B * per, seed, 9, (uint64_t)i0 * per);
            for (int64_t k = 0; k < (int64_t)B * per; k++) mu[k] += sig[k] * eps[k];
        }
        memcpy(imgs + (size_t)i0 * 1024, vae_decode(m, mu, B), sizeof(float) * (size_t)B * 1024);
    }
    for (int64_t k = 0; k < (int64_t)n * 1024; k++) u8[k] = image_f32_to_u8(imgs[k]);   // C = 1: NCHW == NHWC
    snprintf(path, sizeof path, "%s/decoded.png", out);
    if ((e = image_grid_write_png(path, imgs, n, 1, 32, 32, ncols))) {
        fprintf(stderr, "decode: cannot write %s (%s)\n", path, data_strerror(e));
        rc = 1;
        goto done;
    }
    snprintf(path, sizeof path, "%s/decoded.npz", out);
    int64_t ishape[4] = {n, 32, 32, 1};
    if ((e = image_npz_write_u8(path, u8, 4, ishape))) {
        fprintf(stderr, "decode: cannot write %s (%s)\n", path, data_strerror(e));
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
