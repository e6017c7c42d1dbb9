// flash_attn.cu: the attention op on the GPU (API: ops.h, semantics:
// nn/attention.h). The tiled (flash-style) kernels whose bodies are in
// flash_attn.h, fp32 or bf16 qkv with fp32 arithmetic; the exact untiled
// kernels of transformer.cu remain the fallback for shapes the tiles do not
// cover (head dim above ATTN_HD_MAX, or more query tiles than a grid's y).
//
// bf16 autocast (vcuda_set_autocast_bf16): the fp32 entry points round qkv
// to a bf16 copy (context scratch in the forward, the caller's scratch in the
// backward) and run the bf16 kernels, as torch's autocast feeds SDPA bf16
// q, k, v. The softmax, its statistics (lse, Drow), out and every gradient
// stay fp32.
#include "nn/cuda/check.cuh"
#include "nn/cuda/flash_attn.h"
#include "nn/cuda/ops.h"

static cudaStream_t stream(vcuda_ctx *c) { return (cudaStream_t)vcuda_stream(c); }

__global__ void __launch_bounds__(FA_THREADS) k_fa_fwd(float *out, float *lse, const void *qkv,
                                                       int bf16, fa_geom g, int tile) {
    extern __shared__ float sm[];
    fa_forward_body(out, lse, qkv, bf16, g, tile, sm, (int)blockIdx.x, (int)blockIdx.y,
                    (int)threadIdx.x, (int)blockDim.x);
}

__global__ void k_fa_rowdot(float *Drow, const float *dout, const float *out, fa_geom g) {
    fa_rowdot_body(Drow, dout, out, g, blockIdx.x * (int64_t)blockDim.x + threadIdx.x);
}

__global__ void __launch_bounds__(FA_THREADS) k_fa_dq(float *dqkv, const float *dout,
                                                      const void *qkv, int bf16, const float *lse,
                                                      const float *Drow, fa_geom g, int tile) {
    extern __shared__ float sm[];
    fa_dq_body(dqkv, dout, qkv, bf16, lse, Drow, g, tile, sm, (int)blockIdx.x, (int)blockIdx.y,
               (int)threadIdx.x, (int)blockDim.x);
}

__global__ void __launch_bounds__(FA_THREADS) k_fa_dkv(float *dqkv, const float *dout,
                                                       const void *qkv, int bf16, const float *lse,
                                                       const float *Drow, fa_geom g, int tile) {
    extern __shared__ float sm[];
    fa_dkv_body(dqkv, dout, qkv, bf16, lse, Drow, g, tile, sm, (int)blockIdx.x, (int)blockIdx.y,
                (int)threadIdx.x, (int)blockDim.x);
}

// Grid (B*NH, tiles of T) of kernel `which`, or 0 when the tiled kernels do
// not cover the shape (tile 0, or more tiles than gridDim.y allows).
static int fa_grid(int which, int B, int T, int NH, int HD, dim3 *grid, int *tile, size_t *smem) {
    *tile = HD <= ATTN_HD_MAX ? fa_tile(which, HD) : 0;
    if (!*tile) return 0;
    int64_t tiles = ((int64_t)T + *tile - 1) / *tile, bh = (int64_t)B * NH;
    if (tiles > 65535 || bh > 0x7fffffff) return 0;
    *grid = dim3((unsigned)bh, (unsigned)tiles);
    *smem = (size_t)fa_smem_floats(which, *tile, HD) * sizeof(float);
    return 1;
}

static int fa_covered(int B, int T, int NH, int HD) {
    dim3 g;
    int t;
    size_t s;
    return fa_grid(FA_FWD, B, T, NH, HD, &g, &t, &s) && fa_grid(FA_DQ, B, T, NH, HD, &g, &t, &s) &&
           fa_grid(FA_DKV, B, T, NH, HD, &g, &t, &s);
}

static fa_geom geom(int B, int T, int NH, int HD) {
    fa_geom g = {B, T, NH, HD, 1.0f / sqrtf((float)HD)};
    return g;
}

static int bad_shape(int B, int T, int NH, int HD) { return B <= 0 || T <= 0 || NH <= 0 || HD <= 0; }

static int fa_forward(vcuda_ctx *ctx, float *out, float *lse, const void *qkv, int bf16, int B,
                      int T, int NH, int HD) {
    dim3 grid;
    int tile;
    size_t smem;
    if (!fa_grid(FA_FWD, B, T, NH, HD, &grid, &tile, &smem)) return VEL_EINVAL;
    k_fa_fwd<<<grid, FA_THREADS, smem, stream(ctx)>>>(out, lse, qkv, bf16, geom(B, T, NH, HD), tile);
    VCUDA_LAUNCHED();
    return 0;
}

