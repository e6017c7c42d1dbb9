// rows.cu: strided row copies on the GPU (API: ops.h; semantics: nn/rows.h).
// One thread per copied element, each output element written by exactly one
// thread: no atomics, deterministic.
#include "nn/cuda/check.cuh"
#include "nn/cuda/ops.h"

static __global__ void k_rows(float *out, const float *inp, int W, int os, int is, int64_t n,
                              int acc) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / W, j = i % W;
        if (acc) out[r * os + j] += inp[r * is + j];
        else out[r * os + j] = inp[r * is + j];
    }
}

static int launch(vcuda_ctx *ctx, float *out, const float *inp, int N, int W, int os, int is, int acc) {
    if (N < 0 || W < 0 || os < W || is < W) return VEL_EINVAL;
    int64_t n = (int64_t)N * W;
    if (n == 0) return 0;
    k_rows<<<vcuda_blocks(n, 256), 256, 0, (cudaStream_t)vcuda_stream(ctx)>>>(out, inp, W, os, is, n, acc);
    VCUDA_LAUNCHED();
    return 0;
}

extern "C" int rows_copy_forward_cuda(vcuda_ctx *ctx, float *out, const float *inp, int N, int W,
                                      int out_stride, int inp_stride) {
    return launch(ctx, out, inp, N, W, out_stride, inp_stride, 0);
}

extern "C" int rows_copy_backward_cuda(vcuda_ctx *ctx, float *dinp, const float *dout, int N, int W,
                                       int out_stride, int inp_stride) {
    // the gradient flows back the other way: dinp (stride inp_stride) += dout (stride out_stride)
    return launch(ctx, dinp, dout, N, W, inp_stride, out_stride, 1);
}
