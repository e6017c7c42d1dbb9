// flow_loss.c: nn/flow_loss.h on the CPU: the MSE and cosine losses of
// nn/cpu/loss.c, values then gradients, in the order models/dit_train.c used
// before the fused op existed (so CPU training is bit-identical).
#include "nn/cpu/ops.h"

#include "core/base.h"

void flow_loss_cpu(double *vals, float *dv, const float *v, const float *u, int outer, int C,
                   int inner, float cos_weight) {
    CHECK(outer > 0 && C > 0 && inner > 0 && cos_weight >= 0);
    const int64_t n = (int64_t)outer * C * inner;
    vals[0] = mse_loss_forward_cpu(v, u, n);
    vals[1] = cos_weight > 0 ? cosine_loss_forward_cpu(v, u, outer, C, inner) : 0.0;
    if (!dv) return;
    mse_loss_backward_cpu(dv, NULL, v, u, n, 1.0f);
    if (cos_weight > 0) cosine_loss_backward_cpu(dv, NULL, v, u, outer, C, inner, cos_weight);
}
