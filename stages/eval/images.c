// images.c: `eval --model images`, the sink of the generation leg
// sample --model dit -> decode --model vae -> eval. Pulls "images" items
// (docs/PROTOCOL.md: u8 (n, H, W, C), labels i32 (n)) through bus_sink
// (duplicates dropped by (src, id), every copy acked to its source), rejects
// and counts malformed messages and goes on (stages/common/image_set.h), and
// when every one of --sources producers has sent eos writes into --out
// samples.npz, grid_class_K.png, report.json and report.md
// (stages/eval/image_report.h). With --ref-stats it scores the images: FID, sFID, IS, precision/recall on the features of a feature
// network (stages/eval/image_score.h): the Fashion-MNIST classifier (the
// default; numbers labelled "classifier features, not Inception"; its
// weights are the shipped weights/fmnist-classifier.safetensors unless
// --classifier or --weights names others) or, with
// --feature-net inception --weights FILE, Inception-v3 (pytorch-fid's FID
// variant, weights converted by scripts/convert_inception.py).
// `eval --model images --classifier CKPT --ref-stats FILE --data fashion-mnist`
// (no --in) computes the reference statistics once and caches them in FILE;
// `--data DIR` does the same for an image folder (class folders of PNG/JPEG).
// `eval --model images --npz FILE --out DIR ...` scores an existing archive
// (ADM layout, data/npz.h) instead of listening on the bus.
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus/bus.h"
#include "core/base.h"
#include "data/npz.h"
#include "metrics/featnet.h"
#include "stages/common/flags.h"
#include "stages/eval/eval.h"
#include "stages/eval/image_report.h"
#include "stages/eval/image_score.h"
#include "stages/common/image_set.h"
#include "stages/common/sink_wait.h"

static const char STAGE[] = "eval";
// Bounds: every image is held in memory (2^22 32x32x3 images are 12 GiB).
enum { IMG_MAX_SOURCES = 1024, IMG_MAX_CLASSES = 100000, IMG_MAX_IMAGES = 1 << 22 };

static void help(void) {
    printf("usage: eval --model images --in EP --ctl EP --acks EP[,EP...] --out DIR [options]\n"
           "       eval --model images --npz FILE --out DIR [options]\n"
           "       eval --model images --ref-stats FILE --data fashion-mnist|DIR [--classifier CKPT]\n"
           "       eval --model images --feature-net inception --weights FILE --ref-stats FILE --data ...\n"
           "The sink of sample -> decode -> eval: collects 'images' items, drops duplicates,\n"
           "acks each copy to its source, and writes DIR/samples.npz (arr_0 uint8 NHWC,\n"
           "labels int32), DIR/grid_class_K.png, DIR/report.json and DIR/report.md.\n"
           "  --in EP            bind: images from the decoders (PULL)\n"
           "  --ctl EP           connect: job sources' eos broadcasts (SUB), comma-separated\n"
           "  --acks EP          connect: ack endpoint of each job source, in source order\n"
           "  --npz FILE         score this archive (arr_0 uint8 NHWC, labels or arr_1) instead\n"
           "                     of collecting from the bus; writes grids and the report\n"
           "  --sources P        job sources (default 1)\n"
           "  --classes K        labels lie in [0, K) (default 10)\n"
           "  --classifier CKPT  classifier.safetensors (train --model classifier): score the\n"
           "                     images (FID, sFID, IS, precision/recall; classifier features,\n"
           "                     not Inception); needs --ref-stats. The same as\n"
           "                     --feature-net classifier --weights CKPT. Default: the shipped\n"
           "                     weights/fmnist-classifier.safetensors (0.9221 test accuracy;\n"
           "                     the same network everywhere, so FIDs compare)\n"
           "  --feature-net NET  classifier (default) or inception: Inception-v3, the FID\n"
           "                     variant of pytorch-fid, weights from scripts/convert_inception.py\n"
           "                     (no weights ship with vel)\n"
           "  --weights FILE     the feature network's weights (inception: required)\n"
           "  --ref-stats FILE   reference statistics of real images for that network;\n"
           "                     with --data and without --in: compute them and write FILE\n"
           "                     (an existing FILE of this network is kept: the cache)\n"
           "  --data NAME|DIR    fashion-mnist (the training split; --data-dir DIR: its files)\n"
           "                     or an image folder (class subfolders of PNG/JPEG, ADM centre crop)\n"
           "  --image-size N     folder images are cropped to N x N (default 32 for the\n"
           "                     classifier, which takes only 32; 299 for inception)\n"
           "  --n-ref N          first N training images only (default all)\n"
           "  --keep-feats N     reference features kept for precision/recall (default 10000)\n"
           "  --per-class N      images per class grid (default 64)   --ncols N (8)\n"
           "  --title TEXT       label for the report (default: the --out folder)\n"
           "  --timeout-s S      give up when nothing arrives for S seconds (default 600)\n"
           "  --bind-any         allow binding tcp:// on any address, not only 127.0.0.1\n");
}

