// norm.c: CPU group / layer / RMS norm (see nn/norm.h).
// Statistics are accumulated in double (rows up to a few thousand elements,
// and group norm groups of C/G * H*W elements). Backward formulas, with
// xhat = (x - mean) * rstd and g = dout * weight:
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat))      (layer/group norm)
//   dx = rstd * (g - xhat * mean(g * xhat))                 (RMS norm, xhat = x*rstd)
// Parameter gradients are reduced per channel by one thread each, over rows
// in order, so 1 and 2 threads agree bit for bit.
#include "nn/cpu/ops.h"
#include "nn/cpu/par.h"

#include <math.h>

#include "core/base.h"
#include "nn/cpu/fastexp.h"
#include "nn/cpu/rms_rows.h"

// ---- group norm ---------------------------------------------------------
// The per-group loops are leaf helpers built for AVX-512 / AVX2 / x86-64
// (CPU_CLONES); their double sums are vectorised in a fixed lane order, so
// the result depends on the data only, not on the thread count.

CPU_CLONES static double gn_sum(const float *x, size_t n) {
    double s = 0.0;
    #pragma omp simd reduction(+ : s)
    for (size_t i = 0; i < n; i++) s += x[i];
    return s;
}
CPU_CLONES static double gn_sqdev(const float *x, size_t n, double m) {
    double v = 0.0;
    #pragma omp simd reduction(+ : v)
    for (size_t i = 0; i < n; i++) { double d = x[i] - m; v += d * d; }
    return v;
}
CPU_CLONES static void gn_apply(float *y, const float *x, int n, float m, float r, float w,
                                float b) {
    #pragma omp simd
    for (int i = 0; i < n; i++) y[i] = (x[i] - m) * r * w + b;
}
// sums of g = dy*w and g*xhat over one channel of a group
CPU_CLONES static void gn_bwd_sums(const float *dy, const float *x, int n, float w, float m,
                                   float rs, double *sg, double *sgx) {
    double a = 0.0, c = 0.0;
    #pragma omp simd reduction(+ : a, c)
    for (int i = 0; i < n; i++) {
        double gg = (double)dy[i] * w;
        a += gg;
        c += gg * ((x[i] - m) * rs);
    }
    *sg += a;
    *sgx += c;
}
CPU_CLONES static void gn_bwd_dx(float *dx, const float *dy, const float *x, int n, float w,
                                 float m, float rs, float mg, float mgx) {
    #pragma omp simd
    for (int i = 0; i < n; i++) {
        float xh = (x[i] - m) * rs;
        dx[i] += rs * (dy[i] * w - mg - xh * mgx);
    }
}
// sums of dy*xhat and dy over one (image, channel) plane
CPU_CLONES static void gn_param_sums(const float *dy, const float *x, int n, float m, float rs,
                                     double *sw, double *sb) {
    double a = 0.0, c = 0.0;
    #pragma omp simd reduction(+ : a, c)
    for (int i = 0; i < n; i++) {
        a += (double)dy[i] * ((x[i] - m) * rs);
        c += dy[i];
    }
    *sw += a;
    *sb += c;
}

void groupnorm_forward_cpu(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias,
                       int B, int C, int HW, int G, float eps) {
    // out, inp (B,C,HW); weight, bias (C) or NULL; mean, rstd (B,G)
    CHECK(B > 0 && C > 0 && HW > 0 && G > 0 && C % G == 0);
    const int CG = C / G;
    const size_t gsz = (size_t)CG * HW;
    #pragma omp parallel for collapse(2) schedule(static) if (PAR((int64_t)B * C * HW))
    for (int b = 0; b < B; b++) {
        for (int g = 0; g < G; g++) {
            const float *x = inp + ((size_t)b * C + (size_t)g * CG) * HW;
            double m = gn_sum(x, gsz) / (double)gsz;
            double v = gn_sqdev(x, gsz, m) / (double)gsz;
            double rs = 1.0 / sqrt(v + eps);
            mean[b * G + g] = (float)m;
            rstd[b * G + g] = (float)rs;
            float *y = out + ((size_t)b * C + (size_t)g * CG) * HW;
            for (int cc = 0; cc < CG; cc++) {
                int ch = g * CG + cc;
                gn_apply(y + (size_t)cc * HW, x + (size_t)cc * HW, HW, (float)m, (float)rs,
                         weight ? weight[ch] : 1.0f, bias ? bias[ch] : 0.0f);
            }
        }
    }
}

