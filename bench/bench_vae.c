// bench_vae.c: one VAE tokenizer training step (f4c4, the Fashion-MNIST
// config of issue 5) timed at batch 8 and 16 with the KL and the VE loss:
// zero grads + vae_train_step (encode, reparameterise, decode, L1 + reg,
// backward) + Adam step, as `train --model vae` runs it. Prints
//   - CPU seconds (process CPU time, all threads) and wall seconds per 1000
//     training images;
//   - the step's FLOPs, counted analytically from the model's op list
//     (models/vae_blocks.h): every conv 2*B*OC*C*k*k*OH*OW forward and twice
//     that backward (weight gradient + input gradient; the tape computes the
//     image gradient too), every attention core 2 matmuls of 2*B*C*T^2
//     forward and 4 backward; GroupNorm, SiLU, adds, losses and Adam are
//     not counted (memory-bound, a few % of the time);
//   - the share of sgemm-equivalent throughput: achieved FLOP/s divided by
//     the FLOP/s of bare cblas_sgemm calls of exactly the step's GEMM shapes
//     (per conv: OC x B*OH*OW x C*k*k forward, OC x C*k*k x B*OH*OW weight
//     gradient, C*k*k x B*OH*OW x OC input gradient; per attention: the
//     six T x T x C products per image), measured in the same run,
//     alternating with the step so a busy machine slows both.
// Also the inference throughput: images/s of vae_encode + vae_decode (mu).
// Bounded: each row runs about ROW_SECONDS (at least 2 repetitions).
// Not a correctness test (tests/models/test_vae.c is).
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "models/vae.h"
#include "core/base.h"
#include "nn/optim.h"
#include "nn/params.h"
#include "core/philox.h"

#define ROW_SECONDS 2.0
#define MAX_REPS 30

static float *rnd(size_t n, unsigned seed) {
    float *x = xmalloc(sizeof(float) * (n ? n : 1));
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        x[i] = 2.0f * (float)((s >> 40) * (1.0 / 16777216.0)) - 1.0f;
    }
    return x;
}

// One GEMM of the step: C (M, N) = A (M, K) B (K, N), repeated `count` times.
typedef struct { int M, N, K, count; } gemm_shape;

typedef struct {
    gemm_shape *g;
    int ng, capg;
    double fwd_conv, fwd_attn;   // forward FLOPs of one step
    size_t maxa, maxb, maxc;
} step_gemms;

static void add_gemm(step_gemms *s, int M, int N, int K, int count) {
    if (s->ng == s->capg) {
        s->capg = s->capg ? 2 * s->capg : 64;
        s->g = realloc(s->g, sizeof *s->g * (size_t)s->capg);
        CHECK(s->g);
    }
    s->g[s->ng++] = (gemm_shape){M, N, K, count};
    if ((size_t)M * K > s->maxa) s->maxa = (size_t)M * K;
    if ((size_t)K * N > s->maxb) s->maxb = (size_t)K * N;
    if ((size_t)M * N > s->maxc) s->maxc = (size_t)M * N;
}

static void tape_gemms(step_gemms *s, const vtape *t, int B) {
    for (int i = 0; i < t->nops; i++) {
        const vtape_op *o = &t->ops[i];
        const vtape_buf *ob = &t->bufs[o->out];
        if (o->kind == VT_CONV) {
            int M = o->OC, N = B * ob->H * ob->W, K = o->C * o->k * o->k;
            s->fwd_conv += 2.0 * M * (double)N * K;
            add_gemm(s, M, N, K, 1);   // forward
            add_gemm(s, M, K, N, 1);   // weight gradient
            add_gemm(s, K, N, M, 1);   // input gradient (columns)
        } else if (o->kind == VT_ATTN) {
            int T = o->H * o->W, C = o->C;
            s->fwd_attn += 2.0 * 2.0 * B * (double)C * T * T;
            add_gemm(s, T, T, C, B);   // S = Q^T K
            add_gemm(s, C, T, T, B);   // O = V P^T
            add_gemm(s, C, T, T, B);   // dV = dO P
            add_gemm(s, T, T, C, B);   // dP = dO^T V
            add_gemm(s, C, T, T, B);   // dQ = K dS^T
            add_gemm(s, C, T, T, B);   // dK = Q dS
        }
    }
}

