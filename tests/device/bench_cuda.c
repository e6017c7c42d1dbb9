// bench_cuda.c: timings of our CUDA ops for tests/device/run.sh, printed as
// JSON lines with the same names as bench/torch/*.py so the run can pair
// them into a ratio table: linear forward and forward+backward (fp32 with
// TF32 off, bf16 with fp32 accumulation), conv 3x3 fp32 (cuDNN), attention
// fp32 (the exact untiled kernel: a baseline for the flash kernel to come) and the toy MLP training step
// (8 x Linear(512)+ReLU, batch 4096, MSE, Adam; fp32) built from nn/cuda ops.
// Host wall clock around `iters` calls bracketed by vcuda_sync, median of 3.
// Not a test: it checks nothing; the parity tests do. Without a GPU (or a
// CUDA build) it prints one "skipped" line and exits 0.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "nn/device.h"
#include "nn/params.h"

#ifdef VEL_HAVE_CUDA
#include "nn/cuda/ops.h"
#include "nn/cuda/vcuda.h"

#define TRY(call)                                                                       \
    do {                                                                                \
        int r_ = (call);                                                                \
        if (r_) {                                                                       \
            fprintf(stderr, "bench_cuda: %s: %s: %s\n", #call, vel_strerror(r_),      \
                    vcuda_last_error());                                                \
            exit(1);                                                                    \
        }                                                                               \
    } while (0)

typedef int (*bench_fn)(void *arg);

static double time_ms(vcuda_ctx *ctx, bench_fn fn, void *arg, int warmup, int iters) {
    for (int i = 0; i < warmup; i++) TRY(fn(arg));
    TRY(vcuda_sync(ctx));
    double best[3];
    for (int r = 0; r < 3; r++) {
        double t0 = vel_now();
        for (int i = 0; i < iters; i++) TRY(fn(arg));
        TRY(vcuda_sync(ctx));
        best[r] = (vel_now() - t0) * 1e3 / iters;
    }
    // median of three
    double a = best[0], b = best[1], c = best[2];
    return a > b ? (b > c ? b : (a > c ? c : a)) : (a > c ? a : (b > c ? c : b));
}

static void emit(const char *name, double ms, double flops, double items) {
    printf("{\"name\": \"%s\", \"ms\": %.4f", name, ms);
    if (flops > 0) printf(", \"flops\": %.6g, \"tflops\": %.2f", flops, flops / (ms * 1e-3) / 1e12);
    if (items > 0) printf(", \"items_per_s\": %.1f", items / (ms * 1e-3));
    printf("}\n");
    fflush(stdout);
}

// Non-zero contents in [-0.5, 0.5): GEMM and conv kernels can run faster on
// zeros (PyTorch's own H200 reading: 894 vs 788 TFLOP/s), and the PyTorch
// side times random data.
static void fill_dev(vcuda_ctx *ctx, void *dst, size_t n, int bf16) {
    float *h = xmalloc(n * 4);
    for (size_t k = 0; k < n; k++) h[k] = (float)((k * 2654435761u) % 1000) * 1e-3f - 0.5f;
    if (bf16) {
        float *d;
        TRY(vcuda_malloc((void **)&d, n * 4));
        TRY(vcuda_h2d_sync(ctx, d, h, n * 4));
        TRY(vcuda_f32_to_bf16(ctx, dst, d, (int64_t)n));
        TRY(vcuda_sync(ctx));
        vcuda_free((void **)&d);
    } else {
        TRY(vcuda_h2d_sync(ctx, dst, h, n * 4));
    }
    free(h);
}

typedef struct {
    vcuda_ctx *ctx;
    int N, C, OC, bf16;
    void *x, *w, *y, *dy, *dx;
    float *b, *dw, *db;
} lin;

static int lin_fwd(void *p) {
    lin *l = p;
    return l->bf16 ? linear_forward_cuda_bf16(l->ctx, l->y, l->x, l->w, l->b, l->N, l->C, l->OC)
                   : linear_forward_cuda(l->ctx, l->y, l->x, l->w, l->b, l->N, l->C, l->OC);
}

