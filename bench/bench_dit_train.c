// bench_dit_train.c: speed of `train --model dit` on the CPU, ratios in one
// run:
//   1. the training step (models/dit_train.h: draws, forward, MSE + cosine
//      loss, backward, clip, AdamW, EMA) in images/s for the tiny preset
//      (batch 64) and S (batch 16) on Fashion-MNIST-sized latents (4 x 8 x 8,
//      10 classes) at 1 and 2 OpenMP threads; against PyTorch eager fp32 at
//      the same config and thread count when VEL_TORCH_PYTHON names a python
//      with torch (bench/bench_dit_train_torch.py), else "n/a".
//   2. the loader (store/loader.h) on a synthetic cache of 8192 latents:
//      latents/s it delivers with no step consuming them, against the tiny
//      step's consumption at 2 threads (target: >= 5x).
// Run under the timing lock: flock /tmp/vel-timing.lock build/bench/bench_dit_train
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "dist/dist.h"
#include "models/dit_train.h"
#include "nn/ema.h"
#include "nn/optim.h"
#include "store/loader.h"
#include "core/philox.h"

static double step_rate(const char *preset, int B, int threads, int steps) {
    omp_set_num_threads(threads);
    ldit_config c = {.in_channels = 4, .input_size = 8, .num_classes = 10};
    CHECK(dit_preset(preset, &c) == 0);
    ldit *m = NULL;
    dit_trainer *tr = NULL;
    optim *o = NULL;
    ema *e = NULL;
    dit_fm_cfg fm = dit_fm_defaults();
    optim_config oc = optim_defaults(OPTIM_ADAMW);
    oc.beta1 = 0.9, oc.beta2 = 0.95, oc.weight_decay = 0;
    CHECK(ldit_create(&m, &c, B) == 0 && dit_trainer_create(&tr, m, &fm, B) == 0);
    CHECK(optim_create(&o, &m->pt, &oc) == 0 && ema_create(&e, &m->pt) == 0);
    ldit_init_params(m, 0);
    float *x = malloc(sizeof(float) * (size_t)(B * tr->numel)), *sg = malloc(sizeof(float) * (size_t)(B * tr->numel));
    int32_t *y = malloc(sizeof(int32_t) * (size_t)B);
    for (int64_t i = 0; i < B * tr->numel; i++) x[i] = (float)(i % 7) * 0.1f, sg[i] = 0.1f;
    for (int b = 0; b < B; b++) y[b] = b % 10;
    double t0 = 0;
    for (int s = 0; s < steps + 2; s++) {
        if (s == 2) t0 = vel_now();   // two warm-up steps
        dit_draw_latents(x, x, sg, tr->numel, B, 1, (uint64_t)s * B);
        dit_draw_step(tr, B, 1, (uint64_t)s * B);
        param_zero_grads(&m->pt);
        dit_losses L;
        CHECK(dit_loss_backward(tr, x, y, B, &L) == 0);
        clip_grad_norm(&m->pt, 1.0f);
        optim_step(o, &m->pt, 2e-4);
        ema_update(e, &m->pt, 0.9999);
    }
    double rate = (double)B * steps / (vel_now() - t0);
    free(x); free(sg); free(y);
    ema_destroy(&e);
    optim_destroy(&o);
    dit_trainer_destroy(&tr);
    ldit_destroy(&m);
    return rate;
}

// PyTorch's rate at the same config, or 0 when no torch python is set.
static double torch_rate(const char *preset, int B, int threads, int steps) {
    const char *py = getenv("VEL_TORCH_PYTHON");
    if (!py || !*py) return 0;
    ldit_config c = {0};
    CHECK(dit_preset(preset, &c) == 0);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "%s bench/bench_dit_train_torch.py --depth %d --hidden %d --heads %d --patch %d --channels 4 "
             "--size 8 --classes 10 --batch %d --threads %d --steps %d",
             py, c.depth, c.hidden, c.heads, c.patch, B, threads, steps);
    FILE *f = popen(cmd, "r");
    double r = 0;
    char line[256];
    while (f && fgets(line, sizeof line, f)) sscanf(line, "torch_img_per_s %lf", &r);
    if (f) pclose(f);
    return r;
}

