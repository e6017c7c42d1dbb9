// ops.h: the CUDA implementations behind the op API. Models never call these:
// they call the op of nn/FAMILY.h (nn/linear.h, nn/norm.h, ...), whose
// dispatcher in nn/FAMILY.c calls NAME_cuda here when the op's pointers are
// device memory (nn/backend.h). Only those dispatchers, the GPU parity tests
// (tests/cuda) and the device bench include this header.
// Each NAME_cuda mirrors NAME with a `_cuda` suffix: the same arguments in the
// same order, all pointers DEVICE pointers, preceded by the context whose
// stream runs the op (vcuda.h).
// Same semantics: backward ACCUMULATES (+=) into every gradient it writes,
// NULL gradient = not needed, NULL weight/bias in norms = 1 / 0.
// Ops are asynchronous on the context's stream and return 0 or a VCUDA_E*
// code (launch errors; faults inside kernels surface at vcuda_sync).
//
// Precision: fp32 ops compute in fp32 (GEMMs with TF32 off unless the
// context enables it) and match the CPU within 1e-4. `_bf16` variants take
// bf16 activations and weights (uint16_t bit patterns, as core/tensor.h) and
// accumulate in fp32; parameter gradients stay fp32 (master weights).
//
// bf16 autocast (vcuda_set_autocast_bf16, `train --bf16`): which ops run in
// bf16. Master weights, optimizer state, EMA, and every activation and
// gradient buffer stay fp32; autocast only rounds OPERANDS to bf16 where the
// arithmetic tolerates it, as torch.autocast does:
//   - linear forward/backward: inputs, weight and dout rounded to bf16,
//     tensor-core GEMM with fp32 accumulation, fp32 outputs and gradients;
//   - attention forward/backward: q, k, v rounded to bf16, fp32 scores,
//     softmax, lse and accumulation, fp32 out and dqkv.
// fp32 on purpose: the norms (RMSNorm / LayerNorm statistics), softmax
// statistics, RoPE, modulate / gates, SwiGLU, the losses and their
// reductions, AdamW, clipping and EMA (precision-sensitive or memory-bound
// element-wise work where bf16 buys nothing but rounding).
//
// Determinism: no atomics; every reduction has a fixed order, so two runs
// give identical bits.
//
// Not here yet: batch norm and the 2-D position table (computed on the host), bf16
// variants of the element-wise and norm ops (kept fp32 on purpose: see
// "bf16 autocast" above). The op API reports these by name (nn/backend.h).
// Call only under #ifdef VEL_HAVE_CUDA: libvelcuda.a exists only then (vcuda.h).
#ifndef NN_CUDA_OPS_H
#define NN_CUDA_OPS_H

#include <stdint.h>

#include "nn/cuda/vcuda.h"

