// flow_loss.c: the op of nn/flow_loss.h, dispatched by where its pointers live
// (nn/backend.h): host -> nn/cpu/flow_loss.c, device -> nn/cuda/flow_loss.cu.
#include "nn/flow_loss.h"

#include "nn/backend.h"
#include "nn/cpu/ops.h"
#ifdef VEL_HAVE_CUDA
#include "nn/cuda/ops.h"
#endif

void flow_loss(double *vals, float *dv, const float *v, const float *u, int outer, int C,
               int inner, float cos_weight) {
    int w = NN_WHERE(vals, dv, v, u);
    if (w == NN_HOST)
        flow_loss_cpu(vals, dv, v, u, outer, C, inner, cos_weight);
    else if (w == NN_DEVICE)
        NN_CUDA(flow_loss_cuda(NN_CTX, vals, dv, v, u, outer, C, inner, cos_weight));
}
