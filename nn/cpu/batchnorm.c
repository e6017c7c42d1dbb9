// batchnorm.c: CPU batch norm (see nn/batchnorm.h).
#include "nn/cpu/ops.h"
#include "nn/cpu/par.h"

#include <math.h>
#include <stdint.h>

void batchnorm_forward_train_cpu(float *out, float *mean, float *rstd,
                             float *running_mean, float *running_var,
                             const float *inp, const float *weight, const float *bias,
                             int B, int C, int HW, float eps, float momentum) {
    // out, inp (B, C, HW); weight, bias, mean, rstd, running_* (C)
    const double n = (double)B * HW;
#pragma omp parallel for schedule(static) if (PAR((int64_t)B * C * HW))
    for (int c = 0; c < C; c++) {
        double s = 0;
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((int64_t)b * C + c) * HW;
            for (int i = 0; i < HW; i++) s += x[i];
        }
        double m = s / n, v = 0;
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((int64_t)b * C + c) * HW;
            for (int i = 0; i < HW; i++) { double d = x[i] - m; v += d * d; }
        }
        v /= n;
        double r = 1.0 / sqrt(v + eps);
        mean[c] = (float)m;
        rstd[c] = (float)r;
        if (running_mean)
            running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * m);
        if (running_var)
            running_var[c] = (float)((1.0 - momentum) * running_var[c] +
                                     momentum * (n > 1 ? v * n / (n - 1) : v));
        float w = weight ? weight[c] : 1.0f, bb = bias ? bias[c] : 0.0f;
        float mf = (float)m, rf = (float)r;
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((int64_t)b * C + c) * HW;
            float *o = out + ((int64_t)b * C + c) * HW;
            for (int i = 0; i < HW; i++) o[i] = (x[i] - mf) * rf * w + bb;
        }
    }
}

void batchnorm_forward_eval_cpu(float *out, const float *inp, const float *running_mean,
                            const float *running_var, const float *weight, const float *bias,
                            int B, int C, int HW, float eps) {
    // out, inp (B, C, HW); running_*, weight, bias (C)
#pragma omp parallel for schedule(static) if (PAR((int64_t)B * C * HW))
    for (int c = 0; c < C; c++) {
        float r = (float)(1.0 / sqrt((double)running_var[c] + eps)), m = running_mean[c];
        float w = weight ? weight[c] : 1.0f, bb = bias ? bias[c] : 0.0f;
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((int64_t)b * C + c) * HW;
            float *o = out + ((int64_t)b * C + c) * HW;
            for (int i = 0; i < HW; i++) o[i] = (x[i] - m) * r * w + bb;
        }
    }
}

void batchnorm_backward_cpu(float *dinp, float *dweight, float *dbias,
                        const float *dout, const float *inp, const float *weight,
                        const float *mean, const float *rstd, int B, int C, int HW) {
    // dinp, dout, inp (B, C, HW); dweight, dbias, weight, mean, rstd (C)
    const double n = (double)B * HW;
#pragma omp parallel for schedule(static) if (PAR((int64_t)B * C * HW))
    for (int c = 0; c < C; c++) {
        double m = mean[c], r = rstd[c], sg = 0, sgx = 0;
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((int64_t)b * C + c) * HW;
            const float *g = dout + ((int64_t)b * C + c) * HW;
            for (int i = 0; i < HW; i++) { sg += g[i]; sgx += g[i] * ((x[i] - m) * r); }
        }
        if (dweight) dweight[c] += (float)sgx;
        if (dbias) dbias[c] += (float)sg;
        if (!dinp) continue;
        double w = weight ? weight[c] : 1.0, mg = sg / n, mgx = sgx / n;
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((int64_t)b * C + c) * HW;
            const float *g = dout + ((int64_t)b * C + c) * HW;
            float *d = dinp + ((int64_t)b * C + c) * HW;
            for (int i = 0; i < HW; i++) {
                double xh = (x[i] - m) * r;
                d[i] += (float)(w * r * (g[i] - mg - xh * mgx));
            }
        }
    }
}