static void order_fn(int64_t *order, int64_t n, uint64_t seed, int64_t epoch) {
    dist_epoch_order(order, n, seed, epoch);
}

// A cache of n random 4 x 8 x 8 latents with flips and stats at path.
static void make_cache(const char *path, int n) {
    store_meta m;
    store *s = NULL;
    CHECK(store_meta_init(&m, "bench", 4, 8, 8, 1, "synthetic", (uint64_t)n, "bench") == 0);
    CHECK(store_create(&s, path, &m, NULL) == 0);
    enum { K = 256, E = 256 };   // records per write transaction, floats per latent
    float *buf = malloc(sizeof(float) * 4 * E * K);
    store_record *r = malloc(sizeof(store_record) * K);
    CHECK(buf && r);
    for (int i0 = 0; i0 < n; i0 += K) {
        int k = n - i0 < K ? n - i0 : K;
        philox_normal(buf, 4 * E * k, 1, 0, (uint64_t)i0 * 4 * E);
        for (int i = 0; i < k; i++) {
            float *b = buf + (size_t)i * 4 * E;
            for (int j = 0; j < E; j++) b[E + j] = b[3 * E + j] = 0.1f;
            r[i] = (store_record){(uint64_t)(i0 + i), (i0 + i) % 10, b, b + E, b + 2 * E, b + 3 * E};
        }
        CHECK(store_put_batch(s, r, (size_t)k, NULL) == 0);
    }
    float mean[4], sd[4];
    CHECK(store_compute_stats(s, mean, sd, (size_t)n, 0) == 0 && store_set_stats(s, mean, sd) == 0);
    store_close(&s);
    free(buf);
    free(r);
}

static double loader_rate(const char *dir) {
    char p[1100];
    snprintf(p, sizeof p, "%s/cache", dir);
    make_cache(p, 8192);
    store *s = NULL;
    uint64_t *idx = NULL;
    size_t n = 0;
    CHECK(store_open(&s, p, NULL, NULL, NULL) == 0 && store_list_indices(s, &idx, &n) == 0);
    loader *L = NULL;
    loader_opts o = {.global_batch = 64, .world = 1, .seed = 1, .flip = 1, .order = order_fn};
    CHECK(loader_create(&L, s, idx, (int64_t)n, &o) == 0);
    const loader_batch *b;
    CHECK(loader_next(L, &b) == 0);   // the first read includes LMDB's page faults
    double t0 = vel_now();
    const int batches = 1000;
    for (int i = 0; i < batches; i++) CHECK(loader_next(L, &b) == 0);
    double rate = 64.0 * batches / (vel_now() - t0);
    loader_destroy(&L);
    free(idx);
    store_close(&s);
    return rate;
}

int main(void) {
    struct { const char *preset; int B, steps; } cfg[] = {{"tiny", 64, 30}, {"S", 16, 4}};
    printf("%-6s %5s %7s %12s %12s %7s\n", "preset", "batch", "threads", "vel img/s", "torch img/s", "ratio");
    double tiny2 = 0;
    for (int i = 0; i < 2; i++)
        for (int th = 1; th <= 2; th++) {
            double v = step_rate(cfg[i].preset, cfg[i].B, th, cfg[i].steps);
            double t = torch_rate(cfg[i].preset, cfg[i].B, th, cfg[i].steps);
            if (i == 0 && th == 2) tiny2 = v;
            if (t > 0)
                printf("%-6s %5d %7d %12.1f %12.1f %7.2f\n", cfg[i].preset, cfg[i].B, th, v, t, v / t);
            else
                printf("%-6s %5d %7d %12.1f %12s %7s\n", cfg[i].preset, cfg[i].B, th, v, "n/a", "n/a");
            fflush(stdout);
        }
    char tmpl[] = "/tmp/bench_dit_train_XXXXXX";
    char *dir = mkdtemp(tmpl);
    CHECK(dir != NULL);
    double lr = loader_rate(dir);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "bench: could not remove %s\n", dir);
    printf("loader: %.0f latents/s (batch 64, flips, 8192-record cache); tiny step at 2 threads consumes "
           "%.1f/s: ratio %.1fx (target >= 5x)\n", lr, tiny2, lr / tiny2);
    return 0;
}