static int lin_fwdbwd(void *p) {
    lin *l = p;
    int r = lin_fwd(p);
    if (r) return r;
    return l->bf16 ? linear_backward_cuda_bf16(l->ctx, l->dx, l->dw, l->db, l->dy, l->x, l->w, l->N, l->C, l->OC)
                   : linear_backward_cuda(l->ctx, l->dx, l->dw, l->db, l->dy, l->x, l->w, l->N, l->C, l->OC);
}

static void bench_linear(vcuda_ctx *ctx, const char *name, int N, int C, int OC, int bf16) {
    size_t es = bf16 ? 2 : 4;
    lin l = {.ctx = ctx, .N = N, .C = C, .OC = OC, .bf16 = bf16};
    void **bufs[] = {&l.x, &l.w, &l.y, &l.dy, &l.dx};
    size_t sizes[] = {(size_t)N * C, (size_t)OC * C, (size_t)N * OC, (size_t)N * OC, (size_t)N * C};
    for (int i = 0; i < 5; i++) {
        TRY(vcuda_malloc(bufs[i], sizes[i] * es));
        fill_dev(ctx, *bufs[i], sizes[i], bf16);
    }
    TRY(vcuda_malloc((void **)&l.b, (size_t)OC * 4));
    TRY(vcuda_malloc((void **)&l.dw, (size_t)OC * C * 4));
    TRY(vcuda_malloc((void **)&l.db, (size_t)OC * 4));
    TRY(vcuda_memset0(ctx, l.b, (size_t)OC * 4));
    TRY(vcuda_memset0(ctx, l.dw, (size_t)OC * C * 4));
    TRY(vcuda_memset0(ctx, l.db, (size_t)OC * 4));
    char nm[128];
    double f = 2.0 * N * C * OC;
    snprintf(nm, sizeof nm, "%s.fwd", name);
    emit(nm, time_ms(ctx, lin_fwd, &l, 5, 20), f, 0);
    snprintf(nm, sizeof nm, "%s.fwdbwd", name);
    emit(nm, time_ms(ctx, lin_fwdbwd, &l, 5, 20), 3 * f, 0);
    for (int i = 0; i < 5; i++) vcuda_free(bufs[i]);
    vcuda_free((void **)&l.b);
    vcuda_free((void **)&l.dw);
    vcuda_free((void **)&l.db);
}

// ---- conv 3x3, fp32 (cuDNN, TF32 off) -----------------------------------------

typedef struct {
    vcuda_ctx *ctx;
    conv2d_cfg c;
    float *x, *w, *b, *y, *dy, *dx, *dw, *db;
} cnv;

static int conv_fwd(void *p) {
    cnv *k = p;
    return conv2d_forward_cuda(k->ctx, k->y, k->x, k->w, k->b, NULL, &k->c);
}

static int conv_fwdbwd(void *p) {
    cnv *k = p;
    int r = conv_fwd(p);
    return r ? r : conv2d_backward_cuda(k->ctx, k->dx, k->dw, k->db, k->dy, k->x, k->w, NULL, &k->c);
}

static void bench_conv(vcuda_ctx *ctx, const char *name, int B, int C, int H, int W, int OC) {
    cnv k = {.ctx = ctx, .c = conv2d_make(B, C, H, W, OC, 3, 1, 1)};
    size_t nx = (size_t)B * C * H * W, nw = (size_t)OC * C * 9, ny = (size_t)B * OC * H * W;
    float **bufs[] = {&k.x, &k.w, &k.b, &k.y, &k.dy, &k.dx, &k.dw, &k.db};
    size_t sizes[] = {nx, nw, (size_t)OC, ny, ny, nx, nw, (size_t)OC};
    for (int i = 0; i < 8; i++) {
        TRY(vcuda_malloc((void **)bufs[i], sizes[i] * 4));
        fill_dev(ctx, *bufs[i], sizes[i], 0);
    }
    double f = 2.0 * B * OC * H * W * C * 9;
    char nm[128];
    snprintf(nm, sizeof nm, "%s.fwd", name);
    emit(nm, time_ms(ctx, conv_fwd, &k, 3, 10), f, 0);
    snprintf(nm, sizeof nm, "%s.fwdbwd", name);
    emit(nm, time_ms(ctx, conv_fwdbwd, &k, 3, 10), 3 * f, 0);
    for (int i = 0; i < 8; i++) vcuda_free((void **)bufs[i]);
}

