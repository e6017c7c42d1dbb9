// loss.c: the loss ops of nn/loss.h, dispatched by where their pointers live
// (nn/backend.h): host -> nn/cpu/loss.c, loss_vae.c, device -> nn/cuda/loss.cu,
// loss_vae.cu (a value on the device is reduced there and read back: the call waits).
#include "nn/loss.h"

#include <math.h>

#include "nn/backend.h"
#include "nn/cpu/ops.h"
#ifdef VEL_HAVE_CUDA
#include "nn/cuda/ops.h"
#endif

double mse_loss_forward(const float *pred, const float *target, int64_t n) {
    int w = NN_WHERE(pred, target);
    if (w == NN_HOST) return mse_loss_forward_cpu(pred, target, n);
    double v = NAN;
    if (w == NN_DEVICE) NN_CUDA(mse_loss_forward_cuda(NN_CTX, &v, pred, target, n));
    return v;
}

void mse_loss_backward(float *dpred, float *dtarget, const float *pred, const float *target,
                       int64_t n, float dloss) {
    int w = NN_WHERE(dpred, dtarget, pred, target);
    if (w == NN_HOST)
        mse_loss_backward_cpu(dpred, dtarget, pred, target, n, dloss);
    else if (w == NN_DEVICE)
        NN_CUDA(mse_loss_backward_cuda(NN_CTX, dpred, dtarget, pred, target, n, dloss));
}

double l1_loss_forward(const float *pred, const float *target, int64_t n) {
    int w = NN_WHERE(pred, target);
    if (w == NN_HOST) return l1_loss_forward_cpu(pred, target, n);
    if (w == NN_DEVICE) NN_NO_CUDA();
    return NAN;
}

void l1_loss_backward(float *dpred, float *dtarget, const float *pred, const float *target,
                      int64_t n, float dloss) {
    int w = NN_WHERE(dpred, dtarget, pred, target);
    if (w == NN_HOST)
        l1_loss_backward_cpu(dpred, dtarget, pred, target, n, dloss);
    else if (w == NN_DEVICE)
        NN_CUDA(l1_loss_backward_cuda(NN_CTX, dpred, dtarget, pred, target, n, dloss));
}

double cosine_loss_forward(const float *pred, const float *target, int outer, int C, int inner) {
    int w = NN_WHERE(pred, target);
    if (w == NN_HOST) return cosine_loss_forward_cpu(pred, target, outer, C, inner);
    if (w == NN_DEVICE) NN_NO_CUDA();
    return NAN;
}

void cosine_loss_backward(float *dpred, float *dtarget, const float *pred, const float *target,
                          int outer, int C, int inner, float dloss) {
    int w = NN_WHERE(dpred, dtarget, pred, target);
    if (w == NN_HOST)
        cosine_loss_backward_cpu(dpred, dtarget, pred, target, outer, C, inner, dloss);
    else if (w == NN_DEVICE)
        NN_CUDA(cosine_loss_backward_cuda(NN_CTX, dpred, dtarget, pred, target, outer, C, inner,
                                          dloss));
}

double kl_loss_forward(const float *mu, const float *logvar, int B, int64_t per_image) {
    int w = NN_WHERE(mu, logvar);
    if (w == NN_HOST) return kl_loss_forward_cpu(mu, logvar, B, per_image);
    double v = NAN;
    if (w == NN_DEVICE) NN_CUDA(kl_loss_forward_cuda(NN_CTX, &v, mu, logvar, B, per_image));
    return v;
}

void kl_loss_backward(float *dmu, float *dlogvar, const float *mu, const float *logvar, int B,
                      int64_t per_image, float dloss) {
    int w = NN_WHERE(dmu, dlogvar, mu, logvar);
    if (w == NN_HOST)
        kl_loss_backward_cpu(dmu, dlogvar, mu, logvar, B, per_image, dloss);
    else if (w == NN_DEVICE)
        NN_CUDA(kl_loss_backward_cuda(NN_CTX, dmu, dlogvar, mu, logvar, B, per_image, dloss));
}

double ve_loss_forward(const float *logvar, int64_t n, ve_kind kind, float delta) {
    int w = NN_WHERE(logvar);
    if (w == NN_HOST) return ve_loss_forward_cpu(logvar, n, kind, delta);
    double v = NAN;
    if (w == NN_DEVICE) NN_CUDA(ve_loss_forward_cuda(NN_CTX, &v, logvar, n, kind, delta));
    return v;
}

void ve_loss_backward(float *dlogvar, const float *logvar, int64_t n, ve_kind kind, float delta,
                      float dloss) {
    int w = NN_WHERE(dlogvar, logvar);
    if (w == NN_HOST)
        ve_loss_backward_cpu(dlogvar, logvar, n, kind, delta, dloss);
    else if (w == NN_DEVICE)
        NN_CUDA(ve_loss_backward_cuda(NN_CTX, dlogvar, logvar, n, kind, delta, dloss));
}

double mag_reg_elem_forward(const float *mu, int64_t n, float tau) {
    int w = NN_WHERE(mu);
    if (w == NN_HOST) return mag_reg_elem_forward_cpu(mu, n, tau);
    double v = NAN;
    if (w == NN_DEVICE) NN_CUDA(mag_reg_elem_forward_cuda(NN_CTX, &v, mu, n, tau));
    return v;
}

void mag_reg_elem_backward(float *dmu, const float *mu, int64_t n, float tau, float dloss) {
    int w = NN_WHERE(dmu, mu);
    if (w == NN_HOST)
        mag_reg_elem_backward_cpu(dmu, mu, n, tau, dloss);
    else if (w == NN_DEVICE)
        NN_CUDA(mag_reg_elem_backward_cuda(NN_CTX, dmu, mu, n, tau, dloss));
}

double mag_reg_global_forward(const float *mu, int B, int C, int inner, float tau) {
    int w = NN_WHERE(mu);
    if (w == NN_HOST) return mag_reg_global_forward_cpu(mu, B, C, inner, tau);
    double v = NAN;
    if (w == NN_DEVICE) NN_CUDA(mag_reg_global_forward_cuda(NN_CTX, &v, mu, B, C, inner, tau));
    return v;
}

void mag_reg_global_backward(float *dmu, const float *mu, int B, int C, int inner, float tau,
                             float dloss) {
    int w = NN_WHERE(dmu, mu);
    if (w == NN_HOST)
        mag_reg_global_backward_cpu(dmu, mu, B, C, inner, tau, dloss);
    else if (w == NN_DEVICE)
        NN_CUDA(mag_reg_global_backward_cuda(NN_CTX, dmu, mu, B, C, inner, tau, dloss));
}

void reparam_forward(float *z, const float *mu, const float *logvar, const float *eps, int64_t n) {
    int w = NN_WHERE(z, mu, logvar, eps);
    if (w == NN_HOST)
        reparam_forward_cpu(z, mu, logvar, eps, n);
    else if (w == NN_DEVICE)
        NN_CUDA(reparam_forward_cuda(NN_CTX, z, mu, logvar, eps, n));
}

void reparam_backward(float *dmu, float *dlogvar, const float *dz, const float *logvar,
                      const float *eps, int64_t n) {
    int w = NN_WHERE(dmu, dlogvar, dz, logvar, eps);
    if (w == NN_HOST)
        reparam_backward_cpu(dmu, dlogvar, dz, logvar, eps, n);
    else if (w == NN_DEVICE)
        NN_CUDA(reparam_backward_cuda(NN_CTX, dmu, dlogvar, dz, logvar, eps, n));
}