static int fa_backward(vcuda_ctx *ctx, float *dqkv, const float *dout, const void *qkv, int bf16,
                       const float *out, const float *lse, float *Drow, int B, int T, int NH, int HD) {
    dim3 gq, gkv;
    int tq, tkv;
    size_t sq, skv;
    if (!fa_grid(FA_DQ, B, T, NH, HD, &gq, &tq, &sq) || !fa_grid(FA_DKV, B, T, NH, HD, &gkv, &tkv, &skv))
        return VEL_EINVAL;
    const fa_geom g = geom(B, T, NH, HD);
    const int64_t rows = (int64_t)B * NH * T;
    k_fa_rowdot<<<(unsigned)((rows + 255) / 256), 256, 0, stream(ctx)>>>(Drow, dout, out, g);
    VCUDA_LAUNCHED();
    k_fa_dq<<<gq, FA_THREADS, sq, stream(ctx)>>>(dqkv, dout, qkv, bf16, lse, Drow, g, tq);
    VCUDA_LAUNCHED();
    k_fa_dkv<<<gkv, FA_THREADS, skv, stream(ctx)>>>(dqkv, dout, qkv, bf16, lse, Drow, g, tkv);
    VCUDA_LAUNCHED();
    return 0;
}

static int64_t qkv_numel(int B, int T, int NH, int HD) { return (int64_t)B * T * 3 * NH * HD; }

extern "C" size_t attention_scratch_floats_cuda(const vcuda_ctx *ctx, int B, int T, int NH, int HD) {
    size_t n = (size_t)B * NH * T;   // Drow
    if (vcuda_autocast_bf16(ctx) && fa_covered(B, T, NH, HD))
        n += ((size_t)qkv_numel(B, T, NH, HD) + 1) / 2;   // bf16 copy of qkv
    return n;
}

extern "C" int attention_forward_cuda_bf16(vcuda_ctx *ctx, float *out, float *lse, const uint16_t *qkv,
                                           int B, int T, int NH, int HD) {
    if (bad_shape(B, T, NH, HD)) return VEL_EINVAL;
    return fa_forward(ctx, out, lse, qkv, 1, B, T, NH, HD);
}

extern "C" int attention_backward_cuda_bf16(vcuda_ctx *ctx, float *dqkv, const float *dout,
                                            const uint16_t *qkv, const float *out, const float *lse,
                                            float *scratch, int B, int T, int NH, int HD) {
    if (bad_shape(B, T, NH, HD) || !scratch) return VEL_EINVAL;
    return fa_backward(ctx, dqkv, dout, qkv, 1, out, lse, scratch, B, T, NH, HD);
}

extern "C" int attention_forward_cuda(vcuda_ctx *ctx, float *out, float *lse, const float *qkv, int B,
                                      int T, int NH, int HD) {
    if (bad_shape(B, T, NH, HD)) return VEL_EINVAL;
    if (!fa_covered(B, T, NH, HD)) return attention_forward_exact_cuda(ctx, out, lse, qkv, B, T, NH, HD);
    if (!vcuda_autocast_bf16(ctx)) return fa_forward(ctx, out, lse, qkv, 0, B, T, NH, HD);
    const int64_t n = qkv_numel(B, T, NH, HD);
    void *h;
    int r = vcuda_ctx_scratch(ctx, (size_t)n * sizeof(uint16_t), &h);
    if (!r) r = vcuda_f32_to_bf16(ctx, (uint16_t *)h, qkv, n);
    return r ? r : fa_forward(ctx, out, lse, h, 1, B, T, NH, HD);
}

extern "C" int attention_backward_cuda(vcuda_ctx *ctx, float *dqkv, const float *dout, const float *qkv,
                                       const float *out, const float *lse, float *scratch, int B, int T,
                                       int NH, int HD) {
    if (bad_shape(B, T, NH, HD) || !scratch) return VEL_EINVAL;
    if (!fa_covered(B, T, NH, HD))
        return attention_backward_exact_cuda(ctx, dqkv, dout, qkv, out, lse, scratch, B, T, NH, HD);
    if (!vcuda_autocast_bf16(ctx)) return fa_backward(ctx, dqkv, dout, qkv, 0, out, lse, scratch, B, T, NH, HD);
    // scratch = Drow (B*NH*T floats), then the bf16 copy (attention_scratch_floats_cuda).
    const int64_t n = qkv_numel(B, T, NH, HD);
    uint16_t *h = (uint16_t *)(scratch + (size_t)B * NH * T);
    int r = vcuda_f32_to_bf16(ctx, h, qkv, n);
    return r ? r : fa_backward(ctx, dqkv, dout, h, 1, out, lse, scratch, B, T, NH, HD);
}

extern "C" int attention_cuda_tiled(int B, int T, int NH, int HD) {
    return !bad_shape(B, T, NH, HD) && fa_covered(B, T, NH, HD);
}
