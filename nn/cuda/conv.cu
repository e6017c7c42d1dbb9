// conv.cu: 2-D convolution on the GPU through cuDNN's convolution API
// (forward, backward data, backward filter; API: ops.h, semantics: nn/conv.h).
// - fp32 NCHW; math type CUDNN_FMA_MATH unless the context enabled TF32, so
//   fp32 parity with the CPU holds (cuDNN's default math would use TF32).
// - Algorithms from cuDNN's heuristics (the _v7 queries, no benchmarking),
//   first one that is deterministic and fits the context's 32 MiB workspace:
//   two runs give identical bits, as on the CPU.
// - Asymmetric padding (the VAE's pad right/bottom downsample) is not a cuDNN
//   descriptor option: the input is copied into a zero-padded buffer in the
//   caller's scratch and convolved with padding 0; backward data then goes
//   through the same buffer and its interior is added into dinp.
// - Bias forward and bias gradient are own kernels (fixed-order sums).
// Descriptors are created per call (host-side cost only). Not here: bf16
// convolutions, NHWC layouts, cached plans (later speed steps).
#include <cstring>

#include "nn/cuda/check.cuh"
#include "nn/cuda/ops.h"   // includes nn/conv.h with C linkage

static int symmetric(const conv2d_cfg *c) {
    return c->pad_top == c->pad_bottom && c->pad_left == c->pad_right;
}