typedef struct {
    const char *in_ep, *ctl_ep, *acks, *out, *ckpt, *ref_path, *data, *data_dir, *title, *net, *weights, *npz;
    int sources, classes, per_class, ncols, timeout_s, bind_any, image_size;
    int64_t n_ref, keep_feats;
    char default_weights[PATH_MAX + 64];   // the shipped classifier's path, when used
} opts;

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

// --ref-stats with --data: reuse FILE when it holds this network's
// statistics, compute it otherwise. 0, 1 (runtime failure) or 2 (input).
static int ref_mode(const opts *o, featnet *f) {
    refstats *r = NULL;
    if (file_exists(o->ref_path) && refstats_load(&r, o->ref_path, featnet_name(f), featnet_hash_str(f)) == 0) {
        fprintf(stderr, "[eval images] %s already holds statistics of this network (%s, %lld images); kept\n",
                o->ref_path, featnet_name(f), (long long)r->count);
        refstats_destroy(&r);
        return 0;
    }
    if (stage_mkdir_parent(STAGE, o->ref_path)) return 1;
    double t0 = vel_now();
    int e = strcmp(o->data, "fashion-mnist")
                ? image_refstats_folder(f, o->data, o->image_size, o->n_ref, o->keep_feats, o->ref_path)
                : image_refstats_fmnist(f, o->data_dir, o->n_ref, o->keep_feats, o->ref_path);
    if (e) {
        fprintf(stderr, "eval: cannot compute reference statistics: %s (%s)\n", vel_strerror(e), vel_error_detail());
        return e == VEL_ENOMEM ? 1 : 2;
    }
    fprintf(stderr, "[eval images] reference statistics -> %s (%.1f s)\n", o->ref_path, vel_now() - t0);
    return 0;
}

// Collects until every source has ended. 0 or 1.
static int collect(const opts *o, image_set *set, int64_t *dups) {
    bus_sink *sink = NULL;
    bus_sink_opts so = {.in = {.data_ep = o->in_ep, .bind = 1, .ctl_ep = o->ctl_ep, .nproducers = o->sources,
                               .sock = {.allow_remote = o->bind_any}},
                        .acks_ep = o->acks};
    int e = bus_sink_open(&sink, &so);
    if (e) { fprintf(stderr, "eval: cannot set up sockets: %s\n", vel_errmsg(e)); return vel_exit_code(e); }
    int rc = 0;
    sink_wait w;
    sink_wait_init(&w, STAGE, o->timeout_s);
    for (;;) {
        bus_msg *m = NULL;
        int k = sink_wait_next(&w, sink, &m);
        if (k == SINK_END) break;
        if (k == SINK_GIVE_UP || k == SINK_ABORTED) {
            fprintf(stderr, "eval: %lld images had arrived\n", (long long)set->total);
            rc = 1;
            break;
        }
        if (k == SINK_REJECTED) { set->rejected++; continue; }
        char why[256];
        int a = image_set_add(set, m, why, sizeof why);
        bus_msg_destroy(&m);
        if (a == 1) {
            fprintf(stderr, "eval: rejected: %s\n", why);
            set->rejected++;
        } else if (a) {
            fprintf(stderr, "eval: %s\n", vel_strerror(a));
            rc = 1;
            break;
        }
    }
    *dups = (int64_t)bus_sink_duplicates(sink);
    bus_sink_close(&sink);
    return rc;
}

// The shipped classifier, found beside the binary (bin/eval ->
// ../weights/), so the checkout can move: buf gets the path; 0, or -1 when
// the binary's own path cannot be read.
static int default_classifier(char *buf, size_t n) {
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) return -1;
    exe[len] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return -1;
    *slash = 0;   // .../bin
    int w = snprintf(buf, n, "%s/../%s", exe, EVAL_DEFAULT_CLASSIFIER);
    return w > 0 && (size_t)w < n ? 0 : -1;
}