void groupnorm_backward_cpu(float *dinp, float *dweight, float *dbias,
                        const float *dout, const float *inp, const float *weight,
                        const float *mean, const float *rstd,
                        int B, int C, int HW, int G) {
    // dinp, dout, inp (B,C,HW); dweight, dbias, weight (C); mean, rstd (B,G)
    CHECK(B > 0 && C > 0 && HW > 0 && G > 0 && C % G == 0);
    const int CG = C / G;
    const size_t gsz = (size_t)CG * HW;
    if (dinp) {
        #pragma omp parallel for collapse(2) schedule(static) if (PAR((int64_t)B * C * HW))
        for (int b = 0; b < B; b++) {
            for (int g = 0; g < G; g++) {
                size_t off = ((size_t)b * C + (size_t)g * CG) * HW;
                const float *x = inp + off, *dy = dout + off;
                float m = mean[b * G + g], rs = rstd[b * G + g];
                double sg = 0.0, sgx = 0.0;
                for (int cc = 0; cc < CG; cc++)
                    gn_bwd_sums(dy + (size_t)cc * HW, x + (size_t)cc * HW, HW,
                                weight ? weight[g * CG + cc] : 1.0f, m, rs, &sg, &sgx);
                float mg = (float)(sg / gsz), mgx = (float)(sgx / gsz);
                float *dx = dinp + off;
                for (int cc = 0; cc < CG; cc++)
                    gn_bwd_dx(dx + (size_t)cc * HW, dy + (size_t)cc * HW, x + (size_t)cc * HW, HW,
                              weight ? weight[g * CG + cc] : 1.0f, m, rs, mg, mgx);
            }
        }
    }
    if (dweight || dbias) {
        #pragma omp parallel for schedule(static) if (PAR((int64_t)B * C * HW))
        for (int ch = 0; ch < C; ch++) {
            int g = ch / CG;
            double sw = 0.0, sb = 0.0;
            for (int b = 0; b < B; b++) {
                size_t off = ((size_t)b * C + ch) * HW;
                gn_param_sums(dout + off, inp + off, HW, mean[b * G + g], rstd[b * G + g], &sw,
                              &sb);
            }
            if (dweight) dweight[ch] += (float)sw;
            if (dbias) dbias[ch] += (float)sb;
        }
    }
}

// ---- layer norm ---------------------------------------------------------

void layernorm_forward_cpu(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, int N, int C, float eps) {
    // out, inp (N,C); weight, bias (C) or NULL; mean, rstd (N)
    CHECK(N >= 0 && C > 0);
    #pragma omp parallel for schedule(static) if (PAR((int64_t)N * C))
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        double s = 0.0;
        for (int i = 0; i < C; i++) s += x[i];
        double m = s / C, v = 0.0;
        for (int i = 0; i < C; i++) { double d = x[i] - m; v += d * d; }
        double rs = 1.0 / sqrt(v / C + eps);
        mean[n] = (float)m;
        rstd[n] = (float)rs;
        float mf = (float)m, rf = (float)rs;
        float *y = out + (size_t)n * C;
        for (int i = 0; i < C; i++) {
            float xh = (x[i] - mf) * rf;
            y[i] = xh * (weight ? weight[i] : 1.0f) + (bias ? bias[i] : 0.0f);
        }
    }
}

// Column reductions for the affine parameters: dweight += sum_n dout*xhat,
// dbias += sum_n dout. Channels are split in blocks across threads; rows are
// visited in order inside each block.
// One row's contribution to the per-channel sums (independent channels:
// the same bits in any vector width).
CPU_CLONES static void affine_row(double *sw, double *sb, const float *dy, const float *x,
                                  int n, float m, float rs) {
    #pragma omp simd
    for (int i = 0; i < n; i++) {
        sw[i] += (double)dy[i] * ((x[i] - m) * rs);
        sb[i] += dy[i];
    }
}
// The weight sums alone (RMSNorm: no bias, mean 0) of four consecutive rows
// (stride ld), added one after the other in each column: the additions and
// their order of four affine_row calls (x - 0 is x), sw loaded and stored
// once.
CPU_CLONES static void weight_rows4(double *sw, const float *dy, const float *x, size_t ld,
                                    int n, const float *rs) {
    #pragma omp simd
    for (int i = 0; i < n; i++) {
        double a = sw[i];
        a += (double)dy[i] * (x[i] * rs[0]);
        a += (double)dy[ld + i] * (x[ld + i] * rs[1]);
        a += (double)dy[2 * ld + i] * (x[2 * ld + i] * rs[2]);
        a += (double)dy[3 * ld + i] * (x[3 * ld + i] * rs[3]);
        sw[i] = a;
    }
}