// ---- attention: the tiled kernels (fp32, bf16 autocast) and the exact fallback --------
// Names: attn_f32_* and attn_bf16_* pair with bench/torch/bench_ops.py's SDPA
// rows (fp32 / bf16); attn_exact_f32_* is the untiled fallback, ours only.

typedef struct {
    vcuda_ctx *ctx;
    int B, T, NH, HD, exact;
    float *qkv, *out, *lse, *dout, *dqkv, *scratch;
} att;

static int att_fwd(void *p) {
    att *a = p;
    return a->exact ? attention_forward_exact_cuda(a->ctx, a->out, a->lse, a->qkv, a->B, a->T, a->NH, a->HD)
                    : attention_forward_cuda(a->ctx, a->out, a->lse, a->qkv, a->B, a->T, a->NH, a->HD);
}

static int att_fwdbwd(void *p) {
    att *a = p;
    int r = att_fwd(p);
    if (r) return r;
    return a->exact ? attention_backward_exact_cuda(a->ctx, a->dqkv, a->dout, a->qkv, a->out, a->lse,
                                                    a->scratch, a->B, a->T, a->NH, a->HD)
                    : attention_backward_cuda(a->ctx, a->dqkv, a->dout, a->qkv, a->out, a->lse,
                                              a->scratch, a->B, a->T, a->NH, a->HD);
}

// mode: 0 tiled fp32, 1 tiled under bf16 autocast, 2 exact fp32.
static void bench_attention(vcuda_ctx *ctx, const char *name, int B, int NH, int T, int HD, int mode) {
    att a = {.ctx = ctx, .B = B, .T = T, .NH = NH, .HD = HD, .exact = mode == 2};
    vcuda_set_autocast_bf16(ctx, mode == 1);
    size_t nqkv = (size_t)B * T * 3 * NH * HD, no = (size_t)B * T * NH * HD, nl = (size_t)B * NH * T;
    float **bufs[] = {&a.qkv, &a.out, &a.lse, &a.dout, &a.dqkv, &a.scratch};
    size_t sizes[] = {nqkv, no, nl, no, nqkv, attention_scratch_floats_cuda(ctx, B, T, NH, HD)};
    for (int i = 0; i < 6; i++) {
        TRY(vcuda_malloc((void **)bufs[i], sizes[i] * 4));
        fill_dev(ctx, *bufs[i], sizes[i], 0);
    }
    double f = 4.0 * B * NH * (double)T * T * HD;
    char nm[128];
    snprintf(nm, sizeof nm, "%s.fwd", name);
    emit(nm, time_ms(ctx, att_fwd, &a, 2, 5), f, 0);
    snprintf(nm, sizeof nm, "%s.fwdbwd", name);
    emit(nm, time_ms(ctx, att_fwdbwd, &a, 2, 5), 3.5 * f, 0);
    for (int i = 0; i < 6; i++) vcuda_free((void **)bufs[i]);
    vcuda_set_autocast_bf16(ctx, 0);
}

// ---- toy MLP training step ---------------------------------------------------

enum { MLP_B = 4096, MLP_W = 512, MLP_IN = 3, MLP_OUT = 2, MLP_L = 9 };

typedef struct {
    vcuda_ctx *ctx;
    param_table pt;
    float *p, *g, *s;                 // device: values, grads, Adam state (2 * total)
    float *act[MLP_L + 1];            // act[0] input, act[i] output of layer i (post-ReLU)
    float *pre[MLP_L];                // pre-activation of layer i
    float *dact[MLP_L + 1], *target;
    int64_t step;
} mlp;