// Checks the flag combination and resolves the feature network. 0 or 2.
static int check_opts(opts *o, featnet_kind *kind) {
    if (!strcmp(o->net, "classifier")) *kind = FEATNET_CLASSIFIER;
    else if (!strcmp(o->net, "inception")) *kind = FEATNET_INCEPTION;
    else { fprintf(stderr, "eval: --feature-net must be classifier or inception, not '%s'\n", o->net); return 2; }
    if (o->ckpt) {
        if (*kind != FEATNET_CLASSIFIER || o->weights) {
            fprintf(stderr, "eval: --classifier CKPT is the classifier's weights; with --feature-net %s give --weights FILE only\n", o->net);
            return 2;
        }
        o->weights = o->ckpt;
    }
    if (!o->image_size) o->image_size = *kind == FEATNET_CLASSIFIER ? 32 : 299;
    if (*kind == FEATNET_CLASSIFIER && o->image_size != 32) {
        fprintf(stderr, "eval: the classifier takes 32x32 images; --image-size %d is for inception\n", o->image_size);
        return 2;
    }
    if (o->weights && !o->ref_path) {
        fprintf(stderr, "eval: the network's weights (--classifier or --weights) and --ref-stats go together\n");
        return 2;
    }
    if (o->ref_path && !o->weights) {
        if (*kind == FEATNET_INCEPTION) {
            fprintf(stderr, "eval: --feature-net inception needs --weights FILE (no Inception weights ship with vel)\n");
            return 2;
        }
        if (default_classifier(o->default_weights, sizeof o->default_weights)) {
            fprintf(stderr, "eval: cannot find the shipped classifier (%s); give --classifier CKPT\n",
                    EVAL_DEFAULT_CLASSIFIER);
            return 2;
        }
        o->weights = o->default_weights;
    }
    int modes = (o->in_ep != NULL) + (o->npz != NULL) + (o->data != NULL);
    if (modes != 1) {
        fprintf(stderr, "eval: give one of --in (the bus), --npz FILE, or --data with --ref-stats\n");
        return 2;
    }
    if (o->data && strcmp(o->data, "fashion-mnist") && !is_dir(o->data)) {
        fprintf(stderr, "eval: --data %s: neither fashion-mnist nor an image folder\n", o->data);
        return 2;
    }
    if (o->data && !o->ref_path) { fprintf(stderr, "eval: --data needs --ref-stats FILE to write\n"); return 2; }
    if (o->in_ep && (!o->ctl_ep || !o->acks || !o->out)) { fprintf(stderr, "eval: need --in, --ctl, --acks, --out\n"); return 2; }
    if (o->npz && !o->out) { fprintf(stderr, "eval: --npz needs --out DIR\n"); return 2; }
    return 0;
}

// --npz: the images of an archive, labels checked against --classes. 0 or 2.
static int read_npz(const opts *o, image_set *set, uint8_t **u8, int32_t **labels, int64_t *n) {
    npz_images im;
    int e = npz_images_read(o->npz, &im);
    if (e) {
        fprintf(stderr, "eval: --npz %s: %s (%s)\n", o->npz, vel_strerror(e), vel_error_detail());
        return e == VEL_ENOMEM ? 1 : 2;
    }
    if (!im.labels) {
        fprintf(stderr, "eval: --npz %s: no labels (a 'labels' or 'arr_1' member) for the class grids\n", o->npz);
        npz_images_free(&im);
        return 2;
    }
    for (int64_t i = 0; i < im.n; i++)
        if (im.labels[i] < 0 || im.labels[i] >= o->classes) {
            fprintf(stderr, "eval: --npz %s: label %d of image %lld outside [0, %d) (--classes)\n", o->npz,
                    im.labels[i], (long long)i, o->classes);
            npz_images_free(&im);
            return 2;
        }
    set->H = im.H; set->W = im.W; set->C = im.C;
    *u8 = im.u8;
    *labels = im.labels;
    *n = im.n;
    return 0;
}

