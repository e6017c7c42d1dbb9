// adam.cu: Adam / AdamW on the GPU (API: ops.h), with the arithmetic of
// nn/optim.c's adam_update step for step: the same float roundings of the
// hyperparameters on the host, the same grouping of products, and explicit
// _rn intrinsics so nvcc cannot contract a*b+c into an FMA the CPU does not
// do. optim_step_cuda walks a param_table like optim_step (one launch per
// parameter), Muon through muon.cu. Not here: a fused multi-tensor launch
// over all parameters.
#include <cmath>

#include "nn/cuda/check.cuh"
#include "nn/cuda/ops.h"

__device__ __forceinline__ float lerp_torch(float a, float b, float w) {
    // PyTorch's lerp: w < 0.5 ? a + w*(b-a) : b - (b-a)*(1-w)
    return w < 0.5f ? __fadd_rn(a, __fmul_rn(w, __fsub_rn(b, a)))
                    : __fsub_rn(b, __fmul_rn(__fsub_rn(b, a), __fsub_rn(1.0f, w)));
}

__global__ void k_adam(float *p, const float *g, float *m, float *v, int64_t n, float step_size,
                       float bc2_sqrt, float decay, float wd, int decoupled, float w1, float b2,
                       float w2, float eps) {
    for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < n;
         k += (int64_t)gridDim.x * blockDim.x) {
        float gk = g[k], pk = p[k];
        if (wd != 0.0f) {
            if (decoupled) pk = __fmul_rn(pk, decay);
            else gk = __fadd_rn(gk, __fmul_rn(wd, pk));
        }
        float mk = lerp_torch(m[k], gk, w1);
        float vk = __fadd_rn(__fmul_rn(v[k], b2), __fmul_rn(__fmul_rn(w2, gk), gk));
        float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vk), bc2_sqrt), eps);
        m[k] = mk;
        v[k] = vk;
        p[k] = __fadd_rn(pk, __fdiv_rn(__fmul_rn(-step_size, mk), denom));
    }
}

extern "C" int adam_update_cuda(vcuda_ctx *ctx, float *p, const float *g, float *m, float *v,
                                int64_t n, double lr, double wd_d, int decoupled, double beta1,
                                double beta2, double eps, int64_t t) {
    if (n <= 0) return 0;
    if (t < 1) return VEL_EINVAL;
    const double bc1 = 1.0 - pow(beta1, (double)t);
    const double bc2 = 1.0 - pow(beta2, (double)t);
    k_adam<<<vcuda_blocks(n, 256), 256, 0, (cudaStream_t)vcuda_stream(ctx)>>>(
        p, g, m, v, n, (float)(lr / bc1), (float)sqrt(bc2), (float)(1.0 - lr * wd_d), (float)wd_d,
        decoupled, (float)(1.0 - beta1), (float)beta2, (float)(1.0 - beta2), (float)eps);
    VCUDA_LAUNCHED();
    return 0;
}

extern "C" int optim_step_cuda(vcuda_ctx *ctx, optim *o, const param_table *pt, float *values,
                               const float *grads, float *state, double lr) {
    if (pt->total != o->total || pt->count != o->count || lr <= 0) return VEL_EINVAL;
    const optim_config *c = &o->cfg;
    int64_t t = o->step + 1;
    if (c->kind == OPTIM_MUON) {
        // As nn/optim.c: Muon for its parameters (o->muon), AdamW for the
        // rest, one parameter at a time (o->scratch is a device buffer here).
        for (int i = 0; i < pt->count; i++) {
            const param_info *p = &pt->info[i];
            float *pv = values + p->offset, *m = state + p->offset;
            const float *gv = grads + p->offset;
            int r = o->muon[i]
                        ? muon_update_cuda(ctx, pv, gv, m, p->shape[0], p->numel / p->shape[0],
                                           lr * c->muon_lr_ratio, c, o->scratch)
                        : adam_update_cuda(ctx, pv, gv, m, state + o->total + p->offset, p->numel, lr,
                                           p->no_decay ? 0.0 : c->weight_decay, 1, c->beta1, c->beta2,
                                           c->eps, t);
            if (r) return r;
        }
        o->step = t;
        return 0;
    }
    // Fused: one launch per run of consecutive parameters with the same
    // weight decay (one launch in all when wd = 0, LightningDiT's default),
    // the alignment padding between them included: padding is zero in
    // values, grads and both moments, and Adam maps zeros to zeros, so the
    // result is that of one launch per parameter.
    for (int i = 0; i < pt->count;) {
        const double wd = pt->info[i].no_decay ? 0.0 : c->weight_decay;
        int j = i + 1;
        while (j < pt->count && (pt->info[j].no_decay ? 0.0 : c->weight_decay) == wd) j++;
        const param_info *a = &pt->info[i], *b = &pt->info[j - 1];
        const int64_t n = b->offset + b->numel - a->offset;
        int r = adam_update_cuda(ctx, values + a->offset, grads + a->offset, state + a->offset,
                                 state + o->total + a->offset, n, lr, wd, c->kind != OPTIM_ADAM,
                                 c->beta1, c->beta2, c->eps, t);
        if (r) return r;
        i = j;
    }
    o->step = t;
    return 0;
}

// ---- global gradient norm (clip_grad_norm) ------------------------------------

// Block s sums the squares of slice s in double: each thread a strided part,
// then a shared-memory tree in a fixed order (deterministic; the order
// differs from the CPU's running sum, so the norm agrees to rounding).
#define CLIP_THREADS 256
static __global__ void k_clip_sumsq(double *part, const float *g, int64_t n, int64_t per) {
    __shared__ double sh[CLIP_THREADS];
    int64_t lo = blockIdx.x * per, hi = lo + per < n ? lo + per : n;
    double acc = 0.0;
    for (int64_t k = lo + threadIdx.x; k < hi; k += CLIP_THREADS) acc += (double)g[k] * g[k];
    sh[threadIdx.x] = acc;
    __syncthreads();
    for (int s = CLIP_THREADS / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) part[blockIdx.x] = sh[0];
}

static __global__ void k_clip_scale(float *g, int64_t n, float coef) {
    for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < n;
         k += (int64_t)gridDim.x * blockDim.x)
        g[k] *= coef;
}

extern "C" int clip_grad_norm_cuda(vcuda_ctx *ctx, float *grads, int64_t n, float max_norm,
                                   float *norm) {
    *norm = 0.0f;
    if (n <= 0) return 0;
    cudaStream_t st = (cudaStream_t)vcuda_stream(ctx);
    void *scratch;
    int r = vcuda_ctx_scratch(ctx, OPTIM_CLIP_SLICES * sizeof(double), &scratch);
    if (r) return r;
    const int64_t per = (n + OPTIM_CLIP_SLICES - 1) / OPTIM_CLIP_SLICES;
    k_clip_sumsq<<<OPTIM_CLIP_SLICES, CLIP_THREADS, 0, st>>>((double *)scratch, grads, n, per);
    VCUDA_LAUNCHED();
    double part[OPTIM_CLIP_SLICES];
    r = vcuda_d2h_sync(ctx, part, scratch, sizeof part);
    if (r) return r;
    double ss = 0;
    for (int s = 0; s < OPTIM_CLIP_SLICES; s++) ss += part[s];   // slice order, as the CPU
    *norm = (float)sqrt(ss);
    if (max_norm > 0) {
        const float coef = max_norm / (*norm + 1e-6f);
        if (coef < 1.0f) {
            k_clip_scale<<<vcuda_blocks(n, 256), 256, 0, st>>>(grads, n, coef);
            VCUDA_LAUNCHED();
        }
    }
    return 0;
}
