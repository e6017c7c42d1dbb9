// attention.c: the attention ops of nn/attention.h, dispatched by where their pointers live
// (nn/backend.h): host -> nn/cpu/attention.c, device -> nn/cuda/transformer.cu.
#include "nn/attention.h"

#include "nn/backend.h"
#include "nn/cpu/ops.h"
#include "nn/zero_first.h"
#ifdef VEL_HAVE_CUDA
#include "nn/cuda/ops.h"
#endif

#ifdef VEL_HAVE_CUDA
// The CUDA backward needs scratch that the CPU op does not (row dots, and a
// bf16 copy of qkv under autocast), so it comes from the context instead of
// the op's arguments.
static int attention_backward_dev(float *dqkv, const float *dout, const float *qkv,
                                  const float *out, const float *lse, int B, int T, int NH,
                                  int HD) {
    void *scratch;
    int r = vcuda_ctx_scratch(NN_CTX, attention_scratch_floats_cuda(NN_CTX, B, T, NH, HD) * sizeof(float),
                              &scratch);
    if (r) return r;
    return attention_backward_cuda(NN_CTX, dqkv, dout, qkv, out, lse, (float *)scratch, B, T, NH,
                                   HD);
}
#endif

void attention_forward(float *out, float *lse, const float *qkv, int B, int T, int NH, int HD) {
    int w = NN_WHERE(out, lse, qkv);
    if (w == NN_HOST)
        attention_forward_cpu(out, lse, qkv, B, T, NH, HD);
    else if (w == NN_DEVICE)
        NN_CUDA(attention_forward_cuda(NN_CTX, out, lse, qkv, B, T, NH, HD));
}

void attention_backward(float *dqkv, const float *dout, const float *qkv, const float *out,
                        const float *lse, int B, int T, int NH, int HD) {
    int w = NN_WHERE(dqkv, dout, qkv, out, lse);
    if (w == NN_HOST)
        attention_backward_cpu(dqkv, dout, qkv, out, lse, B, T, NH, HD);
    else if (w == NN_DEVICE)
        NN_CUDA(attention_backward_dev(dqkv, dout, qkv, out, lse, B, T, NH, HD));
}

void attention_backward_set(float *dqkv, const float *dout, const float *qkv, const float *out,
                            const float *lse, int B, int T, int NH, int HD) {
    int w = NN_WHERE(dqkv, dout, qkv, out, lse);
    if (w == NN_HOST)
        attention_backward_set_cpu(dqkv, dout, qkv, out, lse, B, T, NH, HD);
    else if (w == NN_DEVICE &&
             !nn_zero_first(__func__, dqkv, (size_t)B * T, (size_t)3 * NH * HD, (size_t)3 * NH * HD))
        NN_CUDA(attention_backward_dev(dqkv, dout, qkv, out, lse, B, T, NH, HD));
}
