// toy_eval.c: `eval --model toy`, the final sink of the toy pipeline. Pulls
// "points" items (tensor "x" f32 (n, 2), optional "z" (n, 2) latents), drops
// duplicates by (src, id), acks every item to its job source, and when every
// source has ended writes into --out:
//   report.json / report.md: mean and median log-density of the samples
//     under the true mixture, off-manifold rate (below the 1st percentile of
//     true samples' log-density), precision / recall (k = 3) against true
//     samples, and any --extra JSON (e.g. encode's tokenizer diagnostics)
//     copied verbatim under "extra";
//   samples.npy (n, 2) in (src, id) order, latents.npy when z came along;
//   density.png (true log-density with the samples), latent.png (flow
//     samples in latent space; with --store also the training latents mu
//     with sigma ellipses).
// It knows nothing of which tokenizer made the points.
// `eval --model toy --side-by-side OUT.png A.png B.png ...` only composes
// figures. Points of the wrong dimension are a configuration error: eval
// says which item and shape, and exits 1.
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bus/bus.h"
#include "data/toy_gmm.h"
#include "core/base.h"
#include "core/mt19937.h"
#include "stages/common/flags.h"
#include "stages/eval/eval.h"
#include "metrics/toy.h"
#include "stages/common/plot_toy.h"
#include "store/store.h"

static const char STAGE[] = "eval";
// Bounds: the reference statistics hold --n-true points and their k-NN radii.
enum { EVAL_MAX_SOURCES = 1024, EVAL_MAX_N_TRUE = 10000000 };

static void help(void) {
    printf("usage: eval --model toy --in EP --ctl EP --acks EP[,EP...] --out DIR [options]\n"
           "       eval --model toy --side-by-side OUT.png A.png B.png ...\n"
           "  --in EP           bind: points from the decoders (PULL)\n"
           "  --ctl EP          connect: job sources' eos broadcasts (SUB), comma-separated\n"
           "  --acks EP         connect: ack endpoint of each job source, in source order\n"
           "  --sources P       number of job sources (default 1)\n"
           "  --n-true N        true samples for the reference statistics (default 10000)\n"
           "  --true-seed S     their seed (default 4242)\n"
           "  --extra FILE      JSON merged into the report under \"extra\" (e.g. encode diagnostics)\n"
           "  --store DIR       latent store: adds training latents with sigma ellipses to latent.png\n"
           "  --title TEXT      label for the report (default: the --out folder)\n"
           "  --timeout-s S     give up when nothing arrives for S seconds (default 600)\n"
           "  --no-figures      skip the PNG figures\n"
           "  --bind-any        allow binding tcp:// on any address, not only 127.0.0.1\n"
           "                    (default: loopback only)\n");
}

typedef struct { uint32_t src; uint64_t id; int64_t n; float *x, *z; } item;

static int cmp_item(const void *a, const void *b) {
    const item *p = a, *q = b;
    if (p->src != q->src) return p->src < q->src ? -1 : 1;
    return (p->id > q->id) - (p->id < q->id);
}