static int dim_in(int i) { return i == 0 ? MLP_IN : MLP_W; }
static int dim_out(int i) { return i == MLP_L - 1 ? MLP_OUT : MLP_W; }

static int mlp_step(void *arg) {
    mlp *m = arg;
    vcuda_ctx *ctx = m->ctx;
    int r;
    for (int i = 0; i < MLP_L; i++) {
        const param_info *w = &m->pt.info[2 * i], *b = &m->pt.info[2 * i + 1];
        float *out = i == MLP_L - 1 ? m->act[i + 1] : m->pre[i];
        if ((r = linear_forward_cuda(ctx, out, m->act[i], m->p + w->offset, m->p + b->offset, MLP_B,
                                     dim_in(i), dim_out(i))))
            return r;
        if (i < MLP_L - 1 && (r = relu_forward_cuda(ctx, m->act[i + 1], m->pre[i], (int64_t)MLP_B * MLP_W)))
            return r;
    }
    if ((r = vcuda_memset0(ctx, m->g, (size_t)m->pt.total * 4))) return r;
    for (int i = 1; i <= MLP_L; i++)
        if ((r = vcuda_memset0(ctx, m->dact[i], (size_t)MLP_B * dim_out(i - 1) * 4))) return r;
    if ((r = mse_loss_backward_cuda(ctx, m->dact[MLP_L], NULL, m->act[MLP_L], m->target,
                                    (int64_t)MLP_B * MLP_OUT, 1.0f)))
        return r;
    for (int i = MLP_L - 1; i >= 0; i--) {
        const param_info *w = &m->pt.info[2 * i], *b = &m->pt.info[2 * i + 1];
        float *dout = m->dact[i + 1];
        if (i < MLP_L - 1) {   // through the ReLU: dpre = relu'(pre) * dact, into dact[i+1]'s twin
            float *dpre = m->dact[i + 1] + (size_t)MLP_B * MLP_W;   // second half of the buffer
            if ((r = vcuda_memset0(ctx, dpre, (size_t)MLP_B * MLP_W * 4))) return r;
            if ((r = relu_backward_cuda(ctx, dpre, dout, m->pre[i], (int64_t)MLP_B * MLP_W))) return r;
            dout = dpre;
        }
        if ((r = linear_backward_cuda(ctx, i ? m->dact[i] : NULL, m->g + w->offset, m->g + b->offset,
                                      dout, m->act[i], m->p + w->offset, MLP_B, dim_in(i), dim_out(i))))
            return r;
    }
    m->step++;
    for (int i = 0; i < m->pt.count; i++) {
        const param_info *q = &m->pt.info[i];
        if ((r = adam_update_cuda(ctx, m->p + q->offset, m->g + q->offset, m->s + q->offset,
                                  m->s + m->pt.total + q->offset, q->numel, 1e-3, 0.0, 0, 0.9,
                                  0.999, 1e-8, m->step)))
            return r;
    }
    return 0;
}

