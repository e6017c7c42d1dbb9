// vae_folder.c: `encode --model vae-folder`: an image folder (ImageNet
// layout, data/image_folder.h: class folders of PNG/JPEG, classes by sorted
// folder name) -> the latent store, by N encode workers over the bus and ONE
// store writer (LMDB has one writer at a time; many GPUs can still fill one
// cache). Three roles:
//   source  lists the folder, asks the store which indices are missing (so
//           a stopped run resumes), issues jobs of --job-size indices ("idx"
//           ints) through the shared job source (stages/common/job_source.h)
//           and re-issues any the writer has not acked.
//   worker  loads the tokenizer; per job: each image decoded, centre-cropped
//           to the tokenizer's resolution as ADM does (gray for a 1-channel
//           tokenizer), the job encoded as ONE batch, and its mirror image
//           too; replies "moments": mu, sigma, mu_flip, sigma_flip f32
//           (n, C, S, S), labels i32 (n), index i32 (n), "bad" = images that
//           could not be read (named on stderr, left out, retried by a rerun).
//   writer  the sink (bus_sink: duplicates dropped, every copy acked) puts
//           each item's records into the store and rejects (and counts)
//           malformed items; with --stats, or once the store holds the whole
//           folder, computes the latent statistics.
// Jobs are fixed by the source, whatever the number of workers, so the store
// is byte-identical for any N (a GEMM's last bits depend on its batch).
// Not here: Fashion-MNIST and the photo bank (stages/encode/image_vae.c).
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "bus/worker.h"
#include "core/base.h"
#include "data/augment.h"
#include "data/image_folder.h"
#include "data/image_io.h"
#include "models/vae.h"
#include "models/vae_ckpt.h"
#include "nn/checkpoint.h"
#include "nn/safetensors.h"
#include "stages/common/flags.h"
#include "stages/common/job_source.h"
#include "stages/encode/encode.h"
#include "stages/common/moments_item.h"
#include "stages/common/sink_wait.h"
#include "store/store.h"

static const char STAGE[] = "encode";
enum { MAX_JOB = MOMENTS_MAX_N };

static void help(void) {
    printf("usage: encode --model vae-folder --role source --data DIR --store DIR --jobs-bind EP --acks-bind EP\n"
           "                 --ctl-bind EP [--job-size K (32)] [--deadline-ms MS] [--stall-s S]\n"
           "       encode --model vae-folder --role worker --data DIR --ckpt PREFIX --jobs EP --ctl EP --out EP\n"
           "                 [--batch B (32): images per encoder pass; give every worker the same]\n"
           "       encode --model vae-folder --role writer --data DIR --ckpt PREFIX --store DIR --in EP --ctl EP\n"
           "                 --acks EP [--stats] [--stats-n N] [--seed N] [--timeout-s S]\n"
           "Encodes an image folder (class subfolders of PNG/JPEG; ADM centre crop to the tokenizer's\n"
           "resolution; each image and its mirror image) into the latent store with N workers and\n"
           "one writer. The source issues only indices missing from the store: rerun to resume.\n"
           "  --bind-any   allow binding tcp:// on any address, not only 127.0.0.1\n" DEVICE_HELP);
}

typedef struct {
    const char *role, *data, *ckpt, *store, *jobs_bind, *acks_bind, *ctl_bind, *jobs, *ctl, *out, *in, *acks;
    int job_size, batch, deadline_ms, stall_s, timeout_s, stats, bind_any;
    int64_t stats_n;
    uint64_t seed;
} opts;

// ---- source ----------------------------------------------------------------
typedef struct { const uint64_t *todo; } src_ctx;

static int add_indices(void *ctx, bus_msg *job, uint64_t id, int64_t first, int count) {
    (void)id;
    const src_ctx *c = ctx;
    int64_t idx[MAX_JOB];
    for (int i = 0; i < count; i++) idx[i] = (int64_t)c->todo[first + i];
    return bus_msg_set_ints(job, "idx", idx, (size_t)count);
}

static int run_source(const opts *o, const image_folder *fo) {
    uint64_t *todo = NULL;
    size_t ntodo = (size_t)fo->n;
    store *st = NULL;
    if (store_open(&st, o->store, NULL, NULL, NULL) == 0) {   // resume: only what is missing
        int e = store_missing(st, 0, (uint64_t)fo->n, &todo, &ntodo);
        store_close(&st);
        if (e) { fprintf(stderr, "encode: %s: %s\n", o->store, vel_errmsg(e)); return vel_exit_code(e); }
    } else {
        if (!(todo = malloc(sizeof(uint64_t) * (size_t)fo->n))) return 1;
        for (int64_t i = 0; i < fo->n; i++) todo[i] = (uint64_t)i;
    }
    fprintf(stderr, "[encode source] %zu of %lld images to encode\n", ntodo, (long long)fo->n);
    src_ctx c = {todo};
    sample_source_opts so = {.n = (int64_t)ntodo, .job_size = o->job_size, .deadline_ms = o->deadline_ms,
                             .stall_s = o->stall_s, .bind_any = o->bind_any, .jobs_ep = o->jobs_bind,
                             .acks_ep = o->acks_bind, .ctl_ep = o->ctl_bind, .name = STAGE};
    int rc = sample_run_source(&so, add_indices, &c);
    free(todo);
    return rc;
}