// .npy writer (f4, C order): the format numpy reads natively.
static int write_npy(const char *path, const float *x, int64_t n, int64_t d) {
    char hdr[128];
    int len = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                       (long long)n, (long long)d);
    int total = 10 + len + 1, pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) return VEL_EIO;
    unsigned short hl = (unsigned short)(len + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(hl & 0xff, f);
    fputc(hl >> 8, f);
    fwrite(hdr, 1, len, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    size_t w = fwrite(x, sizeof(float), (size_t)(n * d), f);
    int rc = (w == (size_t)(n * d) && !ferror(f)) ? 0 : VEL_EIO;
    if (fclose(f)) rc = VEL_EIO;
    return rc;
}

// Samples over the true density; those below the off-manifold threshold
// (log p < thr) in orange, with title, axes and a legend that says so.
static int density_png(const char *path, const toy_gmm *g, const float *x, int64_t n, const double *ls,
                       double thr, const char *title) {
    toy_canvas c;
    // the class-A tree lives in about [-0.6, 1.4] x [-0.6, 1.4] (edm2 toy's view)
    int rc = toy_canvas_new(&c, 384, 384, -0.6, 1.4, -0.6, 1.4);
    if (rc) return rc;
    // the density is evaluated on a 3x coarser grid (each value covers 3x3
    // pixels): 16k evaluations of the 1016-component mixture instead of 147k
    enum { F = 3 };
    int gw = c.w / F, gh = c.h / F;
    double *coarse = malloc(sizeof(double) * gw * gh), *vals = malloc(sizeof(double) * c.w * c.h);
    float *grid = malloc(sizeof(float) * 2 * gw * gh);
    if (!vals || !grid || !coarse) { free(vals); free(grid); free(coarse); toy_canvas_free(&c); return VEL_ENOMEM; }
    for (int j = 0; j < gh; j++)
        for (int i = 0; i < gw; i++) {
            double px, py;
            toy_canvas_coord(&c, F * i + F / 2, F * j + F / 2, &px, &py);
            grid[2 * ((size_t)j * gw + i)] = (float)px;
            grid[2 * ((size_t)j * gw + i) + 1] = (float)py;
        }
    toy_gmm_logp_batch(g, grid, (int64_t)gw * gh, coarse);
    for (int j = 0; j < c.h; j++)
        for (int i = 0; i < c.w; i++) {
            int ci = i / F < gw ? i / F : gw - 1, cj = j / F < gh ? j / F : gh - 1;
            vals[(size_t)j * c.w + i] = coarse[(size_t)cj * gw + ci];
        }
    toy_canvas_heat(&c, vals, -4.0, 4.0);
    const uint8_t red[3] = {200, 30, 30}, orange[3] = {255, 150, 0};
    int64_t shown = n < 4000 ? n : 4000, off = 0, off_all = 0;
    toy_canvas_dots(&c, x, shown, red, 1);
    for (int64_t k = 0; k < n; k++)
        if (ls[k] < thr) {
            off_all++;
            if (k < shown) toy_canvas_dots(&c, x + 2 * k, 1, orange, 1), off++;
        }
    char t[64], k1[64], k2[64], k3[64];
    snprintf(t, sizeof t, "%.44s: SAMPLES", title);
    snprintf(k1, sizeof k1, "TRUE LOG P(X): -4 WHITE TO 4 DEEP BLUE");
    snprintf(k2, sizeof k2, "SAMPLES (%lld OF %lld SHOWN)", (long long)shown, (long long)n);
    snprintf(k3, sizeof k3, "OFF-MANIFOLD: LOG P < %.2f: %.1f%%", thr, 100.0 * (double)off_all / (double)n);
    const toy_key keys[4] = {{k1, {120, 150, 207}}, {k2, {200, 30, 30}}, {k3, {255, 150, 0}},
                             {"(THRESHOLD: 1% QUANTILE OF TRUE LOG P)", {255, 255, 255}}};
    const toy_labels lab = {.title = t, .xlabel = "X1", .ylabel = "X2", .keys = keys, .nkeys = 4};
    rc = toy_canvas_write_labelled(&c, path, &lab);
    free(vals);
    free(grid);
    free(coarse);
    toy_canvas_free(&c);
    return rc;
}

static int latent_png(const char *path, const float *z, int64_t n, const char *spath, const char *title) {
    float *mu = NULL, *sg = NULL;
    int64_t m = 0;
    if (spath) {
        store *st = NULL;
        int e = store_open(&st, spath, NULL, (int64_t[]){2, 1, 1}, NULL);
        uint64_t cnt = 0;
        if (e || store_count(st, &cnt)) {
            fprintf(stderr, "eval: cannot read store %s: %s (%s)\n", spath, vel_strerror(e), vel_error_detail());
            store_close(&st);
            return e ? e : VEL_EIO;
        }
        m = cnt < 400 ? (int64_t)cnt : 400;   // a readable subset of ellipses
        mu = malloc(sizeof(float) * 2 * m);
        sg = malloc(sizeof(float) * 2 * m);
        uint64_t *idx = malloc(sizeof(uint64_t) * m);
        for (int64_t i = 0; i < m; i++) idx[i] = (uint64_t)i * cnt / m;
        e = store_read_batch(st, mu, sg, NULL, idx, NULL, m);
        free(idx);
        store_close(&st);
        if (e) { free(mu); free(sg); return e; }
    }
    double win[4];
    if (m) toy_window(mu, m, 0.15, win);
    else toy_window(z, n, 0.1, win);
    // square window so circles stay circles
    double cx = 0.5 * (win[0] + win[1]), cy = 0.5 * (win[2] + win[3]);
    double half = 0.5 * fmax(win[1] - win[0], win[3] - win[2]);
    toy_canvas c;
    int rc = toy_canvas_new(&c, 384, 384, cx - half, cx + half, cy - half, cy + half);
    if (!rc) {
        const uint8_t gray[3] = {150, 150, 150}, blue[3] = {30, 60, 200}, red[3] = {200, 30, 30};
        for (int64_t i = 0; i < m; i++)
            toy_canvas_ellipse(&c, mu[2 * i], mu[2 * i + 1], sg[2 * i], sg[2 * i + 1], gray);
        if (m) toy_canvas_dots(&c, mu, m, blue, 1);
        if (z) toy_canvas_dots(&c, z, n < 3000 ? n : 3000, red, 0);
        char t[64];
        snprintf(t, sizeof t, "%.44s: LATENTS", title);
        toy_key keys[3];
        int nk = 0;
        if (m) keys[nk++] = (toy_key){"STORE MU (400), SIGMA ELLIPSES GREY", {30, 60, 200}};
        if (z) keys[nk++] = (toy_key){"SAMPLED LATENTS (UP TO 3000)", {200, 30, 30}};
        const toy_labels lab = {.title = t, .xlabel = "Z1", .ylabel = "Z2", .keys = keys, .nkeys = nk};
        rc = toy_canvas_write_labelled(&c, path, &lab);
        toy_canvas_free(&c);
    }
    free(mu);
    free(sg);
    return rc;
}

static cJSON *read_json_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (len < 0 || len > (1 << 24)) { fclose(f); return NULL; }
    char *buf = malloc(len + 1);
    size_t got = buf ? fread(buf, 1, len, f) : 0;
    fclose(f);
    if (!buf || got != (size_t)len) { free(buf); return NULL; }
    buf[len] = 0;
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    return j;
}

