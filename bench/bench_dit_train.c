// bench_dit_train.c: speed of `train --model dit` on the CPU, ratios in one
// run:
//   1. the training step (models/dit_train.h: draws, forward, MSE + cosine
//      loss, backward, clip, AdamW, EMA) in images/s for the tiny preset
//      (batch 64) and S (batch 16) on Fashion-MNIST-sized latents (4 x 8 x 8,
//      10 classes) at 1 and 2 OpenMP threads; against PyTorch eager fp32 at
//      the same config and thread count when VEL_TORCH_PYTHON names a python
//      with torch (bench/bench_dit_train_torch.py: the same step, EMA
//      included, with PyTorch's fused eager ops F.rms_norm and SDPA), else
//      "n/a".
//      bench/torch_cpu's "LightningDiT-S step" row measures a different
//      thing and may read differently: the bare model step (MSE only, no
//      draws, clip or EMA; 32 x 8 x 8 latents, 1000 classes, q/k norm;
//      PyTorch zeroes gradients instead of setting them to None), as time
//      ours/PyTorch (lower is better; here images/s, higher is better),
//      medians of 5 interleaved samples (here one run of 4 steps per side,
//      PyTorch after ours). Until session 4 the PyTorch side here had no
//      EMA (about 5% of the S step) and hand-written RMSNorm and attention.
//   2. the loader (store/loader.h) on a synthetic cache of 8192 latents:
//      latents/s it delivers with no step consuming them, against the tiny
//      step's consumption at 2 threads (target: >= 5x).
// Each row also gives images per CPU-second of the process (ours and
// PyTorch's, same steps), the rate to compare on a loaded machine.
// Run under the timing lock: flock /tmp/vel-timing.lock build/bench/bench_dit_train
//
// Flags (all optional; without them the table above, as before):
//   --preset NAME   one preset (tiny, S, B, ...; 4 x 8 x 8 latents, 10 classes)
//                   instead of tiny and S
//   --batch N       batch instead of the preset's (tiny 64, S 16, others 16)
//   --threads N     one OpenMP thread count instead of 1 and 2
//   --json          one JSON line per row instead of the table:
//                   {"name": "dit_train_step_PRESET_bB_tT", "ms": per step,
//                    "items_per_s": images/s, "torch_items_per_s": ... when measured},
//                   and {"name": "dit_loader", "items_per_s": latents/s}
//   --no-loader     skip the loader part
//   --device cuda   instead: the LightningDiT-B/1 step of bench/torch/bench_dit.py
//                   on the GPU (32 x 16 x 16 latents, 1000 classes, q/k norm,
//                   MSE loss, AdamW betas 0.9/0.95, no clip, no EMA), --batch
//                   (default 64), fp32; prints {"name": "dit_b1_step_fp32", "ms",
//                   "flops", "tflops", "items_per_s"} (the name bench_dit.py
//                   --dtype fp32 prints, so tests/device/run.sh pairs them).
//                   The model, AdamW state and activations live on the GPU; the
//                   flow-matching draws are made on the host (x_t and u go up each
//                   step), the loss and its gradient on the GPU (two doubles come
//                   back: models/dit_train.h, nn/flow_loss.h).
//   --dtype bf16    with --device cuda: bf16 autocast of the GEMMs and attention
//                   (nn/device.h device_autocast_bf16; fp32 master weights and
//                   other ops: the list is in nn/cuda/ops.h),
//                   "dit_b1_step_bf16" (pairs with bench_dit.py's default).
//                   On the CPU it exits 2 (the CPU path is fp32 only).
#include <omp.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "core/error.h"
#include "dist/dist.h"
#include "models/dit_train.h"
#include "nn/backend.h"
#include "nn/device.h"
#include "nn/ema.h"
#include "nn/optim.h"
#include "stages/common/flags.h"
#include "store/loader.h"
#include "core/philox.h"

// Images per second of wall time and per second of this process's CPU time
// over the timed steps. The CPU-time rate is the one to read on a loaded
// machine: time slices lost to other processes do not count (at 1 thread it
// is the speed of the code; at 2 threads it measures efficiency).
typedef struct { double wall, cpu; } rate2;

static rate2 step_rate(const char *preset, int B, int threads, int steps) {
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
    double t0 = 0, c0 = 0;
    for (int s = 0; s < steps + 2; s++) {
        if (s == 2) t0 = vel_now(), c0 = vel_cpu_now();   // two warm-up steps
        dit_draw_latents(x, x, sg, tr->numel, B, 1, (uint64_t)s * B);
        dit_draw_step(tr, B, 1, (uint64_t)s * B);
        dit_losses L;   // the gradients are zero: committed so, cleared by each step's update
        CHECK(dit_loss_backward(tr, x, y, B, &L) == 0);
        clip_grad_norm(&m->pt, 1.0f);
        optim_step_ema_zero(o, &m->pt, 2e-4, e, 0.9999, 1);   // AdamW, EMA, zero grads in one pass
    }
    rate2 rate = {(double)B * steps / (vel_now() - t0), (double)B * steps / (vel_cpu_now() - c0)};
    free(x); free(sg); free(y);
    ema_destroy(&e);
    optim_destroy(&o);
    dit_trainer_destroy(&tr);
    ldit_destroy(&m);
    return rate;
}

