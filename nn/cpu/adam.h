// adam.h (private to nn/cpu): the host loops of nn/optim.h. The Adam / AdamW
// element update, vectorised (CPU_CLONES) and split over the OpenMP pool.
// Element-wise, each element computed by the same expression as PyTorch's
// single-tensor CPU path (nn/optim.h gives the formula), so the bits depend
// on neither the thread count nor the vector width.
#ifndef NN_CPU_ADAM_H
#define NN_CPU_ADAM_H

#include <stdint.h>

// The per-call constants, already rounded to float where torch rounds them.
typedef struct {
    float step_size;   // (float)(lr / (1 - beta1^t))
    float bc2_sqrt;    // (float)sqrt(1 - beta2^t)
    float decay;       // (float)(1 - lr * wd), AdamW
    float wd;          // (float)wd, 0 = no decay
    float w1;          // (float)(1 - beta1), the lerp weight
    float b2, w2;      // (float)beta2, (float)(1 - beta2)
    float eps;
    int decoupled;     // 1 AdamW (decay the weight), 0 Adam (L2 into the gradient)
} adam_consts;

// One parameter's update: p, m, v updated in place over n elements from g.
// None alias. The optional tail runs on each piece right after its update,
// while it is in cache (nn/optim.h optim_step_ema_zero):
//   shadow (or NULL): shadow = shadow * ema_d + p * ema_w (the new p), the
//                     expression and rounding of nn/ema.c's ema_update;
//   zero_g:           g cleared once read (param_zero_grads' work).
typedef struct {
    float *p, *m, *v;
    float *g;
    int64_t n;
    adam_consts k;
    float *shadow;
    float ema_d, ema_w;
    int zero_g;
} adam_job;
// All jobs in ONE parallel region, the elements of all of them split evenly
// between the threads (small parameters no longer run serially, one fork per
// parameter): a model's whole Adam step. Element-wise, so the same bits as
// an element-by-element loop.
void adam_update_all_cpu(const adam_job *jobs, int njobs);

// The tail alone (shadow and / or zero_g of a job) over elements [0, n) of
// p, shadow, g: for parameters another update (Muon) has already written.
void adam_tail_cpu(const adam_job *J, int64_t lo, int64_t len);

// sum of g[i]^2 in double over n elements, vectorised in a fixed lane order
// (the bits depend on the data and the CPU's vector width, never on the
// thread count): one slice of clip_grad_norm's fixed slices.
double sumsq_cpu(const float *g, int64_t n);

#endif