static int report(const char *dir, const char *title, const float *x, int64_t n, const float *z,
                  int n_true, int true_seed, const char *extra, const char *spath, int figures) {
    toy_gmm *g;
    if (toy_gmm_build(&g, "A")) return 1;
    float *xt = malloc(sizeof(float) * 2 * n_true);
    double *lt = malloc(sizeof(double) * n_true), *ls = malloc(sizeof(double) * n);
    mt19937 r;
    mt_seed(&r, (uint32_t)true_seed);
    toy_gmm_sample(g, &r, xt, n_true);
    toy_gmm_logp_batch(g, xt, n_true, lt);
    toy_gmm_logp_batch(g, x, n, ls);
    double thr = toy_percentile(lt, n_true, 1.0);
    double prec = NAN, rec = NAN;
    if (toy_precision_recall(&prec, &rec, xt, n_true, x, n, 2, 3))
        fprintf(stderr, "eval: too few samples for precision/recall (k = 3)\n");
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "title", title);
    cJSON_AddNumberToObject(j, "n_samples", (double)n);
    cJSON_AddNumberToObject(j, "n_true", n_true);
    cJSON_AddNumberToObject(j, "true_mean_logp", toy_mean(lt, n_true));
    cJSON_AddNumberToObject(j, "true_median_logp", toy_percentile(lt, n_true, 50));
    cJSON_AddNumberToObject(j, "off_threshold_logp", thr);
    cJSON_AddNumberToObject(j, "mean_logp", toy_mean(ls, n));
    cJSON_AddNumberToObject(j, "median_logp", toy_percentile(ls, n, 50));
    cJSON_AddNumberToObject(j, "off_manifold", toy_share_below(ls, n, thr));
    cJSON_AddNumberToObject(j, "precision_k3", prec);
    cJSON_AddNumberToObject(j, "recall_k3", rec);
    if (extra) {
        cJSON *e = read_json_file(extra);
        if (!e) fprintf(stderr, "eval: warning: --extra %s is missing or not JSON; left out\n", extra);
        else cJSON_AddItemToObject(j, "extra", e);
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/report.json", dir);
    char *txt = cJSON_Print(j);
    FILE *f = fopen(path, "w");
    int rc = (!txt || !f || fputs(txt, f) < 0) ? 1 : 0;
    if (f && fclose(f)) rc = 1;
    free(txt);
    snprintf(path, sizeof path, "%s/report.md", dir);
    f = fopen(path, "w");
    if (f) {
        fprintf(f, "# Toy evaluation: %s\n\n| metric | value |\n|---|---|\n", title);
        fprintf(f, "| samples | %lld |\n| mean log p (samples) | %.4f |\n| median log p (samples) | %.4f |\n",
                (long long)n, toy_mean(ls, n), toy_percentile(ls, n, 50));
        fprintf(f, "| mean log p (true, n=%d) | %.4f |\n| off-manifold rate | %.4f |\n", n_true,
                toy_mean(lt, n_true), toy_share_below(ls, n, thr));
        fprintf(f, "| precision (k=3) | %.4f |\n| recall (k=3) | %.4f |\n", prec, rec);
        cJSON *e = cJSON_GetObjectItem(j, "extra");
        for (cJSON *it = e ? e->child : NULL; it; it = it->next)
            if (cJSON_IsNumber(it)) fprintf(f, "| %s | %.5g |\n", it->string, it->valuedouble);
        cJSON *rob = e ? cJSON_GetObjectItem(e, "robustness") : NULL;
        if (rob) {
            fprintf(f, "\nRobustness: decode(mu + s * spread * eps)\n\n| s | mean log p | off-manifold |\n|---|---|---|\n");
            for (cJSON *it = rob->child; it; it = it->next)
                fprintf(f, "| %g | %.4f | %.4f |\n", cJSON_GetObjectItem(it, "s_rel")->valuedouble,
                        cJSON_GetObjectItem(it, "mean_logp")->valuedouble,
                        cJSON_GetObjectItem(it, "off_manifold")->valuedouble);
        }
        fprintf(f, "\nFigures: density.png (true density, samples in red), latent.png (latents).\n");
        if (fclose(f)) rc = 1;
    } else {
        rc = 1;
    }
    fprintf(stderr, "[eval toy] %s: n %lld mean log p %.4f (true %.4f) off-manifold %.4f precision %.4f recall %.4f\n",
            title, (long long)n, toy_mean(ls, n), toy_mean(lt, n_true), toy_share_below(ls, n, thr), prec, rec);
    cJSON_Delete(j);
    snprintf(path, sizeof path, "%s/samples.npy", dir);
    if (write_npy(path, x, n, 2)) rc = 1;
    if (z) {
        snprintf(path, sizeof path, "%s/latents.npy", dir);
        if (write_npy(path, z, n, 2)) rc = 1;
    }
    snprintf(path, sizeof path, "%s/density.png", dir);
    if (figures && density_png(path, g, x, n, ls, thr, title)) { fprintf(stderr, "eval: cannot write %s\n", path); rc = 1; }
    snprintf(path, sizeof path, "%s/latent.png", dir);
    if (figures && (z || spath) && latent_png(path, z, n, spath, title)) { fprintf(stderr, "eval: cannot write %s\n", path); rc = 1; }
    free(xt); free(lt); free(ls);
    toy_gmm_destroy(&g);
    return rc;
}