namespace {

struct descs {
    cudnnTensorDescriptor_t x = nullptr, y = nullptr;
    cudnnFilterDescriptor_t w = nullptr;
    cudnnConvolutionDescriptor_t conv = nullptr;
    ~descs() {
        if (x) cudnnDestroyTensorDescriptor(x);
        if (y) cudnnDestroyTensorDescriptor(y);
        if (w) cudnnDestroyFilterDescriptor(w);
        if (conv) cudnnDestroyConvolutionDescriptor(conv);
    }
};

// x: (B, C, Hx, Wx) as cuDNN sees it (padded copy or the input itself).
int make_descs(vcuda_ctx *ctx, descs &d, const conv2d_cfg *c) {
    int pad = symmetric(c);
    int Hx = pad ? c->H : c->H + c->pad_top + c->pad_bottom;
    int Wx = pad ? c->W : c->W + c->pad_left + c->pad_right;
    CUDNN_TRY(cudnnCreateTensorDescriptor(&d.x));
    CUDNN_TRY(cudnnCreateTensorDescriptor(&d.y));
    CUDNN_TRY(cudnnCreateFilterDescriptor(&d.w));
    CUDNN_TRY(cudnnCreateConvolutionDescriptor(&d.conv));
    CUDNN_TRY(cudnnSetTensor4dDescriptor(d.x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, c->B, c->C, Hx, Wx));
    CUDNN_TRY(cudnnSetTensor4dDescriptor(d.y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, c->B, c->OC,
                                         conv2d_out_h(c), conv2d_out_w(c)));
    CUDNN_TRY(cudnnSetFilter4dDescriptor(d.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, c->OC, c->C, c->KH, c->KW));
    CUDNN_TRY(cudnnSetConvolution2dDescriptor(d.conv, pad ? c->pad_top : 0, pad ? c->pad_left : 0,
                                              c->stride, c->stride, 1, 1, CUDNN_CROSS_CORRELATION,
                                              CUDNN_DATA_FLOAT));
    CUDNN_TRY(cudnnSetConvolutionMathType(d.conv, vcuda_tf32(ctx) ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
    return 0;
}

// Picks the first heuristic result that succeeded, is deterministic, fits
// the workspace and (TF32 off) does not use tensor-op math on fp32.
template <typename Perf, typename Algo>
int pick(const Perf *p, int n, size_t ws, int tf32, Algo *algo) {
    for (int i = 0; i < n; i++) {
        if (p[i].status != CUDNN_STATUS_SUCCESS || p[i].memory > ws) continue;
        if (p[i].determinism != CUDNN_DETERMINISTIC) continue;
        if (!tf32 && p[i].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;
        *algo = p[i].algo;
        return 0;
    }
    return -1;
}

__global__ void k_pad(float *dst, const float *src, int BC, int H, int W, int pt, int pl, int Hp, int Wp) {
    int64_t n = (int64_t)BC * Hp * Wp;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int x = (int)(i % Wp), y = (int)((i / Wp) % Hp);
        int64_t bc = i / ((int64_t)Wp * Hp);
        int sy = y - pt, sx = x - pl;
        dst[i] = (sy >= 0 && sy < H && sx >= 0 && sx < W) ? src[(bc * H + sy) * W + sx] : 0.0f;
    }
}

// dinp += interior of the padded gradient.
__global__ void k_unpad_add(float *dinp, const float *dpad, int BC, int H, int W, int pt, int pl,
                            int Hp, int Wp) {
    int64_t n = (int64_t)BC * H * W;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int x = (int)(i % W), y = (int)((i / W) % H);
        int64_t bc = i / ((int64_t)W * H);
        dinp[i] += dpad[(bc * Hp + y + pt) * Wp + x + pl];
    }
}

__global__ void k_bias_nchw(float *out, const float *bias, int OC, int64_t HW, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        out[i] += bias[(i / HW) % OC];
}

// dbias[oc] += sum over (b, hw) of dout; one block per channel, fixed order.
__global__ void k_bias_grad_nchw(float *dbias, const float *dout, int B, int OC, int64_t HW) {
    __shared__ float sh[256];
    int oc = blockIdx.x;
    float s = 0.0f;
    for (int64_t i = threadIdx.x; i < (int64_t)B * HW; i += blockDim.x) {
        int64_t b = i / HW;
        s += dout[(b * OC + oc) * HW + i % HW];
    }
    sh[threadIdx.x] = s;
    __syncthreads();
    for (int k = blockDim.x / 2; k > 0; k >>= 1) {
        if ((int)threadIdx.x < k) sh[threadIdx.x] += sh[threadIdx.x + k];
        __syncthreads();
    }
    if (threadIdx.x == 0) dbias[oc] += sh[0];
}

}  // namespace

extern "C" int conv2d_forward_cuda(vcuda_ctx *ctx, float *out, const float *inp, const float *weight,
                                   const float *bias, float *scratch, const conv2d_cfg *c) {
    // out (B,OC,OH,OW), inp (B,C,H,W), weight (OC,C,KH,KW), bias (OC) or NULL
    if (conv2d_validate(c)) return VEL_EINVAL;
    cudaStream_t st = (cudaStream_t)vcuda_stream(ctx);
    cudnnHandle_t dnn = (cudnnHandle_t)vcuda_cudnn(ctx);
    descs d;
    int r = make_descs(ctx, d, c);
    if (r) return r;
    const float *x = inp;
    if (!symmetric(c)) {
        if (!scratch) return VEL_EINVAL;
        int Hp = c->H + c->pad_top + c->pad_bottom, Wp = c->W + c->pad_left + c->pad_right;
        k_pad<<<vcuda_blocks((int64_t)c->B * c->C * Hp * Wp, 256), 256, 0, st>>>(
            scratch, inp, c->B * c->C, c->H, c->W, c->pad_top, c->pad_left, Hp, Wp);
        VCUDA_LAUNCHED();
        x = scratch;
    }
    size_t ws_bytes;
    void *ws = vcuda_workspace(ctx, &ws_bytes);
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int n = 0;
    CUDNN_TRY(cudnnGetConvolutionForwardAlgorithm_v7(dnn, d.x, d.w, d.conv, d.y,
                                                     CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf));
    cudnnConvolutionFwdAlgo_t algo;
    if (pick(perf, n, ws_bytes, vcuda_tf32(ctx), &algo)) {
        vcuda_set_error(__FILE__, __LINE__, "no deterministic cuDNN forward algorithm fits %zu bytes", ws_bytes);
        return VCUDA_ECUDNN;
    }
    const float one = 1.0f, zero = 0.0f;
    CUDNN_TRY(cudnnConvolutionForward(dnn, &one, d.x, x, d.w, weight, d.conv, algo, ws, ws_bytes,
                                      &zero, d.y, out));
    if (bias) {
        int64_t HW = (int64_t)conv2d_out_h(c) * conv2d_out_w(c), total = HW * c->OC * c->B;
        k_bias_nchw<<<vcuda_blocks(total, 256), 256, 0, st>>>(out, bias, c->OC, HW, total);
        VCUDA_LAUNCHED();
    }
    return 0;
}

extern "C" int conv2d_backward_cuda(vcuda_ctx *ctx, float *dinp, float *dweight, float *dbias,
                                    const float *dout, const float *inp, const float *weight,
                                    float *scratch, const conv2d_cfg *c) {
    if (conv2d_validate(c)) return VEL_EINVAL;
    cudaStream_t st = (cudaStream_t)vcuda_stream(ctx);
    cudnnHandle_t dnn = (cudnnHandle_t)vcuda_cudnn(ctx);
    descs d;
    int r = make_descs(ctx, d, c);
    if (r) return r;
    int sym = symmetric(c);
    if (!sym && !scratch) return VEL_EINVAL;
    int Hp = c->H + c->pad_top + c->pad_bottom, Wp = c->W + c->pad_left + c->pad_right;
    size_t ws_bytes;
    void *ws = vcuda_workspace(ctx, &ws_bytes);
    const float one = 1.0f, zero = 0.0f;
    if (dbias) {
        k_bias_grad_nchw<<<c->OC, 256, 0, st>>>(dbias, dout, c->B, c->OC,
                                                (int64_t)conv2d_out_h(c) * conv2d_out_w(c));
        VCUDA_LAUNCHED();
    }
    if (dweight) {
        const float *x = inp;
        if (!sym) {   // backward filter reads the padded input
            k_pad<<<vcuda_blocks((int64_t)c->B * c->C * Hp * Wp, 256), 256, 0, st>>>(
                scratch, inp, c->B * c->C, c->H, c->W, c->pad_top, c->pad_left, Hp, Wp);
            VCUDA_LAUNCHED();
            x = scratch;
        }
        cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        int n = 0;
        CUDNN_TRY(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
            dnn, d.x, d.y, d.conv, d.w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perf));
        cudnnConvolutionBwdFilterAlgo_t algo;
        if (pick(perf, n, ws_bytes, vcuda_tf32(ctx), &algo)) {
            vcuda_set_error(__FILE__, __LINE__, "no deterministic cuDNN backward-filter algorithm fits");
            return VCUDA_ECUDNN;
        }
        CUDNN_TRY(cudnnConvolutionBackwardFilter(dnn, &one, d.x, x, d.y, dout, d.conv, algo, ws,
                                                 ws_bytes, &one, d.w, dweight));
    }
    if (dinp) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        int n = 0;
        CUDNN_TRY(cudnnGetConvolutionBackwardDataAlgorithm_v7(
            dnn, d.w, d.y, d.conv, d.x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf));
        cudnnConvolutionBwdDataAlgo_t algo;
        if (pick(perf, n, ws_bytes, vcuda_tf32(ctx), &algo)) {
            vcuda_set_error(__FILE__, __LINE__, "no deterministic cuDNN backward-data algorithm fits");
            return VCUDA_ECUDNN;
        }
        // Symmetric: accumulate straight into dinp (beta = 1). Otherwise the
        // padded gradient goes to scratch (beta = 0) and its interior is added.
        CUDNN_TRY(cudnnConvolutionBackwardData(dnn, &one, d.w, weight, d.y, dout, d.conv, algo, ws,
                                               ws_bytes, sym ? &one : &zero, d.x, sym ? dinp : scratch));
        if (!sym) {
            k_unpad_add<<<vcuda_blocks((int64_t)c->B * c->C * c->H * c->W, 256), 256, 0, st>>>(
                dinp, scratch, c->B * c->C, c->H, c->W, c->pad_top, c->pad_left, Hp, Wp);
            VCUDA_LAUNCHED();
        }
    }
    return 0;
}