// The B/1 step on the GPU (see the header); prints one JSON line. 0, or 1
// after printing why.
static int gpu_step(int index, int B, int bf16) {
    char msg[512];
    if (device_activate(DEVICE_CUDA, index, msg, sizeof msg)) {
        fprintf(stderr, "bench_dit_train: %s\n", msg);
        return 2;
    }
    if (bf16 && device_autocast_bf16(1)) { fprintf(stderr, "bench_dit_train: %s\n", vel_error_detail()); return 1; }
    ldit_config c = {.in_channels = 32, .input_size = 16, .num_classes = 1000, .qk_norm = 1};
    CHECK(dit_preset("B/1", &c) == 0);
    ldit *m = NULL;
    dit_trainer *tr = NULL;
    optim *o = NULL;
    dit_fm_cfg fm = dit_fm_defaults();
    fm.cos_weight = 0;   // bench_dit.py's loss: MSE only
    optim_config oc = optim_defaults(OPTIM_ADAMW);
    oc.beta1 = 0.9, oc.beta2 = 0.95, oc.weight_decay = 0;
    int e = ldit_create(&m, &c, B);
    if (!e) { ldit_init_params(m, 0); e = ldit_to_device(m, DEVICE_CUDA); }
    if (!e) e = dit_trainer_create(&tr, m, &fm, B);
    if (!e) e = optim_create(&o, &m->pt, &oc);
    if (e) { fprintf(stderr, "bench_dit_train: building B/1 on the GPU: %s\n", vel_errmsg(e)); return 1; }
    float *x = malloc(sizeof(float) * (size_t)(B * tr->numel));
    int32_t *y = malloc(sizeof(int32_t) * (size_t)B);
    philox_normal(x, B * tr->numel, 7, 0, 0);
    for (int b = 0; b < B; b++) y[b] = (b * 37) % 1000;
    const int warm = 5, steps = 20;
    double t0 = 0;
    for (int s = 0; s < warm + steps && !e; s++) {
        if (s == warm) t0 = vel_now();
        dit_draw_step(tr, B, 1, (uint64_t)s * B);
        param_zero_grads(&m->pt);
        dit_losses L;
        e = dit_loss_backward(tr, x, y, B, &L);
        optim_step(o, &m->pt, 2e-4);
        if (!e) e = nn_sync();   // the step already waited for its loss values (16 bytes)
    }
    if (e) { fprintf(stderr, "bench_dit_train: GPU step: %s\n", vel_errmsg(e)); return 1; }
    const double ms = 1e3 * (vel_now() - t0) / steps;
    // bench_dit.py's flops_per_step: 6 * matmul params * tokens + attention
    const double T = 256, D = c.hidden, hid = ldit_mlp_hidden(&c), C = 32, depth = c.depth;
    const double per_tok = depth * (3 * D * D + D * D + 3 * D * hid) + C * D + D * C;
    const double flops = 6.0 * B * T * per_tok + 3.0 * B * depth * 4 * T * T * D;
    printf("{\"name\": \"dit_b1_step_%s\", \"ms\": %.4f, \"flops\": %.6g, \"tflops\": %.2f, "
           "\"items_per_s\": %.1f, \"note\": \"batch %d, vel %s\"}\n", bf16 ? "bf16" : "fp32",
           ms, flops, flops / (ms * 1e-3) / 1e12, B / (ms * 1e-3), B,
           bf16 ? "bf16 GEMMs (autocast), fp32 elsewhere" : "fp32, TF32 off");
    free(x); free(y);
    optim_destroy(&o);
    dit_trainer_destroy(&tr);
    ldit_destroy(&m);
    device_release();
    return 0;
}

// PyTorch's rates at the same config, or 0 when no torch python is set.
static rate2 torch_rate(const char *preset, int B, int threads, int steps) {
    rate2 r = {0, 0};
    const char *py = getenv("VEL_TORCH_PYTHON");
    if (!py || !*py) return r;
    ldit_config c = {0};
    CHECK(dit_preset(preset, &c) == 0);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "%s bench/bench_dit_train_torch.py --depth %d --hidden %d --heads %d --patch %d --channels 4 "
             "--size 8 --classes 10 --batch %d --threads %d --steps %d",
             py, c.depth, c.hidden, c.heads, c.patch, B, threads, steps);
    FILE *f = popen(cmd, "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        sscanf(line, "torch_img_per_s %lf", &r.wall);
        sscanf(line, "torch_img_per_cpu_s %lf", &r.cpu);
    }
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

// Steps timed for a preset (after two warm-up steps): enough to last about
// a second at 1 thread on this machine's CPU.
static int preset_steps(const char *preset) { return strcmp(preset, "tiny") ? 4 : 30; }

