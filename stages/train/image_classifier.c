// image_classifier.c: `train --model classifier`, the Fashion-MNIST feature
// classifier (models/classifier.h) whose features feed the Frechet
// distance, precision/recall and Inception Score computed on classifier
// features (labelled so, never called Inception). Softmax cross-entropy
// (optional label smoothing), Adam (PyTorch defaults; AdamW with
// --weight-decay) with a linear warmup then cosine decay of the learning rate
// to zero (nn/schedule's LR_COSINE), optional random horizontal flips,
// Philox-seeded sampling, optional random translations (--shift), optional
// EMA of the weights (--ema: the EMA weights are saved and scored). Writes
// DIR/config.json, DIR/log.jsonl, DIR/classifier.safetensors and the test
// accuracy (DIR/report.json).
// Not here: resume (the run is short; rerun it).
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/base.h"
#include "core/philox.h"
#include "data/augment.h"
#include "data/idx.h"
#include "models/classifier.h"
#include "nn/ema.h"
#include "nn/optim.h"
#include "nn/safetensors.h"
#include "nn/schedule.h"
#include "stages/common/flags.h"
#include "stages/common/progress.h"
#include "stages/train/train.h"

static void help(void) {
    printf("usage: train --model classifier --out DIR [options]\n"
           "Trains the Fashion-MNIST feature classifier used for Frechet distances.\n"
           "  --steps N (10000)  --batch N (32)  --lr X (2e-3, peak)  --seed N (0)\n"
           "  --warmup N (200)  steps of linear warmup; then cosine decay to 0\n"
           "  --flip            random horizontal flips (off: the model underfits)\n"
           "  --shift N (0)     random translation by up to N pixels each way (0..4),\n"
           "                    the border filled with the background (-1)\n"
           "  --init CKPT       start from these weights (a classifier.safetensors) instead of\n"
           "                    random ones: fine-tuning, e.g. with --shift\n"
           "  --ema D (0)       keep an EMA of the weights with decay D (e.g. 0.999); the EMA\n"
           "                    weights are saved and scored (the raw ones are scored too)\n"
           "  --weight-decay W (0)  decoupled weight decay (AdamW) on conv weights; 0: Adam\n"
           "  --label-smoothing E (0)  cross-entropy target (1-E) one-hot + E/10\n"
           "  --test-n N        test images for the reported accuracy (default 10000)\n"
           "  --log-every N (50)  --data DIR (default %s)\n"
           DEVICE_HELP
           "Writes DIR/config.json, DIR/log.jsonl, DIR/classifier.safetensors, DIR/report.json.\n",
           FMNIST_DEFAULT_DIR);
}

// Linear warmup to the peak over `warmup` steps, then cosine decay to 0 at
// `steps` (nn/schedule.h; tested against numpy in tests/nn/test_schedule):
// the decay is what takes a few epochs to the last points of accuracy. A run
// no longer than its warmup only warms up.
static lr_schedule classifier_schedule(double peak, int warmup, int steps) {
    lr_schedule s = {.lr = peak, .decay = LR_COSINE, .warmup = warmup, .total = steps, .min_ratio = 0};
    if (steps <= warmup) s.decay = LR_CONSTANT;
    return s;
}

// Test accuracy of the current weights on the first n test images.
static double test_accuracy(classifier *cl, const fmnist *te, float *x, int32_t *lab, int batch, int n) {
    int hits = 0;
    for (int i0 = 0; i0 < n; i0 += batch) {
        int B = n - i0 < batch ? n - i0 : batch;
        fmnist_batch_f32(te, x, lab, NULL, i0, B);
        const float *lg = classifier_forward(cl, x, B);
        for (int b = 0; b < B; b++) {
            int arg = 0;
            for (int k = 1; k < CLASSIFIER_CLASSES; k++)
                if (lg[b * CLASSIFIER_CLASSES + k] > lg[b * CLASSIFIER_CLASSES + arg]) arg = k;
            hits += arg == lab[b];
        }
    }
    return (double)hits / n;
}

// Mirrors one (1, 32, 32) image left-right in place.
static void flip_rows(float *img) {
    for (int r = 0; r < 32; r++)
        for (int c = 0; c < 16; c++) {
            float t = img[r * 32 + c];
            img[r * 32 + c] = img[r * 32 + 31 - c];
            img[r * 32 + 31 - c] = t;
        }
}

