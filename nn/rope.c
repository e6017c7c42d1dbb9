// rope.c: the rope ops of nn/rope.h, dispatched by where their pointers live
// (nn/backend.h): host -> nn/cpu/rope.c, device -> nn/cuda/transformer.cu.
#include "nn/rope.h"

#include "nn/backend.h"
#include "nn/cpu/ops.h"
#include "nn/norm.h"
#include "nn/rows.h"
#include "nn/zero_first.h"
#ifdef VEL_HAVE_CUDA
#include "nn/cuda/ops.h"
#endif

void rope2d_tables(float *cos_t, float *sin_t, int H, int W, int HD, double theta) {
    int w = NN_WHERE(cos_t, sin_t);
    if (w == NN_HOST)
        rope2d_tables_cpu(cos_t, sin_t, H, W, HD, theta);
    else if (w == NN_DEVICE)
        NN_NO_CUDA();
}

void rope_forward(float *out, const float *inp, const float *cos_t, const float *sin_t, int B,
                  int T, int NH, int HD, int ld_out, int ld_inp) {
    int w = NN_WHERE(out, inp, cos_t, sin_t);
    if (w == NN_HOST)
        rope_forward_cpu(out, inp, cos_t, sin_t, B, T, NH, HD, ld_out, ld_inp);
    else if (w == NN_DEVICE)
        NN_CUDA(rope_forward_cuda(NN_CTX, out, inp, cos_t, sin_t, B, T, NH, HD, ld_out, ld_inp));
}

void rope_backward(float *dinp, const float *dout, const float *cos_t, const float *sin_t, int B,
                   int T, int NH, int HD, int ld_dinp, int ld_dout) {
    int w = NN_WHERE(dinp, dout, cos_t, sin_t);
    if (w == NN_HOST)
        rope_backward_cpu(dinp, dout, cos_t, sin_t, B, T, NH, HD, ld_dinp, ld_dout);
    else if (w == NN_DEVICE)
        NN_CUDA(
            rope_backward_cuda(NN_CTX, dinp, dout, cos_t, sin_t, B, T, NH, HD, ld_dinp, ld_dout));
}

void rope_backward_set(float *dinp, const float *dout, const float *cos_t, const float *sin_t,
                       int B, int T, int NH, int HD, int ld_dinp, int ld_dout) {
    int w = NN_WHERE(dinp, dout, cos_t, sin_t);
    if (w == NN_HOST)
        rope_backward_set_cpu(dinp, dout, cos_t, sin_t, B, T, NH, HD, ld_dinp, ld_dout);
    else if (w == NN_DEVICE &&
             !nn_zero_first(__func__, dinp, (size_t)B * T, (size_t)NH * HD, ld_dinp))
        NN_CUDA(
            rope_backward_cuda(NN_CTX, dinp, dout, cos_t, sin_t, B, T, NH, HD, ld_dinp, ld_dout));
}

// On the GPU the fused q/k ops are the sequence they stand for, each part
// through the scratch: (B*T*NH) head rows of HD are a contiguous (B*T, D)
// buffer, which rmsnorm needs and a part of packed qkv is not.
void qknorm_rope_forward(float *qkv, float *qraw, float *kraw, float *rstd_q, float *rstd_k,
                         const float *wq, const float *wk, const float *cos_t,
                         const float *sin_t, float *scratch, int B, int T, int NH, int HD,
                         float eps) {
    int w = NN_WHERE(qkv, qraw, kraw, rstd_q, rstd_k, wq, wk, cos_t, sin_t, scratch);
    if (w == NN_HOST) {
        qknorm_rope_forward_cpu(qkv, qraw, kraw, rstd_q, rstd_k, wq, wk, cos_t, sin_t, B, T, NH,
                                HD, eps);
    } else if (w == NN_DEVICE) {
        const int N = B * T, D = NH * HD;
        for (int p = 0; p < 2; p++) {
            float *part = qkv + (size_t)p * D, *raw = p ? kraw : qraw;
            rows_copy_forward(raw, part, N, D, D, 3 * D);
            rmsnorm_forward(scratch, p ? rstd_k : rstd_q, raw, p ? wk : wq, N * NH, HD, eps);
            rope_forward(part, scratch, cos_t, sin_t, B, T, NH, HD, 3 * D, D);
        }
    }
}

void qknorm_rope_backward(float *dqkv, float *dwq, float *dwk, const float *qraw,
                          const float *kraw, const float *rstd_q, const float *rstd_k,
                          const float *wq, const float *wk, const float *cos_t,
                          const float *sin_t, float *scratch, int B, int T, int NH, int HD) {
    int w = NN_WHERE(dqkv, dwq, dwk, qraw, kraw, rstd_q, rstd_k, wq, wk, cos_t, sin_t, scratch);
    if (w == NN_HOST) {
        qknorm_rope_backward_cpu(dqkv, dwq, dwk, qraw, kraw, rstd_q, rstd_k, wq, wk, cos_t,
                                 sin_t, B, T, NH, HD);
    } else if (w == NN_DEVICE) {
        const int N = B * T, D = NH * HD;
        float *t1 = scratch, *t2 = scratch + (size_t)N * D;
        for (int p = 0; p < 2; p++) {
            float *part = dqkv + (size_t)p * D;
            rope_backward_set(t1, part, cos_t, sin_t, B, T, NH, HD, D, 3 * D);
            rmsnorm_backward_set(t2, p ? dwk : dwq, t1, p ? kraw : qraw, p ? wk : wq,
                                 p ? rstd_k : rstd_q, N * NH, HD);
            rows_copy_forward(part, t2, N, D, 3 * D, D);
        }
    }
}
