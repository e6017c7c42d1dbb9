// ours.c: the "ours" side of the PyTorch CPU comparison (bench/torch_cpu/run.py).
// A worker that sets up one benchmark row and runs it on request, so the
// runner can interleave it with the PyTorch worker (torch_worker.py) on the
// same shapes. Protocol on stdin/stdout, one line each:
//   setup ROW   -> "ok" (or "error ...")   builds the row's buffers/model
//   run K       -> "t SECONDS"             K iterations, wall seconds in all
//   rss         -> "rss KB"                peak resident set (ru_maxrss)
//   quit / EOF  -> exits
// Rows (names shared with torch_worker.py; ROWS in rows.py lists them):
//   sgemm              C = A B, 1024^3 (nn/matmul.h: the project's GEMM)
//   linear:N:C:OC      linear forward + backward (dinp, dweight, dbias)
//   conv:B:C:H:OC:S    conv3x3 forward + backward, stride S (S = 2: pad
//                      right/bottom by 1 as the VAE's Downsample)
//   attn:B:T:NH:HD     attention forward + backward
//   toy                toy flow step: MLP 3 -> 4 x 128 -> 2 (ReLU), batch
//                      1024, MSE flow-matching loss, Adam
//   vae                VAE f4c4 training step at batch 8 (KL loss, Adam)
//   dit                LightningDiT-S (D 384, depth 12, 6 heads, qk norm,
//                      SwiGLU) on 32 x 8 x 8 latents (64 tokens), batch 16,
//                      flow-matching MSE, AdamW
// Every step starts from zero gradients and runs forward, loss, backward and
// the optimizer, as the PyTorch step does. Inputs are fixed random draws.
// Threads: OMP_NUM_THREADS / OPENBLAS_NUM_THREADS from the environment.
// Not a correctness test; not run on its own (run.py drives it).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/base.h"
#include "models/lightningdit.h"
#include "models/toy_flow.h"
#include "models/vae.h"
#include "nn/attention.h"
#include "nn/conv.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "nn/matmul.h"
#include "nn/optim.h"
#include "nn/params.h"

// 64-byte aligned, as the project's own tensors (nn/arena.c, nn/params.c)
// and PyTorch's: a malloc'ed 4 MiB block starts 16 bytes into a page, which
// splits every 64-byte load and store of a row across two cache lines
// (1024^3 GEMM ~1% slower)
static float *falloc(size_t n) {
    float *x = aligned_alloc(64, (sizeof(float) * (n ? n : 1) + 63) / 64 * 64);
    CHECK(x != NULL);
    return x;
}

static float *rnd(size_t n, unsigned seed, float scale) {
    float *x = falloc(n);
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        x[i] = scale * (2.0f * (float)((s >> 40) * (1.0 / 16777216.0)) - 1.0f);
    }
    return x;
}

// One row: its buffers (freed by `clear`) and the step.
typedef struct row row;
struct row {
    void (*step)(row *r);
    int n[6];
    float *f[16];
    conv2d_cfg cfg;
    toy_flow *toy;
    vae *vae;
    ldit *dit;
    optim *opt;
    vae_loss_cfg vlc;
    int32_t *labels;
};

static void clear(row *r) {
    for (int i = 0; i < 16; i++) free(r->f[i]);
    if (r->toy) toy_flow_destroy(&r->toy);
    if (r->vae) vae_destroy(&r->vae);
    if (r->dit) ldit_destroy(&r->dit);
    if (r->opt) optim_destroy(&r->opt);
    free(r->labels);
    memset(r, 0, sizeof *r);
}

static void step_sgemm(row *r) {
    int n = r->n[0];
    matmul_batched(1, 0, 0, n, n, n, 1.0f, r->f[0], n, 0, r->f[1], n, 0, 0.0f, r->f[2], n, 0);
}

static void step_linear(row *r) {
    int N = r->n[0], C = r->n[1], OC = r->n[2];
    float **f = r->f;   // inp w b out dout dinp dw db
    linear_forward(f[3], f[0], f[1], f[2], N, C, OC);
    linear_backward(f[5], f[6], f[7], f[4], f[0], f[1], N, C, OC);
}

static void step_conv(row *r) {
    float **f = r->f;   // inp w b out dout dinp dw db scratch
    conv2d_forward(f[3], f[0], f[1], f[2], f[8], &r->cfg);
    conv2d_backward(f[5], f[6], f[7], f[4], f[0], f[1], f[8], &r->cfg);
}