int train_classifier_main(int argc, char **argv) {
    const char *out = NULL, *data_dir = NULL, *init = NULL;
    int steps = 10000, batch = 32, log_every = 50, test_n = 10000, warmup = 200, flip = 0, shift = 0;
    double lr = 2e-3, ema_decay = 0, wd = 0, smoothing = 0;
    uint64_t seed = 0;
    const flag_spec F[] = {
        FLAG_STR_("out", &out), FLAG_INT_("steps", &steps, 0, INT_MAX), FLAG_INT_("batch", &batch, 1, 4096),
        FLAG_F64_("lr", &lr, 0, INFINITY, FLAG_OPEN_LO), FLAG_U64_("seed", &seed),
        FLAG_INT_("test-n", &test_n, 1, 1000000), FLAG_INT_("log-every", &log_every, 1, INT_MAX),
        FLAG_STR_("data", &data_dir), FLAG_INT_("warmup", &warmup, 0, INT_MAX),
        FLAG_BOOL_("flip", &flip), FLAG_INT_("shift", &shift, 0, 4), FLAG_STR_("init", &init),
        FLAG_F64_("ema", &ema_decay, 0, 1, FLAG_OPEN_HI), FLAG_F64_("weight-decay", &wd, 0, 1, 0),
        FLAG_F64_("label-smoothing", &smoothing, 0, 1, FLAG_OPEN_HI), FLAG_DEVICE_};
    int help_asked;
    if (flag_parse("train", argc, argv, F, FLAG_COUNT(F), &help_asked, NULL)) return 2;
    if (help_asked) { help(); return 0; }
    if (!out) { fprintf(stderr, "train: --out DIR is required\n"); return 2; }
    char path[1200];
    fmnist *tr = NULL, *te = NULL;
    int lrc = fmnist_load(data_dir, "train", &tr);
    if (!lrc) lrc = fmnist_load(data_dir, "test", &te);
    if (lrc) {
        fprintf(stderr, "train: %s\n", vel_errmsg(lrc));
        fmnist_destroy(&tr);
        return vel_exit_code(lrc);   // missing or bad data: 2
    }
    classifier *cl = NULL;
    optim *opt = NULL;
    ema *avg = NULL;
    int rc = 0;
    FILE *log = NULL;
    float *x = malloc(sizeof(float) * (size_t)batch * 1024), *u = malloc(sizeof(float) * 4 * (size_t)batch);
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)batch);
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)batch);
    // Adam and AdamW with weight decay 0 do the same arithmetic; AdamW
    // decays only conv weights (norm weights and biases are no_decay).
    optim_config oc = optim_defaults(wd > 0 ? OPTIM_ADAMW : OPTIM_ADAM);
    oc.weight_decay = wd;
    lr_schedule sched = classifier_schedule(lr, warmup, steps);
    if (!x || !u || !lab || !idx || classifier_create(&cl, batch, 1) || optim_create(&opt, &cl->pt, &oc)) {
        fprintf(stderr, "train: out of memory\n");
        rc = 1;
        goto done;
    }
    classifier_init_params(cl, seed);
    if (init && (rc = st_load_params(init, &cl->pt))) {
        fprintf(stderr, "train: --init %s: %s (%s)\n", init, vel_strerror(rc), vel_error_detail());
        rc = 2;
        goto done;
    }
    cl->label_smoothing = smoothing;
    if (ema_decay > 0 && ema_create(&avg, &cl->pt)) { fprintf(stderr, "train: out of memory\n"); rc = 1; goto done; }
    if (stage_mkdir_p("train", out)) { rc = 1; goto done; }   // after every input check
    snprintf(path, sizeof path, "%s/config.json", out);
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "{\"model\":\"classifier\",\"steps\":%d,\"batch\":%d,\"lr\":%g,\"seed\":%llu,"
                   "\"optimizer\":\"%s(0.9,0.999)\",\"weight_decay\":%g,\"schedule\":\"warmup %d + cosine\","
                   "\"flip\":%d,\"shift\":%d,\"init\":\"%s\",\"ema\":%g,\"label_smoothing\":%g,\"features\":%d}\n",
                steps, batch, lr, (unsigned long long)seed, optim_kind_name(oc.kind), wd, warmup, flip, shift,
                init ? init : "", ema_decay, smoothing, CLASSIFIER_FEAT_DIM);
        fclose(f);
    }
    snprintf(path, sizeof path, "%s/log.jsonl", out);
    log = fopen(path, "w");
    if (!log) { fprintf(stderr, "train: cannot write %s\n", path); rc = 1; goto done; }
    double acc_l = 0, t0 = vel_now();
    int acc_hit = 0, acc_n = 0;
    for (int s = 0; s < steps; s++) {
        // Sampling with replacement from Philox uniforms: simple and a pure
        // function of (seed, step).
        philox_uniform(u, 2 * batch, seed, 3, (uint64_t)s * 2 * (uint64_t)batch);
        for (int b = 0; b < batch; b++) {
            idx[b] = (int64_t)(u[b] * (float)tr->n);
            if (idx[b] >= tr->n) idx[b] = tr->n - 1;
        }
        fmnist_batch_f32(tr, x, lab, idx, 0, batch);
        for (int b = 0; b < batch && flip; b++)
            if (u[batch + b] < 0.5f) flip_rows(x + (size_t)b * 1024);
        // Shifts from their own Philox stream, so runs without --shift
        // draw exactly the batches they drew before the flag existed.
        if (shift) philox_uniform(u + 2 * batch, 2 * batch, seed, 4, (uint64_t)s * 2 * (uint64_t)batch);
        for (int b = 0; b < batch && shift; b++) {
            int dy = (int)(u[2 * batch + 2 * b] * (float)(2 * shift + 1)) - shift;
            int dx = (int)(u[2 * batch + 2 * b + 1] * (float)(2 * shift + 1)) - shift;
            // the background is -1; the 28x28 garments sit in a 2-pixel
            // frame of it, so a shift of up to 2 loses nothing
            float tmp[1024];
            image_shift(tmp, x + (size_t)b * 1024, 1, 32, 32, dy > shift ? shift : dy, dx > shift ? shift : dx, -1.0f);
            memcpy(x + (size_t)b * 1024, tmp, sizeof tmp);
        }
        param_zero_grads(&cl->pt);
        classifier_forward(cl, x, batch);
        int hit;
        double l = classifier_loss_backward(cl, lab, batch, &hit);
        if (!isfinite(l)) { fprintf(stderr, "\ntrain: loss not finite at step %d\n", s); rc = 1; goto done; }
        optim_step(opt, &cl->pt, lr_at(&sched, s));
        if (avg) ema_update(avg, &cl->pt, ema_decay);
        acc_l += l; acc_hit += hit; acc_n += batch;
        if ((s + 1) % log_every == 0 || s + 1 == steps) {
            fprintf(log, "{\"step\":%d,\"loss\":%.6g,\"train_acc\":%.4f,\"wall_s\":%.2f}\n", s + 1,
                    acc_l * batch / acc_n, (double)acc_hit / acc_n, vel_now() - t0);
            fflush(log);
            fprintf(stderr, "%s[train classifier] step %d/%d loss %.4f acc %.3f%s", progress_start(stderr), s + 1, steps,
                    acc_l * batch / acc_n, (double)acc_hit / acc_n, progress_end(stderr));
            acc_l = 0; acc_hit = 0; acc_n = 0;
        }
    }
    fprintf(stderr, "%s", progress_done(stderr));
    if (test_n > te->n) test_n = (int)te->n;
    // With --ema the raw weights are scored, then the EMA weights swapped in,
    // scored, saved and reported as the accuracy.
    double acc_raw = avg ? test_accuracy(cl, te, x, lab, batch, test_n) : 0;
    if (avg) ema_swap(avg, &cl->pt);
    snprintf(path, sizeof path, "%s/classifier.safetensors", out);
    st_kv meta[1] = {{"format", "pt"}};
    int e = st_save_params(path, &cl->pt, DT_F32, meta, 1);
    if (e) { fprintf(stderr, "train: saving %s: %s (%s)\n", path, vel_strerror(e), vel_error_detail()); rc = 1; goto done; }
    double acc = test_accuracy(cl, te, x, lab, batch, test_n), train_s = vel_now() - t0;
    if (avg) fprintf(stderr, "[train classifier] raw weights: test accuracy %.4f\n", acc_raw);
    fprintf(stderr, "[train classifier] %stest accuracy %.4f on %d images\n", avg ? "EMA weights (saved): " : "", acc,
            test_n);
    snprintf(path, sizeof path, "%s/report.json", out);
    f = fopen(path, "w");
    if (f) {
        fprintf(f, "{\"test_accuracy\":%.6f,\"test_images\":%d,\"steps\":%d,\"wall_s\":%.1f", acc, test_n, steps,
                train_s);
        if (avg) fprintf(f, ",\"test_accuracy_raw\":%.6f,\"weights\":\"ema\"", acc_raw);
        fprintf(f, "}\n");
        fclose(f);
    }
done:
    if (log) fclose(log);
    optim_destroy(&opt);
    ema_destroy(&avg);
    classifier_destroy(&cl);
    fmnist_destroy(&tr);
    fmnist_destroy(&te);
    free(x); free(u); free(lab); free(idx);
    return rc;
}
