// loss.h: reconstruction and regularisation losses with gradients:
// MSE, L1, cosine (LightningDiT), KL (LDM), the VE terms of SPEC section 1
// (inverse variance (iii), -sigma^2 (i), -log sigma (ii)), the magnitude
// regulariser (a: element-wise, b: global RMS), and the reparameterised
// sample z = mu + exp(0.5*clamp(logvar)) * eps. CPU code in nn/cpu/loss*.c.
// Not here: the RNG for eps (core/philox.h), LPIPS, GAN losses.
//
// Loss values are returned as DOUBLE (accumulated in double over a fixed
// chunking, so 1 and 2 OpenMP threads agree bit for bit).
// Backward ACCUMULATES (+=) dloss * dL/dx into every gradient it writes;
// NULL = not needed. dloss is the upstream gradient (the loss weight, e.g.
// lambda_ve, or 1).
//
// logvar is clamped to [LOGVAR_MIN, LOGVAR_MAX] as torch.clamp does: the
// gradient passes where LOGVAR_MIN <= logvar <= LOGVAR_MAX and is zero
// strictly outside.
#ifndef NN_LOSS_H
#define NN_LOSS_H

#include <stdint.h>

#define LOGVAR_MIN (-30.0f)
#define LOGVAR_MAX 20.0f

// mean((pred - target)^2) over n elements.
double mse_loss_forward(const float *pred, const float *target, int64_t n);
// dpred += dloss * 2 (pred - target) / n; dtarget gets the negative.
void mse_loss_backward(float *dpred, float *dtarget, const float *pred,
                       const float *target, int64_t n, float dloss);

// mean(|pred - target|); gradient sign(pred - target)/n, 0 where equal.
double l1_loss_forward(const float *pred, const float *target, int64_t n);
void l1_loss_backward(float *dpred, float *dtarget, const float *pred,
                      const float *target, int64_t n, float dloss);

// Cosine loss along a channel dim: tensors viewed as (outer, C, inner):
// NCHW -> (B, C, H*W); tokens (N, T, C) -> (N*T, C, 1).
// L = mean over outer*inner positions of (1 - cos(pred, target)), with
// cos = <x,y> / (max(|x|, eps) * max(|y|, eps)), eps = 1e-8 (PyTorch's
// F.cosine_similarity; LightningDiT: 1 - cos_sim(pred, target, dim=1).mean()).
double cosine_loss_forward(const float *pred, const float *target,
                           int outer, int C, int inner);
void cosine_loss_backward(float *dpred, float *dtarget, const float *pred,
                          const float *target, int outer, int C, int inner, float dloss);

// KL to N(0, I), per image 0.5 * sum(mu^2 + sigma^2 - 1 - logvar), averaged
// over B; mu, logvar (B, per_image). sigma^2 = exp(clamp(logvar)) and the
// -logvar term uses the clamped value too (as LDM's DiagonalGaussian does).
double kl_loss_forward(const float *mu, const float *logvar, int B, int64_t per_image);
void kl_loss_backward(float *dmu, float *dlogvar, const float *mu, const float *logvar,
                      int B, int64_t per_image, float dloss);

// VE terms, mean over the n elements of logvar, sigma^2 = exp(clamp(logvar)):
typedef enum {
    VE_INV_VAR = 0,   // (iii) 1 / (sigma^2 + delta)   (the paper's choice)
    VE_NEG_VAR = 1,   // (i)   -sigma^2
    VE_NEG_LOGSTD = 2 // (ii)  -log sigma = -0.5 * clamp(logvar)
} ve_kind;
double ve_loss_forward(const float *logvar, int64_t n, ve_kind kind, float delta);
void ve_loss_backward(float *dlogvar, const float *logvar, int64_t n, ve_kind kind,
                      float delta, float dloss);

// Magnitude regulariser (a), element-wise: mean(exp(relu(|mu| - tau)) - 1).
double mag_reg_elem_forward(const float *mu, int64_t n, float tau);
void mag_reg_elem_backward(float *dmu, const float *mu, int64_t n, float tau, float dloss);
// Magnitude regulariser (b), global: mu viewed as (B, C, inner) (NCHW:
// inner = H*W; vectors (N, D): C = 1, inner = D for one global RMS, or C = D,
// inner = 1 for one per coordinate). m_c = sqrt(mean over B, inner of mu^2);
// L = mean over c of (exp(relu(m_c - tau)) - 1).
double mag_reg_global_forward(const float *mu, int B, int C, int inner, float tau);
void mag_reg_global_backward(float *dmu, const float *mu, int B, int C, int inner,
                             float tau, float dloss);

// z = mu + exp(0.5 * clamp(logvar)) * eps; all (n). eps is an input.
void reparam_forward(float *z, const float *mu, const float *logvar,
                     const float *eps, int64_t n);
// dmu += dz; dlogvar += dz * eps * 0.5 * sigma (inside the clamp).
void reparam_backward(float *dmu, float *dlogvar, const float *dz,
                      const float *logvar, const float *eps, int64_t n);

#endif
