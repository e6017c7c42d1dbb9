// ops.h (nn/cpu): the CPU implementations behind the op API. Each `NAME_cpu`
// has exactly the arguments and semantics of NAME in nn/FAMILY.h; callers
// outside nn/ call NAME (nn/backend.h explains the dispatch), never these.
// All pointers are host pointers.
#ifndef NN_CPU_OPS_H
#define NN_CPU_OPS_H
#include <stddef.h>
#include <stdint.h>

#include "nn/activation.h"
#include "nn/attention.h"
#include "nn/batchnorm.h"
#include "nn/conv.h"
#include "nn/elementwise.h"
#include "nn/embed.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "nn/matmul.h"
#include "nn/modulate.h"
#include "nn/norm.h"
#include "nn/rope.h"
#include "nn/rows.h"
#include "nn/shape_ops.h"
#include "nn/swiglu.h"

// ---- activation (nn/activation.h; nn/cpu/activation.c, softmax.c)
void relu_forward_cpu(float *out, const float *inp, int64_t n);
void relu_backward_cpu(float *dinp, const float *dout, const float *inp, int64_t n);
void relu_backward_set_cpu(float *dinp, const float *dout, const float *inp, int64_t n);
void silu_forward_cpu(float *out, const float *inp, int64_t n);
void silu_backward_cpu(float *dinp, const float *dout, const float *inp, int64_t n);
void silu_backward_set_cpu(float *dinp, const float *dout, const float *inp, int64_t n);
void gelu_forward_cpu(float *out, const float *inp, int64_t n);
void gelu_backward_cpu(float *dinp, const float *dout, const float *inp, int64_t n);
void leaky_relu_forward_cpu(float *out, const float *inp, int64_t n, float slope);
void leaky_relu_backward_cpu(float *dinp, const float *dout, const float *inp, int64_t n,
                             float slope);
void softmax_forward_cpu(float *out, const float *inp, int N, int C);
void softmax_backward_cpu(float *dinp, const float *dout, const float *out, int N, int C);

// ---- attention (nn/attention.h; nn/cpu/attention.c)
void attention_forward_cpu(float *out, float *lse, const float *qkv, int B, int T, int NH, int HD);
void attention_backward_cpu(float *dqkv, const float *dout, const float *qkv, const float *out,
                            const float *lse, int B, int T, int NH, int HD);
void attention_backward_set_cpu(float *dqkv, const float *dout, const float *qkv,
                                const float *out, const float *lse, int B, int T, int NH, int HD);

// ---- batchnorm (nn/batchnorm.h; nn/cpu/batchnorm.c)
void batchnorm_forward_train_cpu(float *out, float *mean, float *rstd, float *running_mean,
                                 float *running_var, const float *inp, const float *weight,
                                 const float *bias, int B, int C, int HW, float eps,
                                 float momentum);
void batchnorm_forward_eval_cpu(float *out, const float *inp, const float *running_mean,
                                const float *running_var, const float *weight, const float *bias,
                                int B, int C, int HW, float eps);
void batchnorm_backward_cpu(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, const float *mean,
                            const float *rstd, int B, int C, int HW);

// ---- conv (nn/conv.h; nn/cpu/conv.c)
size_t conv2d_scratch_floats_cpu(const conv2d_cfg *c);
void conv2d_forward_cpu(float *out, const float *inp, const float *weight, const float *bias,
                        float *scratch, const conv2d_cfg *c);
void conv2d_backward_cpu(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, float *scratch,
                         const conv2d_cfg *c);
void conv2d_backward_set_cpu(float *dinp, float *dweight, float *dbias, const float *dout,
                             const float *inp, const float *weight, float *scratch,
                             const conv2d_cfg *c);

// ---- elementwise (nn/elementwise.h; nn/cpu/elementwise.c)
void add_forward_cpu(float *out, const float *a, const float *b, int64_t n);
void add_backward_cpu(float *da, float *db, const float *dout, int64_t n);
void add_inplace_cpu(float *x, const float *y, int64_t n);
void mul_forward_cpu(float *out, const float *a, const float *b, int64_t n);
void mul_backward_cpu(float *da, float *db, const float *dout, const float *a, const float *b,
                      int64_t n);
void scale_forward_cpu(float *out, const float *a, float s, int64_t n);
void scale_backward_cpu(float *da, const float *dout, float s, int64_t n);
void add_channel_bias_forward_cpu(float *out, const float *inp, const float *bias, int B, int C,
                                  int HW);
void add_channel_bias_backward_cpu(float *dinp, float *dbias, const float *dout, int B, int C,
                                   int HW);

