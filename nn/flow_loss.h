// flow_loss.h: LightningDiT's velocity loss as ONE op, value and gradient
// together (it is the last op of the training step, so its upstream gradient
// is 1): with v, u viewed as (outer, C, inner) (NCHW latents: B, C, H*W),
//   vals[0] = mse = mean((v - u)^2) over the n = outer*C*inner elements,
//   vals[1] = cos = mean over outer*inner positions of 1 - cos_C(v, u)
//             (nn/loss.h's cosine loss; 0 when cos_weight == 0),
//   dv += d(mse + cos_weight * cos)/dv  (when dv is not NULL).
// The loss is mse + cos_weight * cos (models/dit_train.h).
//
// Why one op: on the GPU the values are reduced on the device into vals (two
// doubles that live with the tensors), and the caller copies those 16 bytes
// back once per step; v and dv never cross to the host. On the CPU it is
// exactly nn/loss.h's mse/cosine forward and backward calls, in the same
// order, so CPU results are bit-identical to computing them separately.
//
// Sums are in double in a fixed order on both sides (the CPU's FIXED_ORDER_SUM;
// on the GPU a fixed grid and fixed-shape trees), so repeated runs agree bit
// for bit; CPU and GPU values agree to double rounding (different orders).
// Not here: the flow-matching draws and x_t (models/dit_train.c).
#ifndef NN_FLOW_LOSS_H
#define NN_FLOW_LOSS_H

// vals (2 doubles) written; dv (outer, C, inner) +=, or NULL; v, u read.
// All pointers on one side (host, or device with a current CUDA context).
// outer, C, inner >= 1; cos_weight >= 0.
void flow_loss(double *vals, float *dv, const float *v, const float *u, int outer, int C,
               int inner, float cos_weight);

#endif
