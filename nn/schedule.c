// schedule.c: learning-rate schedules (formulas in schedule.h).
#include "nn/schedule.h"

#include <math.h>
#include <string.h>

#include "core/base.h"

int lr_schedule_check(const lr_schedule *s, const char **why) {
    const char *w = NULL;
    if (!(s->lr >= 0) || !isfinite(s->lr)) w = "lr must be finite and >= 0";
    else if (s->warmup < 0) w = "warmup must be >= 0";
    else if ((unsigned)s->decay > LR_COSINE) w = "unknown decay kind";
    else if (s->decay == LR_INV_SQRT && s->t_ref <= 0) w = "inv_sqrt needs t_ref > 0";
    else if (s->decay == LR_COSINE && s->total <= s->warmup) w = "cosine needs total > warmup";
    else if (s->decay == LR_COSINE && !(s->min_ratio >= 0 && s->min_ratio <= 1))
        w = "cosine min_ratio must be in [0, 1]";
    if (why) *why = w;
    return w ? VEL_EINVAL : 0;
}

double lr_at(const lr_schedule *s, int64_t it) {
    double f = 1.0;
    if (s->warmup > 0 && it + 1 < s->warmup) f = (double)(it + 1) / (double)s->warmup;
    switch (s->decay) {
    case LR_CONSTANT: break;
    case LR_INV_SQRT: {
        double q = (double)it / (double)s->t_ref;
        f /= sqrt(q > 1.0 ? q : 1.0);
        break;
    }
    case LR_COSINE: {
        double q = (double)(it - s->warmup) / (double)(s->total - s->warmup);
        q = q < 0 ? 0 : q > 1 ? 1 : q;
        f *= s->min_ratio + (1.0 - s->min_ratio) * 0.5 * (1.0 + cos(M_PI * q));
        break;
    }
    }
    return s->lr * f;
}

const char *lr_decay_name(lr_decay d) {
    switch (d) {
    case LR_CONSTANT: return "constant";
    case LR_INV_SQRT: return "inv_sqrt";
    case LR_COSINE: return "cosine";
    }
    return "?";
}

int lr_decay_parse(const char *name, lr_decay *out) {
    // "inv-sqrt" too: the spelling train --model toy-* and pipelines/toy.sh use.
    if (name && strcmp(name, "inv-sqrt") == 0) name = "inv_sqrt";
    for (int d = LR_CONSTANT; d <= LR_COSINE; d++)
        if (name && strcmp(name, lr_decay_name((lr_decay)d)) == 0) {
            *out = (lr_decay)d;
            return 0;
        }
    return VEL_EINVAL;
}