#ifdef __cplusplus
extern "C" {
#endif

// nn/ headers are C: included inside the extern "C" block for the .cu files.
#include "nn/attention.h"
#include "nn/conv.h"
#include "nn/ema.h"
#include "nn/loss.h"
#include "nn/optim.h"
#include "nn/shape_ops.h"

// ---- linear (cuBLAS) ------------------------------------------------------
int linear_forward_cuda(vcuda_ctx *ctx, float *out, const float *inp, const float *weight,
                        const float *bias, int N, int C, int OC);
int linear_backward_cuda(vcuda_ctx *ctx, float *dinp, float *dweight, float *dbias,
                         const float *dout, const float *inp, const float *weight,
                         int N, int C, int OC);
// bf16 activations and weight, fp32 bias; fp32 accumulation in the GEMM.
int linear_forward_cuda_bf16(vcuda_ctx *ctx, uint16_t *out, const uint16_t *inp,
                             const uint16_t *weight, const float *bias, int N, int C, int OC);
// dinp bf16 (+=, rounded once per call), dweight / dbias fp32 (+=).
int linear_backward_cuda_bf16(vcuda_ctx *ctx, uint16_t *dinp, float *dweight, float *dbias,
                              const uint16_t *dout, const uint16_t *inp, const uint16_t *weight,
                              int N, int C, int OC);

// ---- 2-D convolution (cuDNN) ---------------------------------------------------
// conv2d_cfg as nn/conv.h. scratch: device floats, conv2d_scratch_floats_cuda(c)
// of them (0 = may be NULL: only asymmetric padding needs a padded copy of the
// input). Inline shape arithmetic: nn/conv.c sizes scratch with it on CPU runs
// too, which must not load the CUDA half (nn/cuda/lazy.h).
static inline size_t conv2d_scratch_floats_cuda(const conv2d_cfg *c) {
    if (c->pad_top == c->pad_bottom && c->pad_left == c->pad_right) return 0;
    return (size_t)c->B * c->C * (c->H + c->pad_top + c->pad_bottom) *
           (c->W + c->pad_left + c->pad_right);
}
int conv2d_forward_cuda(vcuda_ctx *ctx, float *out, const float *inp, const float *weight,
                        const float *bias, float *scratch, const conv2d_cfg *c);
int conv2d_backward_cuda(vcuda_ctx *ctx, float *dinp, float *dweight, float *dbias,
                         const float *dout, const float *inp, const float *weight,
                         float *scratch, const conv2d_cfg *c);

// ---- activations and softmax ---------------------------------------------
int relu_forward_cuda(vcuda_ctx *ctx, float *out, const float *inp, int64_t n);
int relu_backward_cuda(vcuda_ctx *ctx, float *dinp, const float *dout, const float *inp, int64_t n);
int silu_forward_cuda(vcuda_ctx *ctx, float *out, const float *inp, int64_t n);
int silu_backward_cuda(vcuda_ctx *ctx, float *dinp, const float *dout, const float *inp, int64_t n);
int gelu_forward_cuda(vcuda_ctx *ctx, float *out, const float *inp, int64_t n);
int gelu_backward_cuda(vcuda_ctx *ctx, float *dinp, const float *dout, const float *inp, int64_t n);
int leaky_relu_forward_cuda(vcuda_ctx *ctx, float *out, const float *inp, int64_t n, float slope);
int leaky_relu_backward_cuda(vcuda_ctx *ctx, float *dinp, const float *dout, const float *inp,
                             int64_t n, float slope);
int softmax_forward_cuda(vcuda_ctx *ctx, float *out, const float *inp, int N, int C);
int softmax_backward_cuda(vcuda_ctx *ctx, float *dinp, const float *dout, const float *out,
                          int N, int C);

// ---- norms -----------------------------------------------------------------
int groupnorm_forward_cuda(vcuda_ctx *ctx, float *out, float *mean, float *rstd, const float *inp,
                           const float *weight, const float *bias, int B, int C, int HW, int G,
                           float eps);
int groupnorm_backward_cuda(vcuda_ctx *ctx, float *dinp, float *dweight, float *dbias,
                            const float *dout, const float *inp, const float *weight,
                            const float *mean, const float *rstd, int B, int C, int HW, int G);
int layernorm_forward_cuda(vcuda_ctx *ctx, float *out, float *mean, float *rstd, const float *inp,
                           const float *weight, const float *bias, int N, int C, float eps);
int layernorm_backward_cuda(vcuda_ctx *ctx, float *dinp, float *dweight, float *dbias,
                            const float *dout, const float *inp, const float *weight,
                            const float *mean, const float *rstd, int N, int C);
int rmsnorm_forward_cuda(vcuda_ctx *ctx, float *out, float *rstd, const float *inp,
                         const float *weight, int N, int C, float eps);
int rmsnorm_backward_cuda(vcuda_ctx *ctx, float *dinp, float *dweight, const float *dout,
                          const float *inp, const float *weight, const float *rstd, int N, int C);

// ---- DiT block pieces (nn/swiglu.h, nn/modulate.h, nn/rope.h, nn/attention.h) --
int swiglu_forward_cuda(vcuda_ctx *ctx, float *h, const float *x12, int N, int H);
int swiglu_backward_cuda(vcuda_ctx *ctx, float *dx12, const float *dh, const float *x12, int N, int H);
int modulate_forward_cuda(vcuda_ctx *ctx, float *out, const float *x, const float *shift,
                          const float *scale, int B, int T, int C, int ld);
int modulate_backward_cuda(vcuda_ctx *ctx, float *dx, float *dshift, float *dscale,
                           const float *dout, const float *x, const float *scale, int B, int T,
                           int C, int ld);
int gate_residual_forward_cuda(vcuda_ctx *ctx, float *out, const float *x, const float *y,
                               const float *gate, int B, int T, int C, int ld);
int gate_residual_backward_cuda(vcuda_ctx *ctx, float *dx, float *dy, float *dgate,
                                const float *dout, const float *y, const float *gate, int B, int T,
                                int C, int ld);
// cos_t / sin_t: device copies of rope2d_tables' output.
int rope_forward_cuda(vcuda_ctx *ctx, float *out, const float *inp, const float *cos_t,
                      const float *sin_t, int B, int T, int NH, int HD, int ld_out, int ld_inp);
int rope_backward_cuda(vcuda_ctx *ctx, float *dinp, const float *dout, const float *cos_t,
                       const float *sin_t, int B, int T, int NH, int HD, int ld_dinp, int ld_dout);
// Attention (flash_attn.cu): tiled, flash-style kernels (online softmax over
// key tiles, lse saved; backward recomputes P from lse; fp32 arithmetic, no
// atomics) for HD <= ATTN_HD_MAX and T up to 65535 tiles (>= 262,140
// tokens). Other shapes fall back to the exact untiled kernels of
// transformer.cu (T <= ATTN_CUDA_T_MAX: the score row lives in shared
// memory; VEL_EINVAL beyond). Under bf16 autocast (vcuda.h) the fp32 entry
// points round qkv to bf16 first and run the bf16 kernels (fp32 softmax,
// outputs and gradients). Backward needs scratch of
// attention_scratch_floats_cuda(ctx, ...) device floats (Drow, plus the bf16
// copy of qkv while autocast is on; the CPU op needs none).
#define ATTN_CUDA_T_MAX 6144
size_t attention_scratch_floats_cuda(const vcuda_ctx *ctx, int B, int T, int NH, int HD);
int attention_forward_cuda(vcuda_ctx *ctx, float *out, float *lse, const float *qkv, int B, int T,
                           int NH, int HD);
int attention_backward_cuda(vcuda_ctx *ctx, float *dqkv, const float *dout, const float *qkv,
                            const float *out, const float *lse, float *scratch, int B, int T,
                            int NH, int HD);
// 1 if the tiled kernels take this shape (else the exact ones run).
int attention_cuda_tiled(int B, int T, int NH, int HD);
// The tiled kernels on bf16 qkv (bits as core/tensor.h), fp32 everything else;
// VEL_EINVAL where attention_cuda_tiled is 0. Backward scratch: B*NH*T floats.
int attention_forward_cuda_bf16(vcuda_ctx *ctx, float *out, float *lse, const uint16_t *qkv, int B,
                                int T, int NH, int HD);
int attention_backward_cuda_bf16(vcuda_ctx *ctx, float *dqkv, const float *dout, const uint16_t *qkv,
                                 const float *out, const float *lse, float *scratch, int B, int T,
                                 int NH, int HD);
// The exact kernels themselves (fallback; tests compare both). Scratch:
// B*NH*T floats.
int attention_forward_exact_cuda(vcuda_ctx *ctx, float *out, float *lse, const float *qkv, int B,
                                 int T, int NH, int HD);
int attention_backward_exact_cuda(vcuda_ctx *ctx, float *dqkv, const float *dout, const float *qkv,
                                  const float *out, const float *lse, float *scratch, int B, int T,
                                  int NH, int HD);

// ---- element-wise and data movement (nn/elementwise.h, nn/shape_ops.h) -------------
int add_forward_cuda(vcuda_ctx *ctx, float *out, const float *a, const float *b, int64_t n);
int add_backward_cuda(vcuda_ctx *ctx, float *da, float *db, const float *dout, int64_t n);
int add_inplace_cuda(vcuda_ctx *ctx, float *x, const float *y, int64_t n);
int mul_forward_cuda(vcuda_ctx *ctx, float *out, const float *a, const float *b, int64_t n);
int mul_backward_cuda(vcuda_ctx *ctx, float *da, float *db, const float *dout, const float *a,
                      const float *b, int64_t n);
int scale_forward_cuda(vcuda_ctx *ctx, float *out, const float *a, float s, int64_t n);
int scale_backward_cuda(vcuda_ctx *ctx, float *da, const float *dout, float s, int64_t n);
int add_channel_bias_forward_cuda(vcuda_ctx *ctx, float *out, const float *inp, const float *bias,
                                  int B, int C, int HW);
int add_channel_bias_backward_cuda(vcuda_ctx *ctx, float *dinp, float *dbias, const float *dout,
                                   int B, int C, int HW);
int upsample2x_forward_cuda(vcuda_ctx *ctx, float *out, const float *inp, int B, int C, int H, int W);
int upsample2x_backward_cuda(vcuda_ctx *ctx, float *dinp, const float *dout, int B, int C, int H, int W);
int pad2d_forward_cuda(vcuda_ctx *ctx, float *out, const float *inp, int B, int C, int H, int W,
                       int pt, int pb, int pl, int pr);
int pad2d_backward_cuda(vcuda_ctx *ctx, float *dinp, const float *dout, int B, int C, int H, int W,
                        int pt, int pb, int pl, int pr);
int concat_channels_forward_cuda(vcuda_ctx *ctx, float *out, const float *a, const float *b,
                                 int B, int Ca, int Cb, int HW);
int concat_channels_backward_cuda(vcuda_ctx *ctx, float *da, float *db, const float *dout,
                                  int B, int Ca, int Cb, int HW);
int split_channels_forward_cuda(vcuda_ctx *ctx, float *a, float *b, const float *inp,
                                int B, int Ca, int Cb, int HW);
int split_channels_backward_cuda(vcuda_ctx *ctx, float *dinp, const float *da, const float *db,
                                 int B, int Ca, int Cb, int HW);
int patchify_forward_cuda(vcuda_ctx *ctx, float *out, const float *inp, int B, int C, int H, int W,
                          int p, patch_order order);
int patchify_backward_cuda(vcuda_ctx *ctx, float *dinp, const float *dout, int B, int C, int H,
                           int W, int p, patch_order order);
int unpatchify_forward_cuda(vcuda_ctx *ctx, float *out, const float *inp, int B, int C, int H,
                            int W, int p, patch_order order);
int unpatchify_backward_cuda(vcuda_ctx *ctx, float *dinp, const float *dout, int B, int C, int H,
                             int W, int p, patch_order order);

// ---- losses -------------------------------------------------------------------
// dpred += dloss * 2 (pred - target) / n; dtarget -= the same. n > 0.
int mse_loss_backward_cuda(vcuda_ctx *ctx, float *dpred, float *dtarget, const float *pred,
                           const float *target, int64_t n, float dloss);
// dpred += dloss * sign(pred - target) / n (0 where equal); dtarget the negative.
int l1_loss_backward_cuda(vcuda_ctx *ctx, float *dpred, float *dtarget, const float *pred,
                          const float *target, int64_t n, float dloss);
// Cosine loss along C of (outer, C, inner) views, as nn/loss.h.
int cosine_loss_backward_cuda(vcuda_ctx *ctx, float *dpred, float *dtarget, const float *pred,
                              const float *target, int outer, int C, int inner, float dloss);

// LightningDiT's velocity loss, values and gradient (nn/flow_loss.h): vals
// (2 device doubles) = {mse, cos} reduced on the device (fixed grid, fixed
// trees: deterministic), dv += the gradient (NULL: values only); nothing is
// copied to the host. Uses the context scratch for the block partials.
int flow_loss_cuda(vcuda_ctx *ctx, double *vals, float *dv, const float *v, const float *u,
                   int outer, int C, int inner, float cos_weight);

// ---- embeddings (nn/embed.h) ---------------------------------------------------
int timestep_embedding_cuda(vcuda_ctx *ctx, float *out, const float *t, int B, int dim,
                            double max_period);
// Label embedding with y (int32) and drop (uint8, or NULL) on the device. The
// labels' range is NOT checked here (that would need them on the host): the
// caller validates them first (ldit_forward does, on its host copy); a row
// outside [0, num_classes] is written as zeros / gets no gradient, never read
// out of bounds. Backward adds rows in batch order per column (deterministic,
// the CPU's order).
int label_embed_forward_cuda(vcuda_ctx *ctx, float *out, const float *table, const int32_t *y,
                             const uint8_t *drop, int B, int D, int num_classes);
int label_embed_backward_cuda(vcuda_ctx *ctx, float *dtable, const float *dout, const int32_t *y,
                              const uint8_t *drop, int B, int D, int num_classes);

// ---- EMA (nn/ema.h), on the flat buffers of n floats ------------------------------
int ema_update_cuda(vcuda_ctx *ctx, float *shadow, const float *values, int64_t n, double decay);
int ema_swap_cuda(vcuda_ctx *ctx, float *shadow, float *values, int64_t n);

// ---- optimizer ----------------------------------------------------------------
// One Adam (decoupled = 0) or AdamW (decoupled = 1) update of n elements with
// exactly the arithmetic of nn/optim.c (torch's single-tensor path); t is the
// step number after incrementing (>= 1).
int adam_update_cuda(vcuda_ctx *ctx, float *p, const float *g, float *m, float *v, int64_t n,
                     double lr, double wd, int decoupled, double beta1, double beta2, double eps,
                     int64_t t);
// optim_step on the GPU for every optim_kind (Muon: see below):
// values, grads (pt->total floats) and state (2 * o->total floats, the same
// layout as o->state) are device buffers; o supplies the config and the step
// count, which this increments. pt supplies the layout and no_decay flags.
int optim_step_cuda(vcuda_ctx *ctx, optim *o, const param_table *pt, float *values,
                    const float *grads, float *state, double lr);
// Muon: optim_step_cuda runs it for OPTIM_MUON (Adam(W) for the parameters
// Muon does not take, as nn/optim.c). The Newton-Schulz iteration of
// nn/muon.h (cuBLAS sgemm, norm reduced on the device; scratch: device floats,
// muon_ns_scratch_floats(rows, cols)) and one parameter's Muon update (buf =
// its momentum; scratch: rows*cols + muon_ns_scratch_floats floats, the
// layout of optim->scratch).
int muon_newton_schulz_cuda(vcuda_ctx *ctx, float *out, const float *g, int64_t rows, int64_t cols,
                            int steps, float *scratch);
int muon_update_cuda(vcuda_ctx *ctx, float *p, const float *g, float *buf, int64_t rows,
                     int64_t cols, double lr, const optim_config *c, float *scratch);
// clip_grad_norm over n flat gradients: *norm = the L2 norm before clipping
// (sums of squares in double over OPTIM_CLIP_SLICES slices, summed in slice
// order on the host, so this waits for the stream); grads scaled as nn/optim.h.
int clip_grad_norm_cuda(vcuda_ctx *ctx, float *grads, int64_t n, float max_norm, float *norm);

// ---- rows (nn/rows.h) -----------------------------------------------------------
int rows_copy_forward_cuda(vcuda_ctx *ctx, float *out, const float *inp, int N, int W,
                           int out_stride, int inp_stride);
int rows_copy_backward_cuda(vcuda_ctx *ctx, float *dinp, const float *dout, int N, int W,
                            int out_stride, int inp_stride);

// ---- latent-side losses (nn/loss.h; loss_vae.cu) ------------------------------
// The *_forward_cuda write the loss value to *out (HOST memory), reduced in
// double on the device in a fixed order, and wait for the stream (the op API
// returns the value). Backward: the nn/loss.h gradients, accumulated (+=).
int mse_loss_forward_cuda(vcuda_ctx *ctx, double *out, const float *pred, const float *target,
                          int64_t n);
int kl_loss_forward_cuda(vcuda_ctx *ctx, double *out, const float *mu, const float *logvar, int B,
                         int64_t per_image);
int kl_loss_backward_cuda(vcuda_ctx *ctx, float *dmu, float *dlogvar, const float *mu,
                          const float *logvar, int B, int64_t per_image, float dloss);
int ve_loss_forward_cuda(vcuda_ctx *ctx, double *out, const float *logvar, int64_t n, ve_kind kind,
                         float delta);
int ve_loss_backward_cuda(vcuda_ctx *ctx, float *dlogvar, const float *logvar, int64_t n,
                          ve_kind kind, float delta, float dloss);
int mag_reg_elem_forward_cuda(vcuda_ctx *ctx, double *out, const float *mu, int64_t n, float tau);
int mag_reg_elem_backward_cuda(vcuda_ctx *ctx, float *dmu, const float *mu, int64_t n, float tau,
                               float dloss);
int mag_reg_global_forward_cuda(vcuda_ctx *ctx, double *out, const float *mu, int B, int C,
                                int inner, float tau);
int mag_reg_global_backward_cuda(vcuda_ctx *ctx, float *dmu, const float *mu, int B, int C,
                                 int inner, float tau, float dloss);
int reparam_forward_cuda(vcuda_ctx *ctx, float *z, const float *mu, const float *logvar,
                         const float *eps, int64_t n);
int reparam_backward_cuda(vcuda_ctx *ctx, float *dmu, float *dlogvar, const float *dz,
                          const float *logvar, const float *eps, int64_t n);

#ifdef __cplusplus
}
#endif

#endif