// ---- worker ----------------------------------------------------------------
typedef struct {
    const image_folder *fo;
    vae *m;
    int C, R, per, zs;   // image channels, resolution, latent numel and side
    int batch;           // images per encoder pass (the job in chunks of it)
    uint8_t *u8;         // one image (R, R, C)
    float *x, *xf, *mom; // (MAX_JOB, C, R, R) x2; moments 4 x (MAX_JOB, per)
    int32_t *lab;
    int32_t *keep;       // folder indices (< 2^28, STORE_MISSING_MAX_RANGE)
} wctx;

static int encode_item(void *ctx, const bus_msg *item, bus_msg **reply) {
    wctx *c = ctx;
    int64_t idx[MAX_JOB];
    size_t n = 0;
    *reply = NULL;
    if (!bus_msg_is(item, "job") || bus_msg_get_ints(item, "idx", idx, MAX_JOB, &n) || n < 1) {
        fprintf(stderr, "encode: job %llu without a list of indices; dropped\n", (unsigned long long)bus_msg_id(item));
        return 0;
    }
    int B = 0, bad = 0, npix = c->C * c->R * c->R;
    for (size_t i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= c->fo->n) {
            fprintf(stderr, "encode: job %llu: index %lld outside the folder's %lld images; dropped\n",
                    (unsigned long long)bus_msg_id(item), (long long)idx[i], (long long)c->fo->n);
            return 0;
        }
        int e = image_folder_load_u8(c->fo, idx[i], c->R, c->C, c->u8, &c->lab[B]);
        if (e) {
            fprintf(stderr, "encode: left out: %s (%s)\n", vel_error_detail(), vel_strerror(e));
            bad++;
            continue;
        }
        float *x = c->x + (size_t)B * npix;   // HWC bytes -> CHW in [-1, 1]
        for (int ch = 0; ch < c->C; ch++)
            for (int p = 0; p < c->R * c->R; p++) x[ch * c->R * c->R + p] = image_u8_to_f32(c->u8[p * c->C + ch]);
        c->keep[B++] = (int32_t)idx[i];
    }
    int rc = bus_msg_new_reply(reply, "moments", item);
    if (!rc) rc = bus_msg_set_int(*reply, "bad", bad);
    if (!rc && B > 0) {
        image_hflip(c->xf, c->x, B, c->C, c->R, c->R);
        const float *ins[2] = {c->x, c->xf};
        const char *names[4] = {"mu", "sigma", "mu_flip", "sigma_flip"};
        for (int v = 0; v < 2 && !rc; v++) {
            float *mu = c->mom + (size_t)(2 * v) * MAX_JOB * c->per, *sg = mu + (size_t)MAX_JOB * c->per;
            for (int b0 = 0; b0 < B; b0 += c->batch) {   // fixed chunks: the same bits on every worker
                int nb = B - b0 < c->batch ? B - b0 : c->batch;
                vae_encode(c->m, ins[v] + (size_t)b0 * npix, nb);
                memcpy(mu + (size_t)b0 * c->per, c->m->mu, sizeof(float) * (size_t)nb * c->per);
                vae_sigma(sg + (size_t)b0 * c->per, c->m->logvar, (int64_t)nb * c->per);
            }
            for (int k = 0; k < 2 && !rc; k++) {
                tensor t = tensor_view(DT_F32, k ? sg : mu, 4, (int64_t[]){B, c->m->cfg.z_channels, c->zs, c->zs});
                rc = bus_msg_add_tensor(*reply, names[2 * v + k], &t);
            }
        }
        tensor tl = tensor_view(DT_I32, c->lab, 1, (int64_t[]){B}), ti = tensor_view(DT_I32, c->keep, 1, (int64_t[]){B});
        if (!rc) rc = bus_msg_add_tensor(*reply, "labels", &tl);
        if (!rc) rc = bus_msg_add_tensor(*reply, "index", &ti);
    }
    if (rc) {
        bus_msg_destroy(reply);
        fprintf(stderr, "encode: cannot build the reply: %s\n", vel_strerror(rc));
        return rc;
    }
    return 0;
}