typedef struct {
    vae *m;
    optim *opt;
    vae_loss_cfg lc;
    float *x, *eps;
    int B;
    step_gemms sg;
    float *ga, *gb, *gc;
} step_ctx;

static void run_step(step_ctx *c) {
    param_zero_grads(&c->m->pt);
    vae_loss_parts lp;
    CHECK(vae_train_step(c->m, c->x, c->eps, c->B, &c->lc, &lp, NULL) == 0);
    optim_step(c->opt, &c->m->pt, 2e-4);
}

static void run_gemms(step_ctx *c) {
    for (int i = 0; i < c->sg.ng; i++) {
        const gemm_shape *g = &c->sg.g[i];
        for (int r = 0; r < g->count; r++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->M, g->N, g->K, 1.0f, c->ga, g->K,
                        c->gb, g->N, 0.0f, c->gc, g->N);
    }
}

// Best FLOP/s of a 512^3 sgemm: a machine reference beside the same-shape
// one (train --model vae used to log a share of it; this bench is now the
// one place that measures it).
static double sgemm512(void) {
    const int n = 512;
    float *a = rnd((size_t)n * n, 5), *b = rnd((size_t)n * n, 6), *c = rnd((size_t)n * n, 7);
    double best = 1e30, start = vel_now();
    for (int r = 0; r < MAX_REPS && (r < 3 || vel_now() - start < 1.0); r++) {
        double t0 = vel_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        double t = vel_now() - t0;
        if (t < best) best = t;
    }
    free(a); free(b); free(c);
    return 2.0 * n * n * (double)n / best;
}

static double g_best_step_rate;

static void bench_step(const char *config, int B, vae_reg reg) {
    vae_config vc;
    CHECK(vae_config_preset(config, 1, &vc) == 0);
    step_ctx c = {0};
    c.B = B;
    CHECK(vae_create(&c.m, &vc, B, 1) == 0);
    vae_init_params(c.m, 1);
    optim_config oc = optim_defaults(OPTIM_ADAM);
    oc.beta1 = 0.5f; oc.beta2 = 0.9f;
    CHECK(optim_create(&c.opt, &c.m->pt, &oc) == 0);
    c.lc = (vae_loss_cfg){.reg = reg, .beta = 1e-6f, .ve = VE_INV_VAR, .lambda_ve = 1e-3f, .delta = 1e-6f,
                          .mag = reg == VAE_REG_VE ? VAE_MAG_GLOBAL : VAE_MAG_NONE,
                          .lambda_reg = 1.0f, .tau = 3.0f};
    int zs = c.m->zside, per = vc.z_channels * zs * zs;
    c.x = rnd((size_t)B * vc.in_ch * vc.resolution * vc.resolution, 1);
    c.eps = xmalloc(sizeof(float) * (size_t)B * per);
    philox_normal(c.eps, (int64_t)B * per, 0, 0, 0);
    tape_gemms(&c.sg, &c.m->enc, B);
    tape_gemms(&c.sg, &c.m->dec, B);
    c.ga = rnd(c.sg.maxa, 2); c.gb = rnd(c.sg.maxb, 3); c.gc = rnd(c.sg.maxc, 4);
    double fwd = c.sg.fwd_conv + c.sg.fwd_attn, flops = 3.0 * fwd;
    CHECK(fabs(fwd - vae_forward_flops(c.m, B)) <= 1e-9 * fwd);   // same count as train's
    run_step(&c); run_gemms(&c);   // warm up
    double t_step = 1e30, t_gemm = 1e30, cpu_step = 1e30, start = vel_now();
    for (int r = 0; r < MAX_REPS && (r < 2 || vel_now() - start < ROW_SECONDS); r++) {
        double w0 = vel_now(), c0 = vel_cpu_now();
        run_step(&c);
        double w1 = vel_now(), c1 = vel_cpu_now();
        run_gemms(&c);
        double w2 = vel_now();
        if (w1 - w0 < t_step) { t_step = w1 - w0; cpu_step = c1 - c0; }
        if (w2 - w1 < t_gemm) t_gemm = w2 - w1;
    }
    if (flops / t_step > g_best_step_rate) g_best_step_rate = flops / t_step;
    printf("%-6s %-3s %5d %11.2f %11.2f %9.3f %6.1f%% %9.2f %9.2f %7.3f\n", config,
           reg == VAE_REG_KL ? "kl" : "ve", B, 1000.0 * cpu_step / B, 1000.0 * t_step / B, flops * 1e-9,
           100.0 * c.sg.fwd_attn / fwd, flops / t_step * 1e-9, flops / t_gemm * 1e-9, t_gemm / t_step);
    free(c.sg.g); free(c.ga); free(c.gb); free(c.gc); free(c.x); free(c.eps);
    optim_destroy(&c.opt);
    vae_destroy(&c.m);
}

