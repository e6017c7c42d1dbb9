// embed.c: the embed ops of nn/embed.h, dispatched by where their pointers live
// (nn/backend.h): host -> nn/cpu/embed.c; device -> nn/cuda/embed.cu for the
// timestep and label embeddings (on the device the labels are not range-checked:
// callers check them on the host first, nn/cuda/ops.h); the 2-D position table
// has no CUDA implementation (sticky error: compute it on the host and copy).
#include "nn/embed.h"

#include "nn/backend.h"
#include "nn/cpu/ops.h"
#ifdef VEL_HAVE_CUDA
#include "nn/cuda/ops.h"
#endif

void timestep_embedding(float *out, const float *t, int B, int dim, double max_period) {
    int w = NN_WHERE(out, t);
    if (w == NN_HOST)
        timestep_embedding_cpu(out, t, B, dim, max_period);
    else if (w == NN_DEVICE)
        NN_CUDA(timestep_embedding_cuda(NN_CTX, out, t, B, dim, max_period));
}

int label_embed_forward(float *out, const float *table, const int32_t *y, const uint8_t *drop,
                        int B, int D, int num_classes) {
    int w = NN_WHERE(out, table, y, drop);
    if (w == NN_HOST) return label_embed_forward_cpu(out, table, y, drop, B, D, num_classes);
    return w == NN_DEVICE ? NN_CUDA(label_embed_forward_cuda(NN_CTX, out, table, y, drop, B, D, num_classes))
                          : nn_pending_error();
}

void label_embed_backward(float *dtable, const float *dout, const int32_t *y, const uint8_t *drop,
                          int B, int D, int num_classes) {
    int w = NN_WHERE(dtable, dout, y, drop);
    if (w == NN_HOST)
        label_embed_backward_cpu(dtable, dout, y, drop, B, D, num_classes);
    else if (w == NN_DEVICE)
        NN_CUDA(label_embed_backward_cuda(NN_CTX, dtable, dout, y, drop, B, D, num_classes));
}

void pos_embed_2d(float *out, int H, int W, int D) {
    int w = NN_WHERE(out);
    if (w == NN_HOST)
        pos_embed_2d_cpu(out, H, W, D);
    else if (w == NN_DEVICE)
        NN_NO_CUDA();
}