static int run_worker(const opts *o, const image_folder *fo, const vae_config *vc, const char *wpath) {
    wctx c = {.fo = fo, .C = vc->in_ch, .R = vc->resolution, .zs = vae_latent_side(vc), .batch = o->batch};
    c.per = vc->z_channels * c.zs * c.zs;
    size_t npix = (size_t)c.C * c.R * c.R;
    c.u8 = malloc(npix);
    c.x = malloc(sizeof(float) * npix * MAX_JOB);
    c.xf = malloc(sizeof(float) * npix * MAX_JOB);
    c.mom = malloc(sizeof(float) * 4 * (size_t)MAX_JOB * c.per);
    c.lab = malloc(sizeof(int32_t) * MAX_JOB);
    c.keep = malloc(sizeof(int32_t) * MAX_JOB);
    int rc = 1, e;
    if (!c.u8 || !c.x || !c.xf || !c.mom || !c.lab || !c.keep || vae_create(&c.m, vc, c.batch, 0)) {
        fprintf(stderr, "encode: out of memory\n");
        goto done;
    }
    if ((e = st_load_params(wpath, &c.m->pt))) {
        fprintf(stderr, "encode: %s: %s (%s)\n", wpath, vel_strerror(e), vel_error_detail());
        rc = 2;
        goto done;
    }
    bus_worker_opts wo = {.name = "encode",
                          .in = {.data_ep = o->jobs, .ctl_ep = o->ctl, .nproducers = 1, .credit = BUS_CREDIT_DEFAULT,
                                 .idle_ms = BUS_IDLE_DEFAULT_MS},
                          .out_ep = o->out};
    bus_worker_stats ws;
    double t0 = vel_now();
    rc = vel_exit_code(bus_worker_run(&wo, encode_item, &c, &ws));   // 2: bad endpoint; 1: run failed
    if (!rc) fprintf(stderr, "[encode worker] answered %llu jobs (%.1f s)\n", (unsigned long long)ws.answered, vel_now() - t0);
done:
    vae_destroy(&c.m);
    free(c.u8); free(c.x); free(c.xf); free(c.mom); free(c.lab); free(c.keep);
    return rc;
}

// ---- writer ----------------------------------------------------------------
static int run_writer(const opts *o, const image_folder *fo, const vae_config *vc, const char *wpath) {
    char hash[17], dname[STORE_STR_MAX], why[256];
    if (ckpt_file_hash(wpath, hash)) { fprintf(stderr, "encode: cannot read %s\n", wpath); return 2; }
    const char *base = strrchr(o->data, '/');
    base = base && base[1] ? base + 1 : o->data;
    snprintf(dname, sizeof dname, "folder:%.*s", (int)(sizeof dname - 8), base);
    int zs = vae_latent_side(vc), e = VEL_EINVAL;
    store_meta meta;
    store *st = NULL;
    store_opts sopts = {.existing = STORE_EXISTING_SKIP};
    if ((e = store_meta_init(&meta, hash, vc->z_channels, zs, zs, true, dname, (uint64_t)fo->n, "vae-v1")) ||
        (e = store_create(&st, o->store, &meta, &sopts))) {
        fprintf(stderr, "encode: cannot create store %s: %s (%s)\n", o->store, vel_strerror(e), vel_error_detail());
        return 2;
    }
    bus_sink *sink = NULL;
    bus_sink_opts so = {.in = {.data_ep = o->in, .bind = 1, .ctl_ep = o->ctl, .nproducers = 1,
                               .sock = {.allow_remote = o->bind_any}},
                        .acks_ep = o->acks};
    if ((e = bus_sink_open(&sink, &so))) {
        fprintf(stderr, "encode: cannot set up sockets: %s\n", vel_errmsg(e));
        store_close(&st);
        return vel_exit_code(e);   // 2: a bad endpoint; 1: the sockets failed
    }
    moments_counts cnt = {0};
    const moments_folder mf = {.nimages = fo->n, .labels = fo->labels};
    int rc = 0;
    sink_wait w;
    sink_wait_init(&w, "encode", o->timeout_s);
    for (;;) {
        bus_msg *m = NULL;
        int k = sink_wait_next(&w, sink, &m);
        if (k == SINK_END) break;
        if (k == SINK_GIVE_UP || k == SINK_ABORTED) { rc = 1; break; }
        if (k == SINK_REJECTED) { cnt.rejected++; continue; }
        int a = moments_item_put(st, &mf, m, &cnt, why, sizeof why);
        bus_msg_destroy(&m);
        if (a == 1) { fprintf(stderr, "encode: rejected: %s\n", why); continue; }
        if (a) { fprintf(stderr, "encode: writing %s: %s (%s)\n", o->store, vel_strerror(a), vel_error_detail()); rc = 1; break; }
    }
    bus_sink_close(&sink);
    uint64_t have = 0;
    store_count(st, &have);
    fprintf(stderr, "[encode writer] %lld items, %lld records written, %lld images unreadable, %lld rejected; "
            "store holds %llu of %lld\n", (long long)cnt.items, (long long)cnt.records, (long long)cnt.bad, (long long)cnt.rejected,
            (unsigned long long)have, (long long)fo->n);
    if (!rc && have > 0 && (o->stats || have == (uint64_t)fo->n)) {
        float mean[STORE_MAX_CHANNELS], sd[STORE_MAX_CHANNELS];
        size_t sub = (size_t)(o->stats_n < (int64_t)have ? o->stats_n : (int64_t)have);
        if ((e = store_compute_stats(st, mean, sd, sub, o->seed)) || (e = store_set_stats(st, mean, sd))) {
            fprintf(stderr, "encode: latent statistics: %s (%s)\n", vel_strerror(e), vel_error_detail());
            rc = 1;
        }
    }
    store_close(&st);
    return rc;
}