static void bench_eval(const char *config, int B) {
    vae_config vc;
    CHECK(vae_config_preset(config, 1, &vc) == 0);
    vae *m = NULL;
    CHECK(vae_create(&m, &vc, B, 0) == 0);
    vae_init_params(m, 1);
    float *x = rnd((size_t)B * vc.in_ch * vc.resolution * vc.resolution, 1);
    vae_encode(m, x, B);
    vae_decode(m, m->mu, B);
    double best = 1e30, start = vel_now();
    for (int r = 0; r < MAX_REPS && (r < 2 || vel_now() - start < ROW_SECONDS); r++) {
        double t0 = vel_now();
        vae_encode(m, x, B);
        vae_decode(m, m->mu, B);
        double t = vel_now() - t0;
        if (t < best) best = t;
    }
    double fl = vae_forward_flops(m, B);
    printf("%-6s %5d %9.1f %9.3f %9.2f\n", config, B, B / best, fl * 1e-9, fl / best * 1e-9);
    free(x);
    vae_destroy(&m);
}

int main(int argc, char **argv) {
    if (argc > 1) {
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
            printf("usage: %s\n"
                   "Times one VAE tokenizer training step (f4c4, batch 8 and 16, KL and VE:\n"
                   "zero grads, forward, backward, Adam) and prints CPU and wall seconds per\n"
                   "1000 training images, the step's analytic conv+attention FLOPs, and the\n"
                   "share of sgemm-equivalent throughput (achieved FLOP/s over bare\n"
                   "cblas_sgemm of the same GEMM shapes, measured in the same run); then\n"
                   "encode+decode images/s. Threads: OMP_NUM_THREADS, OPENBLAS_NUM_THREADS.\n",
                   argv[0]);
            return 0;
        }
        fprintf(stderr, "%s: unknown argument '%s' (try --help)\n", argv[0], argv[1]);
        return 2;
    }
    double t0 = vel_now();
    printf("VAE training step (zero grads + fwd/bwd + Adam), best of repetitions\n");
    printf("config reg batch  CPU s/1k img wall s/1k img   GFLOP attn%%  step GF/s sgemm GF/s   share\n");
    static const int batches[2] = {8, 16};
    for (int bi = 0; bi < 2; bi++) {
        bench_step("f4c4", batches[bi], VAE_REG_KL);
        bench_step("f4c4", batches[bi], VAE_REG_VE);
    }
    double ref = sgemm512();
    printf("sgemm 512^3 (train's reference): %.2f GF/s; best step above = %.1f%% of it\n",
           ref * 1e-9, 100.0 * g_best_step_rate / ref);
    printf("\nInference: vae_encode + vae_decode (mu), best of repetitions\n");
    printf("config batch     img/s     GFLOP     GF/s\n");
    bench_eval("f4c4", 16);
    bench_eval("f4c4", 64);
    printf("\nshare = sgemm time of the step's GEMM shapes / step time; %.1f s\n", vel_now() - t0);
    return 0;
}
