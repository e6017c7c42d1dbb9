// schedule.h: learning-rate schedules as a pure function of the step index,
// so a resumed run needs nothing but the step counter.
//   lr(it) = lr * warmup(it) * decay(it),   it = 0, 1, ... (the step about to run)
//   warmup(it) = min(1, (it+1) / warmup)  if warmup > 0, else 1
//                (step 0 already moves: lr/warmup, full lr from it = warmup-1)
//   decay: LR_CONSTANT  1
//          LR_INV_SQRT  1 / sqrt(max(it / t_ref, 1))     (SPEC section 2,
//                       AutoGuidance / edm2; it / t_ref in real division)
//          LR_COSINE    r + (1-r) * (1 + cos(pi * q)) / 2, q = clamp((it -
//                       warmup) / (total - warmup), 0, 1), r = min_ratio
// Evaluated and returned in double (optim_step takes a double, like torch).
#ifndef NN_SCHEDULE_H
#define NN_SCHEDULE_H

#include <stdint.h>

typedef enum { LR_CONSTANT = 0, LR_INV_SQRT = 1, LR_COSINE = 2 } lr_decay;

typedef struct {
    double lr;          // peak / reference learning rate
    lr_decay decay;
    int64_t warmup;     // linear warm-up steps (0: none)
    int64_t t_ref;      // LR_INV_SQRT: steps before the decay starts (> 0)
    int64_t total;      // LR_COSINE: step where the cosine reaches min_ratio (> warmup)
    double min_ratio;   // LR_COSINE: final lr / lr
} lr_schedule;

// 0, or VEL_EINVAL with a reason in *why (static string) for a bad schedule.
int lr_schedule_check(const lr_schedule *s, const char **why);
double lr_at(const lr_schedule *s, int64_t it);
const char *lr_decay_name(lr_decay d);   // "constant", "inv_sqrt", "cosine"
// For --lr-schedule: the names above, and "inv-sqrt" for LR_INV_SQRT.
int lr_decay_parse(const char *name, lr_decay *out);   // 0 or VEL_EINVAL

#endif