int eval_images_main(int argc, char **argv) {
    opts o = {.sources = 1, .classes = 10, .per_class = 64, .ncols = 8, .timeout_s = 600, .keep_feats = 10000,
              .net = "classifier"};
    const flag_spec F[] = {
        FLAG_STR_("in", &o.in_ep), FLAG_STR_("ctl", &o.ctl_ep), FLAG_STR_("acks", &o.acks), FLAG_STR_("out", &o.out),
        FLAG_STR_("classifier", &o.ckpt), FLAG_STR_("ref-stats", &o.ref_path), FLAG_STR_("data", &o.data),
        FLAG_STR_("data-dir", &o.data_dir), FLAG_STR_("title", &o.title), FLAG_STR_("feature-net", &o.net),
        FLAG_STR_("weights", &o.weights), FLAG_STR_("npz", &o.npz), FLAG_INT_("image-size", &o.image_size, 1, 4096),
        FLAG_INT_("sources", &o.sources, 1, IMG_MAX_SOURCES), FLAG_INT_("classes", &o.classes, 1, IMG_MAX_CLASSES),
        FLAG_INT_("per-class", &o.per_class, 1, 4096), FLAG_INT_("ncols", &o.ncols, 1, 256),
        FLAG_INT_("timeout-s", &o.timeout_s, 1, INT_MAX), FLAG_BOOL_("bind-any", &o.bind_any),
        FLAG_I64_("n-ref", &o.n_ref, 2, IMG_MAX_IMAGES), FLAG_I64_("keep-feats", &o.keep_feats, 0, IMG_MAX_IMAGES)};
    int help_asked;
    if (flag_parse(STAGE, argc, argv, F, FLAG_COUNT(F), &help_asked, NULL)) return 2;
    if (help_asked) { help(); return 0; }
    featnet_kind kind;
    if (check_opts(&o, &kind)) return 2;
    // Open the network and the statistics before any socket: bad inputs end
    // the run before producers start waiting on it.
    featnet *f = NULL;
    refstats *ref = NULL;
    int e, rc = 1;
    if (o.weights && (e = featnet_open(&f, kind, o.weights, kind == FEATNET_INCEPTION ? 8 : 64))) {
        fprintf(stderr, "eval: %s %s: %s (%s)\n",
                o.ckpt ? "--classifier" : o.weights == o.default_weights ? "the shipped classifier" : "--weights",
                o.weights, vel_strerror(e),
                vel_error_detail());
        return e == VEL_ENOMEM ? 1 : 2;
    }
    if (o.data) {
        rc = ref_mode(&o, f);
        featnet_close(&f);
        return rc;
    }
    if (f && (e = refstats_load(&ref, o.ref_path, featnet_name(f), featnet_hash_str(f)))) {
        fprintf(stderr, "eval: --ref-stats %s: %s (%s)\n", o.ref_path, vel_strerror(e), vel_error_detail());
        featnet_close(&f);
        return e == VEL_ENOMEM ? 1 : 2;
    }
    image_set set;
    image_set_init(&set, o.classes, IMG_MAX_IMAGES);
    uint8_t *u8 = NULL;
    int32_t *labels = NULL;
    int64_t n = 0, dups = 0;
    if (o.npz) {
        if ((rc = read_npz(&o, &set, &u8, &labels, &n)) || (rc = 1, stage_mkdir_p(STAGE, o.out))) goto done;
    } else {
        if (stage_mkdir_p(STAGE, o.out) || collect(&o, &set, &dups)) goto done;
        fprintf(stderr, "[eval images] %d items (%lld images), %lld duplicates dropped, %lld rejected\n", set.nitems,
                (long long)set.total, (long long)dups, (long long)set.rejected);
        if (set.total < 1) { fprintf(stderr, "eval: no images arrived\n"); goto done; }
        if ((e = image_set_finish(&set, &u8, &labels, &n))) { fprintf(stderr, "eval: %s\n", vel_strerror(e)); goto done; }
    }
    image_scores sc;
    if (f && (e = image_score(&sc, f, ref, u8, n, set.H, set.W, set.C))) {
        fprintf(stderr, "eval: cannot score the images: %s (%s)\n", vel_strerror(e), vel_error_detail());
        rc = e == VEL_EINVAL ? 2 : 1;   // VEL_EINVAL: an image shape this network does not take
        goto done;
    }
    image_report_info info = {o.title ? o.title : o.out, n, set.nitems, dups, set.rejected, o.classes,
                              f ? &sc : NULL, f ? featnet_name(f) : NULL, f ? featnet_hash_str(f) : NULL,
                              f ? featnet_label(f) : NULL, o.ref_path, ref ? ref->count : 0, o.npz};
    if ((!o.npz && (e = image_write_npz(o.out, u8, labels, n, set.H, set.W, set.C))) ||
        (e = image_write_grids(o.out, u8, labels, n, set.H, set.W, set.C, o.classes, o.per_class, o.ncols)) ||
        (e = image_write_report(o.out, &info, labels))) {
        fprintf(stderr, "eval: cannot write into %s: %s\n", o.out, vel_strerror(e));
        rc = 1;
        goto done;
    }
    if (f)
        fprintf(stderr, "[eval images] %s: FID %.4f sFID %.4f IS %.4f precision %.4f recall %.4f (%s)\n",
                info.title, sc.fid, sc.sfid, sc.is, sc.precision, sc.recall, featnet_label(f));
    rc = 0;
done:
    free(u8);
    free(labels);
    image_set_free(&set);
    refstats_destroy(&ref);
    featnet_close(&f);
    return rc;
}