// ---- embed (nn/embed.h; nn/cpu/embed.c)
void timestep_embedding_cpu(float *out, const float *t, int B, int dim, double max_period);
int label_embed_forward_cpu(float *out, const float *table, const int32_t *y, const uint8_t *drop,
                            int B, int D, int num_classes);
void label_embed_backward_cpu(float *dtable, const float *dout, const int32_t *y,
                              const uint8_t *drop, int B, int D, int num_classes);
void pos_embed_2d_cpu(float *out, int H, int W, int D);

// ---- linear (nn/linear.h; nn/cpu/linear.c)
void linear_forward_cpu(float *out, const float *inp, const float *weight, const float *bias, int N,
                        int C, int OC);
void linear_backward_cpu(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, int N, int C, int OC);

// ---- loss (nn/loss.h; nn/cpu/loss.c, loss_vae.c)
double mse_loss_forward_cpu(const float *pred, const float *target, int64_t n);
void mse_loss_backward_cpu(float *dpred, float *dtarget, const float *pred, const float *target,
                           int64_t n, float dloss);
double l1_loss_forward_cpu(const float *pred, const float *target, int64_t n);
void l1_loss_backward_cpu(float *dpred, float *dtarget, const float *pred, const float *target,
                          int64_t n, float dloss);
double cosine_loss_forward_cpu(const float *pred, const float *target, int outer, int C, int inner);
void cosine_loss_backward_cpu(float *dpred, float *dtarget, const float *pred, const float *target,
                              int outer, int C, int inner, float dloss);
double kl_loss_forward_cpu(const float *mu, const float *logvar, int B, int64_t per_image);
void kl_loss_backward_cpu(float *dmu, float *dlogvar, const float *mu, const float *logvar, int B,
                          int64_t per_image, float dloss);
double ve_loss_forward_cpu(const float *logvar, int64_t n, ve_kind kind, float delta);
void ve_loss_backward_cpu(float *dlogvar, const float *logvar, int64_t n, ve_kind kind, float delta,
                          float dloss);
double mag_reg_elem_forward_cpu(const float *mu, int64_t n, float tau);
void mag_reg_elem_backward_cpu(float *dmu, const float *mu, int64_t n, float tau, float dloss);
double mag_reg_global_forward_cpu(const float *mu, int B, int C, int inner, float tau);
void mag_reg_global_backward_cpu(float *dmu, const float *mu, int B, int C, int inner, float tau,
                                 float dloss);
void reparam_forward_cpu(float *z, const float *mu, const float *logvar, const float *eps,
                         int64_t n);
void reparam_backward_cpu(float *dmu, float *dlogvar, const float *dz, const float *logvar,
                          const float *eps, int64_t n);

// ---- modulate (nn/modulate.h; nn/cpu/modulate.c)
void modulate_forward_cpu(float *out, const float *x, const float *shift, const float *scale, int B,
                          int T, int C, int ld);
void modulate_backward_cpu(float *dx, float *dshift, float *dscale, const float *dout,
                           const float *x, const float *scale, int B, int T, int C, int ld);
void gate_residual_forward_cpu(float *out, const float *x, const float *y, const float *gate, int B,
                               int T, int C, int ld);
void gate_residual_backward_cpu(float *dx, float *dy, float *dgate, const float *dout,
                                const float *y, const float *gate, int B, int T, int C, int ld);

// ---- norm (nn/norm.h; nn/cpu/norm.c)
void groupnorm_forward_cpu(float *out, float *mean, float *rstd, const float *inp,
                           const float *weight, const float *bias, int B, int C, int HW, int G,
                           float eps);
void groupnorm_backward_cpu(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, const float *mean,
                            const float *rstd, int B, int C, int HW, int G);
void layernorm_forward_cpu(float *out, float *mean, float *rstd, const float *inp,
                           const float *weight, const float *bias, int N, int C, float eps);
void layernorm_backward_cpu(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, const float *mean,
                            const float *rstd, int N, int C);
void rmsnorm_forward_cpu(float *out, float *rstd, const float *inp, const float *weight, int N,
                         int C, float eps);
void rmsnorm_backward_cpu(float *dinp, float *dweight, const float *dout, const float *inp,
                          const float *weight, const float *rstd, int N, int C);

// ---- rope (nn/rope.h; nn/cpu/rope.c)
void rope2d_tables_cpu(float *cos_t, float *sin_t, int H, int W, int HD, double theta);
void rope_forward_cpu(float *out, const float *inp, const float *cos_t, const float *sin_t, int B,
                      int T, int NH, int HD, int ld_out, int ld_inp);
void rope_backward_cpu(float *dinp, const float *dout, const float *cos_t, const float *sin_t,
                       int B, int T, int NH, int HD, int ld_dinp, int ld_dout);