static void bench_mlp(vcuda_ctx *ctx) {
    mlp m = {.ctx = ctx};
    param_table_init(&m.pt);
    for (int i = 0; i < MLP_L; i++) {
        char nm[64];
        snprintf(nm, sizeof nm, "l%d.weight", i);
        param_add(&m.pt, nm, 2, (int64_t[]){dim_out(i), dim_in(i)});
        snprintf(nm, sizeof nm, "l%d.bias", i);
        param_add(&m.pt, nm, 1, (int64_t[]){dim_out(i)});
    }
    CHECK(param_table_commit(&m.pt) == 0);
    for (int64_t k = 0; k < m.pt.total; k++) m.pt.values[k] = (float)((k * 2654435761u) % 1000) * 4e-5f - 0.02f;
    size_t tb = (size_t)m.pt.total * 4;
    TRY(vcuda_malloc((void **)&m.p, tb));
    TRY(vcuda_malloc((void **)&m.g, tb));
    TRY(vcuda_malloc((void **)&m.s, 2 * tb));
    TRY(vcuda_h2d_sync(ctx, m.p, m.pt.values, tb));
    TRY(vcuda_memset0(ctx, m.s, 2 * tb));
    for (int i = 0; i <= MLP_L; i++) {
        // dact[i] holds the gradient of act[i] plus, for hidden layers, room
        // for the pre-activation gradient (second half).
        size_t n = (size_t)MLP_B * (i == 0 ? MLP_IN : i == MLP_L ? MLP_OUT : MLP_W);
        TRY(vcuda_malloc((void **)&m.act[i], n * 4));
        TRY(vcuda_malloc((void **)&m.dact[i], 2 * (size_t)MLP_B * MLP_W * 4));
        TRY(vcuda_memset0(ctx, m.act[i], n * 4));
        if (i < MLP_L) TRY(vcuda_malloc((void **)&m.pre[i], (size_t)MLP_B * MLP_W * 4));
    }
    TRY(vcuda_malloc((void **)&m.target, (size_t)MLP_B * MLP_OUT * 4));
    TRY(vcuda_memset0(ctx, m.target, (size_t)MLP_B * MLP_OUT * 4));
    double flops = 6.0 * MLP_B * (MLP_IN * MLP_W + 7.0 * MLP_W * MLP_W + MLP_W * MLP_OUT);
    emit("toy_mlp_step_fp32", time_ms(ctx, mlp_step, &m, 10, 50), flops, MLP_B);
    for (int i = 0; i <= MLP_L; i++) {
        vcuda_free((void **)&m.act[i]);
        vcuda_free((void **)&m.dact[i]);
        if (i < MLP_L) vcuda_free((void **)&m.pre[i]);
    }
    vcuda_free((void **)&m.target);
    vcuda_free((void **)&m.p);
    vcuda_free((void **)&m.g);
    vcuda_free((void **)&m.s);
    param_table_free(&m.pt);
}
#endif

int main(int argc, char **argv) {
    int only_attn = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: bench_cuda [--only-attention]\n"
                   "Times our CUDA linear, conv, attention and toy-MLP step; JSON lines on stdout.\n"
                   "--only-attention: only the attention rows (tiled fp32, tiled bf16 autocast,\n"
                   "exact fallback).\n"
                   "Exits 0 with a \"skipped\" line when no GPU is found.\n");
            return 0;
        }
        if (!strcmp(argv[i], "--only-attention")) {
            only_attn = 1;
            continue;
        }
        fprintf(stderr, "bench_cuda: unknown argument %s (see --help)\n", argv[i]);
        return 2;
    }
#ifdef VEL_HAVE_CUDA
    if (device_cuda_count() == 0) {
        printf("{\"name\": \"bench_cuda\", \"skipped\": \"no GPU found: %s\"}\n", vcuda_last_error());
        return 0;
    }
    vcuda_ctx *ctx = NULL;
    TRY(vcuda_ctx_create(&ctx, -1));
    char desc[256];
    vcuda_describe(ctx, desc, sizeof desc);
    printf("{\"name\": \"env\", \"ours\": \"%s\"}\n", desc);
    if (!only_attn) {
        bench_linear(ctx, "linear_f32_16384x768x768", 16384, 768, 768, 0);
        bench_linear(ctx, "linear_bf16_16384x768x3072", 16384, 768, 3072, 1);
        bench_linear(ctx, "linear_bf16_16384x768x768", 16384, 768, 768, 1);
        bench_conv(ctx, "conv3x3_f32_b16_c128_64x64", 16, 128, 64, 64, 128);
    }
    bench_attention(ctx, "attn_f32_b64_h12_t256_d64", 64, 12, 256, 64, 0);
    bench_attention(ctx, "attn_bf16_b64_h12_t256_d64", 64, 12, 256, 64, 1);
    bench_attention(ctx, "attn_exact_f32_b64_h12_t256_d64", 64, 12, 256, 64, 2);
    if (!only_attn) bench_mlp(ctx);
    vcuda_ctx_destroy(&ctx);
#else
    (void)only_attn;
    printf("{\"name\": \"bench_cuda\", \"skipped\": \"built without nvcc\"}\n");
#endif
    return 0;
}
