// batchnorm.h: 2-D batch normalisation (NCHW), PyTorch BatchNorm2d semantics.
// CPU implementation in nn/cpu/batchnorm.c. Used by the PatchGAN
// discriminator (models/patchgan.h).
//
// Training mode normalises with the batch statistics over (B, H, W) per
// channel (biased variance, computed in double) and, when running_mean /
// running_var are given, updates them as PyTorch does:
//   running_mean = (1 - momentum) * running_mean + momentum * mean
//   running_var  = (1 - momentum) * running_var  + momentum * var * n/(n-1)
// (unbiased variance there, n = B*H*W). Eval mode uses the running stats.
// Backward ACCUMULATES (+=) into dinp, dweight and dbias; NULL = not needed.
// Reductions are per channel in a fixed order, one channel per OpenMP
// thread, so 1 and 2 threads give bit-identical results.
#ifndef NN_BATCHNORM_H
#define NN_BATCHNORM_H

// out, inp (B, C, HW); weight, bias (C) or NULL (1 / 0); mean, rstd (C)
// written (saved for backward); running_mean, running_var (C) updated, or
// NULL to leave them alone. out may not alias inp.
void batchnorm_forward_train(float *out, float *mean, float *rstd,
                             float *running_mean, float *running_var,
                             const float *inp, const float *weight, const float *bias,
                             int B, int C, int HW, float eps, float momentum);
// Eval mode: out = (inp - running_mean) / sqrt(running_var + eps) * w + b.
void batchnorm_forward_eval(float *out, const float *inp, const float *running_mean,
                            const float *running_var, const float *weight, const float *bias,
                            int B, int C, int HW, float eps);
// Backward of the training-mode forward (batch statistics mean, rstd).
void batchnorm_backward(float *dinp, float *dweight, float *dbias,
                        const float *dout, const float *inp, const float *weight,
                        const float *mean, const float *rstd, int B, int C, int HW);

#endif