void qknorm_rope_forward_cpu(float *qkv, float *qraw, float *kraw, float *rstd_q, float *rstd_k,
                             const float *wq, const float *wk, const float *cos_t,
                             const float *sin_t, int B, int T, int NH, int HD, float eps);
void qknorm_rope_backward_cpu(float *dqkv, float *dwq, float *dwk, const float *qraw,
                              const float *kraw, const float *rstd_q, const float *rstd_k,
                              const float *wq, const float *wk, const float *cos_t,
                              const float *sin_t, int B, int T, int NH, int HD);

// ---- shape_ops (nn/shape_ops.h; nn/cpu/shape_ops.c, patchify.c)
void upsample2x_forward_cpu(float *out, const float *inp, int B, int C, int H, int W);
void upsample2x_backward_cpu(float *dinp, const float *dout, int B, int C, int H, int W);
void pad2d_forward_cpu(float *out, const float *inp, int B, int C, int H, int W, int pt, int pb,
                       int pl, int pr);
void pad2d_backward_cpu(float *dinp, const float *dout, int B, int C, int H, int W, int pt, int pb,
                        int pl, int pr);
void concat_channels_forward_cpu(float *out, const float *a, const float *b, int B, int Ca, int Cb,
                                 int HW);
void concat_channels_backward_cpu(float *da, float *db, const float *dout, int B, int Ca, int Cb,
                                  int HW);
void split_channels_forward_cpu(float *a, float *b, const float *inp, int B, int Ca, int Cb,
                                int HW);
void split_channels_backward_cpu(float *dinp, const float *da, const float *db, int B, int Ca,
                                 int Cb, int HW);
void patchify_forward_cpu(float *out, const float *inp, int B, int C, int H, int W, int p,
                          patch_order order);
void patchify_backward_cpu(float *dinp, const float *dout, int B, int C, int H, int W, int p,
                           patch_order order);
void unpatchify_forward_cpu(float *out, const float *inp, int B, int C, int H, int W, int p,
                            patch_order order);
void unpatchify_backward_cpu(float *dinp, const float *dout, int B, int C, int H, int W, int p,
                             patch_order order);

// ---- swiglu (nn/swiglu.h; nn/cpu/swiglu.c)
void swiglu_forward_cpu(float *h, const float *x12, int N, int H);
void swiglu_backward_cpu(float *dx12, const float *dh, const float *x12, int N, int H);

// ---- pooling (nn/pool.h) ----
void maxpool2d_forward_cpu(float *out, const float *inp, int B, int C, int H, int W, int k,
                           int stride, int pad);
void avgpool2d_forward_cpu(float *out, const float *inp, int B, int C, int H, int W, int k,
                           int stride, int pad, int count_include_pad);
void pool_global_avg_cpu(float *out, const float *inp, int B, int C, int HW);

// ---- rows (nn/rows.h; nn/cpu/rows.c)
void rows_copy_forward_cpu(float *out, const float *inp, int N, int W, int out_stride,
                           int inp_stride);
void rows_copy_backward_cpu(float *dinp, const float *dout, int N, int W, int out_stride,
                            int inp_stride);

// ---- flow loss (nn/flow_loss.h; nn/cpu/flow_loss.c)
void flow_loss_cpu(double *vals, float *dv, const float *v, const float *u, int outer, int C,
                   int inner, float cos_weight);

// ---- batched matmul (nn/matmul.h; nn/cpu/matmul.c)
void matmul_batched_cpu(int batch, int transA, int transB, int M, int N, int K, float alpha,
                        const float *A, int lda, int64_t strideA, const float *B, int ldb,
                        int64_t strideB, float beta, float *C, int ldc, int64_t strideC);

// ---- the _set backward variants (input gradients written, not accumulated)
void linear_backward_set_cpu(float *dinp, float *dweight, float *dbias, const float *dout,
                             const float *inp, const float *weight, int N, int C, int OC);
void modulate_backward_set_cpu(float *dx, float *dshift, float *dscale, const float *dout,
                               const float *x, const float *scale, int B, int T, int C, int ld);
void gate_residual_backward_set_cpu(float *dx, float *dy, float *dgate, const float *dout,
                                    const float *y, const float *gate, int B, int T, int C,
                                    int ld);
void rmsnorm_backward_set_cpu(float *dinp, float *dweight, const float *dout, const float *inp,
                              const float *weight, const float *rstd, int N, int C);
void rope_backward_set_cpu(float *dinp, const float *dout, const float *cos_t,
                           const float *sin_t, int B, int T, int NH, int HD, int ld_dinp,
                           int ld_dout);
void swiglu_backward_set_cpu(float *dx12, const float *dh, const float *x12, int N, int H);

#endif