static const char *const DTYPES[] = {"f32", "bf16", NULL};

int main(int argc, char **argv) {
    const char *preset = NULL, *device = "cpu";
    int batch = 0, threads = 0, json = 0, no_loader = 0, dtype = 0, help = 0, operands = 0;
    const flag_spec F[] = {
        FLAG_STR_("preset", &preset), FLAG_INT_("batch", &batch, 1, 4096), FLAG_INT_("threads", &threads, 1, 1024),
        FLAG_BOOL_("json", &json), FLAG_BOOL_("no-loader", &no_loader), FLAG_STR_("device", &device),
        FLAG_CHOICE_("dtype", &dtype, DTYPES)};
    if (flag_parse("bench_dit_train", argc, argv, F, FLAG_COUNT(F), &help, &operands)) return 2;
    if (help) {
        printf("usage: bench_dit_train [--preset NAME] [--batch N] [--threads N] [--json] [--no-loader]\n"
               "                       [--device cpu|cuda] [--dtype f32]\n"
               "LightningDiT training-step speed on the CPU (images/s; against PyTorch when\n"
               "VEL_TORCH_PYTHON is set) and the loader's rate. See the file's header.\n");
        return 0;
    }
    if (operands < argc) { fprintf(stderr, "bench_dit_train: unexpected argument '%s'\n", argv[operands]); return 2; }
    device_kind kind;
    int index;
    if (flag_device("bench_dit_train", device, &kind, &index)) return 2;
    if (kind == DEVICE_CUDA) return gpu_step(index, batch ? batch : 64, dtype == 1);
    if (dtype != 0) {
        fprintf(stderr, "bench_dit_train: --dtype bf16: the CPU path is fp32 only (bf16 needs --device cuda)\n");
        return 2;
    }
    ldit_config probe = {0};
    if (preset && dit_preset(preset, &probe)) {
        fprintf(stderr, "bench_dit_train: unknown --preset '%s' (tiny, S, B, B/1, B/2, L/2, XL/1, XL/2)\n", preset);
        return 2;
    }
    const char *presets[2] = {"tiny", "S"};
    int np = 2;
    if (preset) presets[0] = preset, np = 1;
    int th0 = threads ? threads : 1, th1 = threads ? threads : 2;
    if (!json)
        printf("%-6s %5s %7s %12s %12s %7s %14s %14s %9s\n", "preset", "batch", "threads", "vel img/s",
               "torch img/s", "ratio", "vel img/cpu-s", "torch img/cpu-s", "cpu ratio");
    double consume = 0;   // the rate the loader is compared with: the first preset at the most threads
    for (int i = 0; i < np; i++)
        for (int th = th0; th <= th1; th++) {
            int B = batch ? batch : strcmp(presets[i], "tiny") ? 16 : 64, steps = preset_steps(presets[i]);
            rate2 v = step_rate(presets[i], B, th, steps);
            rate2 t = torch_rate(presets[i], B, th, steps);
            if (i == 0) consume = v.wall;
            if (json) {
                printf("{\"name\": \"dit_train_step_%s_b%d_t%d\", \"ms\": %.4f, \"items_per_s\": %.1f, "
                       "\"items_per_cpu_s\": %.1f",
                       presets[i], B, th, 1e3 * B / v.wall, v.wall, v.cpu);
                if (t.wall > 0) printf(", \"torch_items_per_s\": %.1f", t.wall);
                if (t.cpu > 0) printf(", \"torch_items_per_cpu_s\": %.1f", t.cpu);
                printf("}\n");
            } else if (t.wall > 0 && t.cpu > 0) {
                printf("%-6s %5d %7d %12.1f %12.1f %7.2f %14.1f %14.1f %9.2f\n", presets[i], B, th, v.wall,
                       t.wall, v.wall / t.wall, v.cpu, t.cpu, v.cpu / t.cpu);
            } else {
                printf("%-6s %5d %7d %12.1f %12s %7s %14.1f %14s %9s\n", presets[i], B, th, v.wall, "n/a",
                       "n/a", v.cpu, "n/a", "n/a");
            }
            fflush(stdout);
        }
    if (no_loader) return 0;
    char tmpl[] = "/tmp/bench_dit_train_XXXXXX";
    char *dir = mkdtemp(tmpl);
    CHECK(dir != NULL);
    double lr = loader_rate(dir);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "bench: could not remove %s\n", dir);
    if (json)
        printf("{\"name\": \"dit_loader\", \"items_per_s\": %.0f, \"step_items_per_s\": %.1f}\n", lr, consume);
    else
        printf("loader: %.0f latents/s (batch 64, flips, 8192-record cache); %s step at %d thread%s consumes "
               "%.1f/s: ratio %.1fx (target >= 5x)\n", lr, presets[0], th1, th1 > 1 ? "s" : "", consume,
               lr / consume);
    return 0;
}
