// adam.cu: Adam / AdamW on the GPU (API: ops.h), with the arithmetic of
// nn/optim.c's adam_update step for step: the same float roundings of the
// hyperparameters on the host, the same grouping of products, and explicit
// _rn intrinsics so nvcc cannot contract a*b+c into an FMA the CPU does not
// do. optim_step_cuda walks a param_table like optim_step (one launch per
// parameter). Not here: Muon (Newton-Schulz needs batched GEMMs), a fused
// multi-tensor launch over all parameters.
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
    if (o->cfg.kind == OPTIM_MUON) {
        vcuda_set_error(__FILE__, __LINE__, "Muon has no CUDA implementation yet");
        return VEL_EINVAL;
    }
    const optim_config *c = &o->cfg;
    int64_t t = o->step + 1;
    for (int i = 0; i < pt->count; i++) {
        const param_info *p = &pt->info[i];
        int r = adam_update_cuda(ctx, values + p->offset, grads + p->offset, state + p->offset,
                                 state + o->total + p->offset, p->numel, lr,
                                 p->no_decay ? 0.0 : c->weight_decay, c->kind != OPTIM_ADAM,
                                 c->beta1, c->beta2, c->eps, t);
        if (r) return r;
    }
    o->step = t;
    return 0;
}
