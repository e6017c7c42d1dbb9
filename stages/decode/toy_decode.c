// toy_decode.c: `decode --model toy`: pulls "latents" (normalised z
// (count, 2)) from the samplers, undoes the store's latent normalisation
// (store_denormalise, the one place), decodes with the toy tokenizer (or
// passes z through with --identity, the raw-data diagnostic) and pushes
// "points" with tensors "x" (count, 2) (decoded) and "z" (count, 2) (the
// latents, for the latent-space figure) to the eval sink, keeping each
// item's (src, id, seed). Stops when every job source has published eos.
// `--identity` without `--store`: latents are already data-space points
// (the exact-velocity diagnostic of `sample --exact`).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "bus/worker.h"
#include "models/toy_tok.h"
#include "nn/checkpoint.h"
#include "core/base.h"
#include "stages/common/flags.h"
#include "stages/decode/decode.h"
#include "store/store.h"

static void help(void) {
    printf("usage: decode --model toy (--ckpt TOKENIZER.safetensors | --identity) --store DIR --in EP --ctl EP --out EP [options]\n"
           "  --store DIR      latent store whose statistics undo the normalisation\n"
           "  --in EP          bind: latents from the samplers (PULL)\n"
           "  --ctl EP         connect: the job sources' eos broadcasts (SUB)\n"
           "  --out EP         connect: the eval sink (PUSH)\n"
           "  --sources P      job sources to hear eos from (default 1)\n"
           "  --identity       no tokenizer: points = latents (raw-data diagnostic);\n"
           "                   without --store the latents are not denormalised\n"
           "  --bind-any       allow binding tcp:// on any address, not only 127.0.0.1\n"
           "                   (default: loopback only)\n"
           DEVICE_HELP);
}

static const char STAGE[] = "decode";
enum { DECODE_MAX_SOURCES = 1024 };

typedef struct {
    toy_tok *t;                // NULL with --identity
    const store_meta *meta;    // NULL: latents are data-space points
    float *z, *x;              // (cap, 2) each, grown on demand
    int64_t cap;
} toy_decode_ctx;

// One "latents" item -> its "points" reply (bus/worker.h callback).
static int decode_item(void *ctx, const bus_msg *m, bus_msg **reply) {
    toy_decode_ctx *c = ctx;
    tensor tz;
    if (!bus_msg_is(m, "latents") || bus_msg_find(m, "z", &tz) || tz.dtype != DT_F32 || tz.ndim != 2 ||
        tz.shape[1] != 2) {
        fprintf(stderr, "decode: item %llu: expected 'latents' with z f32 (n, 2); dropped\n",
                (unsigned long long)bus_msg_id(m));
        return 0;
    }
    int64_t n = tz.shape[0];
    if (n > c->cap) {
        free(c->z); free(c->x);
        c->z = malloc(sizeof(float) * 2 * n);
        c->x = malloc(sizeof(float) * 2 * n);
        c->cap = n;
        if (!c->z || !c->x) { fprintf(stderr, "decode: out of memory\n"); c->cap = 0; return VEL_ENOMEM; }
    }
    int e;
    if (!c->meta) memcpy(c->z, tz.data, sizeof(float) * 2 * n);
    else if ((e = store_denormalise(c->z, tz.data, c->meta, n))) {
        fprintf(stderr, "decode: %s\n", vel_strerror(e));
        return e;
    }
    if (c->t) toy_tok_decode(c->t, c->x, c->z, (int)n);
    else memcpy(c->x, c->z, sizeof(float) * 2 * n);
    tensor tx = tensor_view(DT_F32, c->x, 2, (int64_t[]){n, 2});
    tensor tl = tensor_view(DT_F32, c->z, 2, (int64_t[]){n, 2});
    if ((e = bus_msg_new_reply(reply, "points", m)) || (e = bus_msg_add_tensor(*reply, "x", &tx)) ||
        (e = bus_msg_add_tensor(*reply, "z", &tl))) {
        fprintf(stderr, "decode: cannot build points: %s\n", vel_strerror(e));
        bus_msg_destroy(reply);
    }
    return 0;
}

int decode_toy_main(int argc, char **argv) {
    const char *ckpt = NULL, *spath = NULL, *in_ep = NULL, *ctl_ep = NULL, *out_ep = NULL;
    int sources = 1, identity = 0, bind_any = 0;
    const flag_spec F[] = {
        FLAG_STR_("ckpt", &ckpt), FLAG_STR_("store", &spath), FLAG_STR_("in", &in_ep), FLAG_STR_("ctl", &ctl_ep),
        FLAG_STR_("out", &out_ep), FLAG_INT_("sources", &sources, 1, DECODE_MAX_SOURCES),
        FLAG_BOOL_("identity", &identity), FLAG_BOOL_("bind-any", &bind_any), FLAG_DEVICE_};
    int help_asked;
    if (flag_parse(STAGE, argc, argv, F, FLAG_COUNT(F), &help_asked, NULL)) return 2;
    if (help_asked) { help(); return 0; }
    if ((!ckpt && !identity) || (ckpt && identity) || (!spath && !identity) || !in_ep || !ctl_ep || !out_ep) {
        fprintf(stderr, "decode: need exactly one of --ckpt/--identity, and --store (optional with --identity), --in, --ctl, --out\n");
        return 2;
    }
    toy_tok *t = NULL;
    int le = ckpt ? toy_tok_load(&t, ckpt, 1024) : 0;
    if (le) {
        fprintf(stderr, "decode: cannot load tokenizer: %s\n", vel_errmsg(le));
        return vel_exit_code(le);
    }
    store *st = NULL;
    int e = spath ? store_open(&st, spath, NULL, (int64_t[]){2, 1, 1}, NULL) : 0;
    if (e) {
        fprintf(stderr, "decode: cannot open store %s: %s (%s)\n", spath, vel_strerror(e), vel_error_detail());
        toy_tok_destroy(&t);
        return vel_exit_code(e);
    }
    const store_meta *meta = st ? store_get_meta(st) : NULL;   // NULL: latents are data-space points
    char hash[17];
    if (ckpt && !ckpt_file_hash(ckpt, hash) && strcmp(hash, meta->tokenizer_hash) != 0)
        fprintf(stderr, "decode: warning: %s (hash %s) is not the tokenizer that filled %s (hash %s)\n", ckpt,
                hash, spath, meta->tokenizer_hash);
    toy_decode_ctx cx = {.t = t, .meta = meta};
    bus_worker_opts wo = {.name = "decode",
                          .in = {.data_ep = in_ep, .bind = 1, .ctl_ep = ctl_ep, .nproducers = sources,
                                 .idle_ms = BUS_IDLE_DEFAULT_MS, .sock = {.allow_remote = bind_any}},
                          .out_ep = out_ep};
    bus_worker_stats ws;
    e = bus_worker_run(&wo, decode_item, &cx, &ws);
    if (!e) fprintf(stderr, "[decode toy] decoded %llu items\n", (unsigned long long)ws.answered);
    free(cx.z); free(cx.x);
    store_close(&st);
    toy_tok_destroy(&t);
    return vel_exit_code(e);   // 2: bad endpoint; 1: the run failed (abort, idle, ...)
}