int encode_vae_folder_main(int argc, char **argv) {
    opts o = {.job_size = 32, .batch = 32, .deadline_ms = 30000, .stall_s = 600, .timeout_s = 600, .stats_n = 10000};
    const flag_spec F[] = {
        FLAG_STR_("role", &o.role), FLAG_STR_("data", &o.data), FLAG_STR_("ckpt", &o.ckpt), FLAG_STR_("store", &o.store),
        FLAG_STR_("jobs-bind", &o.jobs_bind), FLAG_STR_("acks-bind", &o.acks_bind), FLAG_STR_("ctl-bind", &o.ctl_bind),
        FLAG_STR_("jobs", &o.jobs), FLAG_STR_("ctl", &o.ctl), FLAG_STR_("out", &o.out), FLAG_STR_("in", &o.in),
        FLAG_STR_("acks", &o.acks), FLAG_INT_("job-size", &o.job_size, 1, MAX_JOB),
        FLAG_INT_("batch", &o.batch, 1, MAX_JOB),
        FLAG_INT_("deadline-ms", &o.deadline_ms, 1, INT_MAX), FLAG_INT_("stall-s", &o.stall_s, 0, INT_MAX),
        FLAG_INT_("timeout-s", &o.timeout_s, 1, INT_MAX), FLAG_BOOL_("stats", &o.stats),
        FLAG_I64_("stats-n", &o.stats_n, 1, 10000000), FLAG_U64_("seed", &o.seed), FLAG_BOOL_("bind-any", &o.bind_any),
        FLAG_DEVICE_};
    int help_asked;
    if (flag_parse(STAGE, argc, argv, F, FLAG_COUNT(F), &help_asked, NULL)) return 2;
    if (help_asked) { help(); return 0; }
    int role = !o.role ? -1 : !strcmp(o.role, "source") ? 0 : !strcmp(o.role, "worker") ? 1 : !strcmp(o.role, "writer") ? 2 : -1;
    if (role < 0) { fprintf(stderr, "encode: --role must be source, worker or writer\n"); return 2; }
    const char *need[3] = {"--data, --store, --jobs-bind, --acks-bind, --ctl-bind", "--data, --ckpt, --jobs, --ctl, --out",
                           "--data, --ckpt, --store, --in, --ctl, --acks"};
    int ok = role == 0 ? o.data && o.store && o.jobs_bind && o.acks_bind && o.ctl_bind
           : role == 1 ? o.data && o.ckpt && o.jobs && o.ctl && o.out
                       : o.data && o.ckpt && o.store && o.in && o.ctl && o.acks;
    if (!ok) { fprintf(stderr, "encode: --role %s needs %s\n", o.role, need[role]); return 2; }
    image_folder *fo = NULL;
    int e = image_folder_open(o.data, &fo);
    if (e) { fprintf(stderr, "encode: --data %s: %s (%s)\n", o.data, vel_strerror(e), vel_error_detail()); return 2; }
    if (fo->n > (int64_t)STORE_MISSING_MAX_RANGE) {
        fprintf(stderr, "encode: %lld images: more than one store's range\n", (long long)fo->n);
        image_folder_destroy(&fo);
        return 2;
    }
    int rc;
    if (role == 0) {
        rc = run_source(&o, fo);
    } else {
        char wpath[1200];
        vae_config vc;
        snprintf(wpath, sizeof wpath, "%s.safetensors", o.ckpt);
        if ((e = vae_config_from_ckpt(wpath, NULL, &vc))) {
            fprintf(stderr, "encode: %s\n", vel_errmsg(e));
            image_folder_destroy(&fo);
            return e == VEL_ENOMEM ? 1 : 2;   // a missing or wrong checkpoint is an input error
        }
        rc = role == 1 ? run_worker(&o, fo, &vc, wpath) : run_writer(&o, fo, &vc, wpath);
    }
    image_folder_destroy(&fo);
    return rc;
}