static void step_attn(row *r) {
    int B = r->n[0], T = r->n[1], NH = r->n[2], HD = r->n[3];
    float **f = r->f;   // qkv out lse dout dqkv
    attention_forward(f[1], f[2], f[0], B, T, NH, HD);
    attention_backward(f[4], f[3], f[0], f[1], f[2], B, T, NH, HD);
}

static void step_toy(row *r) {
    int B = r->n[0];
    toy_flow_loss_backward(r->toy, r->f[0], r->f[1], r->f[2], B);   // zeroes grads
    optim_step(r->opt, &r->toy->pt, 1e-3);
}

static void step_vae(row *r) {
    param_zero_grads(&r->vae->pt);
    vae_loss_parts lp;
    CHECK(vae_train_step(r->vae, r->f[0], r->f[1], r->n[0], &r->vlc, &lp, NULL) == 0);
    optim_step(r->opt, &r->vae->pt, 1e-4);
}

static void step_dit(row *r) {
    int B = r->n[0];
    int64_t n = (int64_t)r->n[1];
    float **f = r->f;   // xt t target v dv
    // Gradients are zero here: cleared at setup, then by each update below
    // while the optimizer has them in cache (what stages/train/dit.c does;
    // PyTorch's side clears them with zero_grad, a separate pass).
    CHECK(ldit_forward(r->dit, f[3], f[0], f[1], r->labels, NULL, B) == 0);
    mse_loss_forward(f[3], f[2], n);
    memset(f[4], 0, sizeof(float) * (size_t)n);
    mse_loss_backward(f[4], NULL, f[3], f[2], n, 1.0f);
    ldit_backward(r->dit, NULL, f[4]);
    optim_step_ema_zero(r->opt, &r->dit->pt, 2e-4, NULL, 0.0, 1);
}

