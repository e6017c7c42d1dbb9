// optim.h: optimizers over a param_table: Adam, AdamW (PyTorch semantics) and
// Muon (2-D weights) with AdamW for everything else; global-norm gradient
// clipping. The optimizer never allocates after optim_create.
//
// State is one flat buffer of 2 * pt->total floats in the table's layout:
// state[offset ..] is Adam's exp_avg or Muon's momentum buffer of a
// parameter, state[total + offset ..] Adam's exp_avg_sq (unused, zero, for
// Muon parameters). `step` counts optim_step calls (Adam's bias correction).
//
// Adam / AdamW, as torch.optim's single-tensor path, all arithmetic in fp32:
//   Adam:  g += wd * p                     (L2, coupled)
//   AdamW: p *= (float)(1 - lr*wd)         (decoupled, before the moments)
//   m = lerp(m, g, (float)(1-beta1)); v = v*beta2 + ((1-beta2)*g)*g
//   denom = sqrt(v) / (float)sqrt(1-beta2^t) + eps     (eps outside the sqrt)
//   p = p + (-(float)(lr / (1-beta1^t)) * m) / denom
// with wd = 0 for parameters marked no_decay; the grouping of each product is
// that of torch's CPU addcmul/addcdiv (nn/cuda/adam.cu mirrors this).
// lerp(a, b, w) is PyTorch's: w < 0.5 ? a + w*(b-a) : b - (b-a)*(1-w).
//
// Muon (OPTIM_MUON) for parameters with ndim >= 2 and !no_decay, viewed as
// (shape[0], numel/shape[0]) (conv (OC,C,KH,KW) -> (OC, C*KH*KW)):
//   buf = lerp(buf, g, 1-mu); u = nesterov ? lerp(g, buf, mu) : buf
//   u = muon_newton_schulz(u) * sqrt(max(1, rows/cols))
//   p *= (float)(1 - lr_m*wd_m); p += -lr_m * u,   lr_m = lr * muon_lr_ratio
// in fp32 (the reference runs Newton-Schulz in bf16). Models mark embeddings
// and output heads no_decay if they want them on AdamW, as the reference does.
// The remaining parameters get AdamW with (beta1, beta2, eps, weight_decay).
//
// Device: the state is allocated where pt->values lives (nn/device.h), and
// optim_step runs Adam / AdamW there (nn/cuda/adam.cu, same arithmetic);
// and clip_grad_norm there (it waits for the device: the norm is returned).
// Muon runs there too (nn/cuda/muon.cu: cuBLAS Newton-Schulz, its scratch
// allocated on the device). optim_exp_avg and optim_exp_avg_sq then point
// into device memory.
#ifndef NN_OPTIM_H
#define NN_OPTIM_H

#include <stdint.h>

#include "nn/ema.h"
#include "nn/params.h"

typedef enum { OPTIM_ADAM = 0, OPTIM_ADAMW = 1, OPTIM_MUON = 2 } optim_kind;

typedef struct {
    optim_kind kind;
    // Hyperparameters are doubles, like PyTorch's Python floats, and are
    // rounded to float at the same points as torch's kernels do.
    double beta1, beta2, eps, weight_decay;
    double muon_momentum;    // mu
    int muon_nesterov;
    int muon_ns_steps;
    double muon_lr_ratio;    // Muon lr / Adam lr (reference: 0.02 / 3e-4)
    double muon_weight_decay;
} optim_config;

// PyTorch defaults: betas (0.9, 0.999), eps 1e-8, weight decay 0 (Adam) or
// 1e-2 (AdamW, Muon's AdamW part); Muon momentum 0.95, Nesterov, 5 NS steps,
// lr ratio 1, weight decay 0.
optim_config optim_defaults(optim_kind kind);
const char *optim_kind_name(optim_kind kind);   // "adam", "adamw", "muon"
int optim_kind_parse(const char *name, optim_kind *out);   // 0 or VEL_EINVAL (for --optimizer)

typedef struct {
    optim_config cfg;
    int64_t total;       // floats per state half (= pt->total at creation)
    int count;           // parameters in the table at creation
    float *state;        // owned, 2*total floats, zeroed at creation
    int64_t step;        // steps taken
    unsigned char *muon; // owned, per parameter: 1 if Muon updates it
    float *scratch;      // owned, sized at creation for the largest Muon matrix
    void *jobs;          // owned, host: one Adam work item per parameter (nn/cpu/adam.h)
} optim;

// Sizes state and scratch from pt (committed). Returns 0, VEL_EINVAL (bad
// config: betas outside [0,1), eps <= 0, ...), VEL_ENOMEM, or a device code.
int optim_create(optim **out, const param_table *pt, const optim_config *cfg);
void optim_destroy(optim **o);

// One step with the gradients in pt->grads (left unchanged). lr > 0 is the
// Adam(W) learning rate of this step (Muon uses lr * muon_lr_ratio).
void optim_step(optim *o, param_table *pt, double lr);

// optim_step followed by ema_update(e, pt, decay) (e may be NULL: none) and,
// if zero_grads, param_zero_grads(pt): the same results, bit for bit, as
// those calls in that order. On the host the EMA and the clearing of each
// piece of the parameters run right after its update in the optimizer's
// parallel pass, while the piece is in cache (the new value is read once
// more from cache, not memory; the gradients are cleared by both threads
// instead of one serial memset). On the GPU it is the three calls.
// For a loop that clears the gradients here instead of before the next
// backward: they are zero after it, so the next step needs no
// param_zero_grads (a table starts with zero gradients at commit). The
// host pass covers the parameters, not the table's padding between them
// (zero in values, grads and shadow, and 0 * d + 0 * w stays zero).
void optim_step_ema_zero(optim *o, param_table *pt, double lr, ema *e, double decay,
                         int zero_grads);

float *optim_exp_avg(const optim *o, const param_table *pt, int i);     // or Muon buffer
float *optim_exp_avg_sq(const optim *o, const param_table *pt, int i);  // zero for Muon
int optim_uses_muon(const optim *o, int i);

#define OPTIM_CLIP_SLICES 256
// Global L2 norm of all gradients (summed in double over 256 fixed slices of
// the flat buffer, each in a fixed vector-lane order, so the result depends
// on the CPU's vector width but never on the thread count); if
// max_norm > 0, grads *= min(1, max_norm / (norm + 1e-6)) as PyTorch's
// clip_grad_norm_. Returns the norm before clipping.
float clip_grad_norm(param_table *pt, float max_norm);

#endif