int eval_toy_main(int argc, char **argv) {
    const char *in_ep = NULL, *ctl_ep = NULL, *acks = NULL, *out = NULL, *extra = NULL, *spath = NULL;
    const char *title = NULL, *sbs = NULL;
    int sources = 1, n_true = 10000, true_seed = 4242, timeout_s = 600, no_figures = 0, bind_any = 0;
    const flag_spec F[] = {
        FLAG_STR_("in", &in_ep), FLAG_STR_("ctl", &ctl_ep), FLAG_STR_("acks", &acks), FLAG_STR_("out", &out),
        FLAG_INT_("sources", &sources, 1, EVAL_MAX_SOURCES), FLAG_INT_("n-true", &n_true, 10, EVAL_MAX_N_TRUE),
        FLAG_INT_("true-seed", &true_seed, INT_MIN, INT_MAX), FLAG_STR_("extra", &extra), FLAG_STR_("store", &spath),
        FLAG_STR_("title", &title), FLAG_INT_("timeout-s", &timeout_s, 1, INT_MAX),
        FLAG_STR_("side-by-side", &sbs), FLAG_BOOL_("no-figures", &no_figures), FLAG_BOOL_("bind-any", &bind_any)};
    int help_asked, optind_end;
    if (flag_parse(STAGE, argc, argv, F, FLAG_COUNT(F), &help_asked, &optind_end)) return 2;
    if (help_asked) { help(); return 0; }
    const int figures = !no_figures;
    if (sbs) {
        int n = argc - optind_end;
        if (n < 1) { fprintf(stderr, "eval: --side-by-side needs input PNGs\n"); return 2; }
        int rc = toy_side_by_side(sbs, (const char *const *)argv + optind_end, n);
        if (rc) fprintf(stderr, "eval: cannot compose %s: %s\n", sbs, vel_strerror(rc));
        return rc ? 1 : 0;
    }
    if (!in_ep || !ctl_ep || !acks || !out) {
        fprintf(stderr, "eval: need --in, --ctl, --acks, --out\n");
        return 2;
    }
    if (stage_mkdir_p(STAGE, out)) return 1;
    bus_socket *in = NULL, *ctl = NULL;
    bus_acker *ack = NULL;
    bus_eos *eos = NULL;
    bus_dedupe *dd = NULL;
    bus_issued *iss = NULL;   // the sources' job tables: only issued items count (issue 15 item 6)
    item *items = NULL;
    int nitems = 0, cap = 0, rc = 1, e, has_z = 1;
    int64_t total = 0, dups = 0;
    if ((e = bus_socket_open(&in, BUS_PULL, &(bus_socket_opts){.allow_remote = bind_any})) || (e = bus_bind(in, in_ep)) ||
        (e = bus_socket_open(&ctl, BUS_SUB, NULL)) || (e = bus_connect(ctl, ctl_ep)) ||
        (e = bus_acker_open(&ack, acks, NULL)) || (e = bus_eos_new(&eos, sources)) ||
        (e = bus_dedupe_new(&dd)) || (e = bus_issued_new(&iss, sources))) {
        fprintf(stderr, "eval: cannot set up sockets: %s\n", vel_errmsg(e));
        rc = vel_exit_code(e);   // a bad endpoint is a usage error (2)
        goto done;
    }
    double last = vel_now();
    int rejected = 0;
    while (!bus_eos_done(eos)) {
        bus_socket *socks[2] = {ctl, in};   // ctl first: a job table before the items it vouches for
        int which = -1;
        bus_msg *m = NULL;
        e = bus_recv_any(socks, 2, 1000, &which, &m);
        if (e == BUS_ETIMEOUT) {
            if (vel_now() - last > timeout_s) {
                fprintf(stderr, "eval: nothing arrived for %d s; giving up with %d items\n", timeout_s, nitems);
                goto done;
            }
            continue;
        }
        last = vel_now();
        if (e) { fprintf(stderr, "eval: rejected a message: %s\n", vel_strerror(e)); continue; }
        if (which == 0) {
            if (bus_issued_note(iss, m)) { bus_msg_destroy(&m); continue; }
            if (bus_msg_is(m, "abort")) {
                fprintf(stderr, "eval: source %u aborted the run; no report\n", bus_msg_src(m));
                bus_msg_destroy(&m);
                goto done;
            }
            if (bus_eos_note(eos, m) < 0) fprintf(stderr, "eval: eos from an unknown source %u\n", bus_msg_src(m));
            bus_msg_destroy(&m);
            continue;
        }
        tensor tx, tz;
        if (!bus_msg_is(m, "points") || bus_msg_find(m, "x", &tx)) {
            fprintf(stderr, "eval: item %llu is '%s' without a tensor 'x'; expected 'points'\n",
                    (unsigned long long)bus_msg_id(m), bus_msg_kind(m));
            bus_msg_destroy(&m);
            rejected++;   // one bad message is counted, not fatal (the design's rule for every stage)
            continue;
        }
        if (tx.dtype != DT_F32 || tx.ndim != 2 || tx.shape[1] != 2) {
            fprintf(stderr, "eval: item %llu: points 'x' are %s of rank %d with last dim %lld; the toy needs f32 (n, 2)\n",
                    (unsigned long long)bus_msg_id(m), dtype_name(tx.dtype), tx.ndim,
                    (long long)(tx.ndim ? tx.shape[tx.ndim - 1] : 0));
            bus_msg_destroy(&m);
            rejected++;
            continue;
        }
        int64_t bad = vel_first_nonfinite(tx.data, 2 * tx.shape[0]);
        if (bad >= 0) {
            fprintf(stderr, "eval: item %llu: points 'x'[%lld] is not finite; item rejected\n",
                    (unsigned long long)bus_msg_id(m), (long long)bad);
            bus_msg_destroy(&m);
            rejected++;
            continue;
        }
        int is = bus_issued_check(iss, bus_msg_src(m), bus_msg_id(m));
        if (is <= 0) {   // not acked: unissued, or its table not heard yet (then its source re-issues it)
            fprintf(stderr, is ? "eval: item (src %u, id %llu) came before its source's job table; dropped\n"
                               : "eval: item (src %u, id %llu) was not issued by any source; rejected\n",
                    bus_msg_src(m), (unsigned long long)bus_msg_id(m));
            rejected += !is;
            bus_msg_destroy(&m);
            continue;
        }
        int fresh = bus_dedupe_add(dd, bus_msg_src(m), bus_msg_id(m));
        if (fresh < 0) { bus_msg_destroy(&m); goto done; }
        if (fresh) {
            if (nitems == cap) {
                cap = cap ? 2 * cap : 64;
                item *ni = realloc(items, sizeof(item) * cap);
                if (!ni) { bus_msg_destroy(&m); goto done; }
                items = ni;
            }
            item *it = &items[nitems++];
            it->src = bus_msg_src(m), it->id = bus_msg_id(m), it->n = tx.shape[0];
            it->x = malloc(sizeof(float) * 2 * it->n + 1);
            it->z = NULL;
            memcpy(it->x, tx.data, sizeof(float) * 2 * it->n);
            if (!bus_msg_find(m, "z", &tz) && tz.dtype == DT_F32 && tz.ndim == 2 && tz.shape[0] == it->n && tz.shape[1] == 2) {
                it->z = malloc(sizeof(float) * 2 * it->n + 1);
                memcpy(it->z, tz.data, sizeof(float) * 2 * it->n);
            } else {
                has_z = 0;
            }
            total += it->n;
        } else {
            dups++;
        }
        int ae = bus_ack(ack, m, 1000);   // ack duplicates too: the first ack may be lost
        if (ae && ae != BUS_ETIMEOUT) fprintf(stderr, "eval: ack failed: %s\n", vel_strerror(ae));
        bus_msg_destroy(&m);
    }
    fprintf(stderr, "[eval toy] %d items (%lld samples), %lld duplicates dropped, %d rejected\n", nitems,
            (long long)total, (long long)dups, rejected);
    if (total < 4) { fprintf(stderr, "eval: no samples arrived\n"); goto done; }
    qsort(items, nitems, sizeof(item), cmp_item);
    float *x = malloc(sizeof(float) * 2 * total), *z = has_z ? malloc(sizeof(float) * 2 * total) : NULL;
    int64_t off = 0;
    for (int i = 0; i < nitems; i++) {
        memcpy(x + 2 * off, items[i].x, sizeof(float) * 2 * items[i].n);
        if (z) memcpy(z + 2 * off, items[i].z, sizeof(float) * 2 * items[i].n);
        off += items[i].n;
    }
    rc = report(out, title ? title : out, x, total, z, n_true, true_seed, extra, spath, figures);
    free(x);
    free(z);
done:
    for (int i = 0; i < nitems; i++) free(items[i].x), free(items[i].z);
    free(items);
    bus_socket_close(&in); bus_socket_close(&ctl);
    bus_acker_close(&ack);
    bus_eos_destroy(&eos);
    bus_dedupe_destroy(&dd);
    bus_issued_destroy(&iss);
    return rc;
}