// Parses ROW and builds it; 0 or -1 (unknown/invalid row, message printed).
static int setup(row *r, const char *name) {
    int a[6] = {0};
    if (!strcmp(name, "sgemm")) {
        r->n[0] = 1024;
        for (int i = 0; i < 3; i++) r->f[i] = rnd((size_t)1024 * 1024, i + 1, 1.0f);
        r->step = step_sgemm;
    } else if (sscanf(name, "linear:%d:%d:%d", &a[0], &a[1], &a[2]) == 3 && a[0] > 0 &&
               a[1] > 0 && a[2] > 0) {
        size_t N = a[0], C = a[1], OC = a[2];
        memcpy(r->n, a, sizeof a);
        size_t sz[8] = {N * C, OC * C, OC, N * OC, N * OC, N * C, OC * C, OC};
        for (int i = 0; i < 8; i++) r->f[i] = rnd(sz[i], i + 1, 0.5f);
        r->step = step_linear;
    } else if (sscanf(name, "conv:%d:%d:%d:%d:%d", &a[0], &a[1], &a[2], &a[3], &a[4]) == 5 &&
               a[0] > 0 && a[1] > 0 && a[2] > 1 && a[3] > 0 && (a[4] == 1 || a[4] == 2)) {
        r->cfg = a[4] == 1 ? conv2d_make(a[0], a[1], a[2], a[2], a[3], 3, 1, 1)
                           : (conv2d_cfg){a[0], a[1], a[2], a[2], a[3], 3, 3, 2, 0, 1, 0, 1};
        const conv2d_cfg *c = &r->cfg;
        size_t ni = (size_t)c->B * c->C * c->H * c->W;
        size_t no = (size_t)c->B * c->OC * conv2d_out_h(c) * conv2d_out_w(c);
        size_t nw = (size_t)c->OC * c->C * 9;
        size_t sz[9] = {ni, nw, c->OC, no, no, ni, nw, c->OC, conv2d_scratch_floats(c)};
        for (int i = 0; i < 9; i++) r->f[i] = rnd(sz[i], i + 1, 0.5f);
        r->step = step_conv;
    } else if (sscanf(name, "attn:%d:%d:%d:%d", &a[0], &a[1], &a[2], &a[3]) == 4 && a[0] > 0 &&
               a[1] > 0 && a[2] > 0 && a[3] > 0 && a[3] <= ATTN_HD_MAX) {
        memcpy(r->n, a, sizeof a);
        size_t BT = (size_t)a[0] * a[1], D = (size_t)a[2] * a[3];
        size_t sz[5] = {BT * 3 * D, BT * D, (size_t)a[0] * a[2] * a[1], BT * D, BT * 3 * D};
        for (int i = 0; i < 5; i++) r->f[i] = rnd(sz[i], i + 1, 1.0f);
        r->step = step_attn;
    } else if (!strcmp(name, "toy")) {
        const int B = 1024;
        r->n[0] = B;
        CHECK(toy_flow_create(&r->toy, 4, 128, B, TOY_TIME_RAW, 0) == 0);
        toy_flow_init(r->toy, 1);
        r->f[0] = rnd(2 * B, 1, 2.0f);
        r->f[1] = rnd(2 * B, 2, 1.0f);
        r->f[2] = rnd(B, 3, 0.5f);
        for (int i = 0; i < B; i++) r->f[2][i] += 0.5f;   // t in [0, 1]
        optim_config oc = optim_defaults(OPTIM_ADAM);
        CHECK(optim_create(&r->opt, &r->toy->pt, &oc) == 0);
        r->step = step_toy;
    } else if (!strcmp(name, "vae")) {
        const int B = 8;
        r->n[0] = B;
        vae_config vc;
        CHECK(vae_config_preset("f4c4", 1, &vc) == 0);
        CHECK(vae_create(&r->vae, &vc, B, 1) == 0);
        vae_init_params(r->vae, 1);
        int zs = vae_latent_side(&vc);
        r->f[0] = rnd((size_t)B * vc.resolution * vc.resolution, 1, 1.0f);
        r->f[1] = rnd((size_t)B * vc.z_channels * zs * zs, 2, 1.0f);
        r->vlc = (vae_loss_cfg){.reg = VAE_REG_KL, .beta = 1e-6f};
        optim_config oc = optim_defaults(OPTIM_ADAM);
        oc.beta1 = 0.5;
        oc.beta2 = 0.9;
        CHECK(optim_create(&r->opt, &r->vae->pt, &oc) == 0);
        r->step = step_vae;
    } else if (!strcmp(name, "dit")) {
        const int B = 16;
        ldit_config c;
        CHECK(ldit_config_preset("S", &c) == 0);
        c.input_size = 8;
        c.qk_norm = 1;
        CHECK(ldit_create(&r->dit, &c, B) == 0);
        ldit_init_params(r->dit, 1);
        size_t n = (size_t)B * c.in_channels * c.input_size * c.input_size;
        r->n[0] = B;
        r->n[1] = (int)n;
        r->f[0] = rnd(n, 1, 1.0f);
        r->f[1] = rnd(B, 2, 0.5f);
        for (int i = 0; i < B; i++) r->f[1][i] += 0.5f;
        r->f[2] = rnd(n, 3, 1.0f);
        r->f[3] = falloc(n);
        r->f[4] = falloc(n);
        r->labels = xmalloc(sizeof(int32_t) * B);
        for (int i = 0; i < B; i++) r->labels[i] = (i * 37) % c.num_classes;
        optim_config oc = optim_defaults(OPTIM_ADAMW);
        oc.beta2 = 0.95;
        oc.weight_decay = 0.0;
        CHECK(optim_create(&r->opt, &r->dit->pt, &oc) == 0);
        param_zero_grads(&r->dit->pt);
        r->step = step_dit;
    } else {
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1) {
        int help = !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h");
        fprintf(help ? stdout : stderr,
                "usage: %s   (reads commands on stdin: setup ROW | run K | rss | quit)\n"
                "The C side of bench/torch_cpu/run.py; see the header of ours.c.\n", argv[0]);
        return help ? 0 : 2;
    }
    row r;
    memset(&r, 0, sizeof r);
    char line[256], arg[200];
    while (fgets(line, sizeof line, stdin)) {
        long k;
        if (sscanf(line, "setup %199s", arg) == 1) {
            clear(&r);
            if (setup(&r, arg)) printf("error unknown or invalid row '%s'\n", arg);
            else printf("ok\n");
        } else if (sscanf(line, "run %ld", &k) == 1) {
            if (!r.step || k < 1) {
                printf("error no row set up or bad count\n");
            } else {
                double t0 = vel_now();
                for (long i = 0; i < k; i++) r.step(&r);
                printf("t %.9f\n", vel_now() - t0);
            }
        } else if (!strncmp(line, "rss", 3)) {
            struct rusage ru;
            getrusage(RUSAGE_SELF, &ru);
            printf("rss %ld\n", ru.ru_maxrss);
        } else if (!strncmp(line, "quit", 4)) {
            break;
        } else {
            printf("error unknown command\n");
        }
        fflush(stdout);
    }
    clear(&r);
    return 0;
}