static void affine_param_grads(float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *mean, const float *rstd,
                               int N, int C) {
    enum { CB = 64 };
    int nblk = (C + CB - 1) / CB;
    #pragma omp parallel for schedule(static) if (PAR((int64_t)N * C))
    for (int blk = 0; blk < nblk; blk++) {
        int c0 = blk * CB, c1 = c0 + CB < C ? c0 + CB : C;
        double sw[CB], sb[CB];
        for (int i = 0; i < CB; i++) { sw[i] = 0.0; sb[i] = 0.0; }
        int n = 0;
        if (!mean && !dbias)   // RMSNorm's weight gradient: four rows a call
            for (; n + 4 <= N; n += 4)
                weight_rows4(sw, dout + (size_t)n * C + c0, inp + (size_t)n * C + c0, (size_t)C,
                             c1 - c0, rstd + n);
        for (; n < N; n++)
            affine_row(sw, sb, dout + (size_t)n * C + c0, inp + (size_t)n * C + c0, c1 - c0,
                       mean ? mean[n] : 0.0f, rstd[n]);
        for (int i = c0; i < c1; i++) {
            if (dweight) dweight[i] += (float)sw[i - c0];
            if (dbias) dbias[i] += (float)sb[i - c0];
        }
    }
}

void layernorm_backward_cpu(float *dinp, float *dweight, float *dbias,
                        const float *dout, const float *inp, const float *weight,
                        const float *mean, const float *rstd, int N, int C) {
    // dinp, dout, inp (N,C); dweight, dbias, weight (C); mean, rstd (N)
    CHECK(N >= 0 && C > 0);
    if (dinp) {
        #pragma omp parallel for schedule(static) if (PAR((int64_t)N * C))
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
            float m = mean[n], rs = rstd[n];
            double sg = 0.0, sgx = 0.0;
            for (int i = 0; i < C; i++) {
                double gg = (double)dy[i] * (weight ? weight[i] : 1.0f);
                sg += gg;
                sgx += gg * ((x[i] - m) * rs);
            }
            float mg = (float)(sg / C), mgx = (float)(sgx / C);
            float *dx = dinp + (size_t)n * C;
            for (int i = 0; i < C; i++) {
                float xh = (x[i] - m) * rs;
                dx[i] += rs * (dy[i] * (weight ? weight[i] : 1.0f) - mg - xh * mgx);
            }
        }
    }
    if (dweight || dbias) affine_param_grads(dweight, dbias, dout, inp, mean, rstd, N, C);
}

// ---- RMS norm -----------------------------------------------------------
// The row helpers (rms_sumsq, rms_apply, rms_bwd_dot, rms_bwd_dx[_set]) are
// in nn/cpu/rms_rows.h, shared with the fused q/k norm + RoPE (nn/cpu/rope.c).

void rmsnorm_forward_cpu(float *out, float *rstd, const float *inp, const float *weight,
                     int N, int C, float eps) {
    // out, inp (N,C); weight (C) or NULL; rstd (N)
    CHECK(N >= 0 && C > 0);
    #pragma omp parallel for schedule(static) if (PAR((int64_t)N * C))
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float rs = (float)(1.0 / sqrt(rms_sumsq(x, C) / C + eps));
        rstd[n] = rs;
        rms_apply(out + (size_t)n * C, x, C, rs, weight);
    }
}

// set: dinp = (rmsnorm_backward_set) instead of +=; dweight accumulates.
static void rms_bwd(float *dinp, float *dweight, const float *dout, const float *inp,
                    const float *weight, const float *rstd, int N, int C, int set) {
    // dinp, dout, inp (N,C); dweight, weight (C); rstd (N)
    CHECK(N >= 0 && C > 0);
    if (dinp) {
        #pragma omp parallel for schedule(static) if (PAR((int64_t)N * C))
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
            float rs = rstd[n];
            float mgx = (float)(rms_bwd_dot(dy, x, weight, C, rs) / C);
            if (set) rms_bwd_dx_set(dinp + (size_t)n * C, dy, x, weight, C, rs, mgx);
            else rms_bwd_dx(dinp + (size_t)n * C, dy, x, weight, C, rs, mgx);
        }
    }
    if (dweight) affine_param_grads(dweight, NULL, dout, inp, NULL, rstd, N, C);
}

void rmsnorm_backward_cpu(float *dinp, float *dweight, const float *dout, const float *inp,
                          const float *weight, const float *rstd, int N, int C) {
    rms_bwd(dinp, dweight, dout, inp, weight, rstd, N, C, 0);
}
void rmsnorm_backward_set_cpu(float *dinp, float *dweight, const float *dout, const float *inp,
                              const float *weight, const float *rstd, int N, int C) {
    rms_bwd(dinp, dweight, dout, inp, weight, rstd, N, C, 1);
}
