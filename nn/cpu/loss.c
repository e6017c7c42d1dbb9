// loss.c: CPU reconstruction losses (see nn/loss.h): MSE, L1, cosine.
// Values are summed in double with a fixed chunking (reduce.h).
#include "nn/cpu/ops.h"
#include "nn/cpu/par.h"

#include <math.h>

#include "core/base.h"
#include "nn/cpu/reduce.h"

#define COS_EPS 1e-8   // PyTorch F.cosine_similarity default

double mse_loss_forward_cpu(const float *pred, const float *target, int64_t n) {
    CHECK(n > 0);
    double s;
    FIXED_ORDER_SUM(s, n, i, ((double)pred[i] - target[i]) * ((double)pred[i] - target[i]));
    return s / (double)n;
}

void mse_loss_backward_cpu(float *dpred, float *dtarget, const float *pred,
                       const float *target, int64_t n, float dloss) {
    CHECK(n > 0);
    const float k = (float)(2.0 * dloss / (double)n);
    #pragma omp parallel for schedule(static) if (PAR(n))
    for (int64_t i = 0; i < n; i++) {
        float g = k * (pred[i] - target[i]);
        if (dpred) dpred[i] += g;
        if (dtarget) dtarget[i] -= g;
    }
}

double l1_loss_forward_cpu(const float *pred, const float *target, int64_t n) {
    CHECK(n > 0);
    double s;
    FIXED_ORDER_SUM(s, n, i, fabs((double)pred[i] - target[i]));
    return s / (double)n;
}

void l1_loss_backward_cpu(float *dpred, float *dtarget, const float *pred,
                      const float *target, int64_t n, float dloss) {
    CHECK(n > 0);
    const float k = (float)(dloss / (double)n);
    #pragma omp parallel for schedule(static) if (PAR(n))
    for (int64_t i = 0; i < n; i++) {
        float d = pred[i] - target[i];
        float g = d > 0.0f ? k : (d < 0.0f ? -k : 0.0f);
        if (dpred) dpred[i] += g;
        if (dtarget) dtarget[i] -= g;
    }
}

// Dot product and the two norms along C at position (o, j), in double.
static void cos_parts(const float *x, const float *y, int C, int inner,
                      double *dot, double *nx, double *ny) {
    double d = 0, a = 0, b = 0;
    for (int c = 0; c < C; c++) {
        double xv = x[(size_t)c * inner], yv = y[(size_t)c * inner];
        d += xv * yv; a += xv * xv; b += yv * yv;
    }
    *dot = d; *nx = sqrt(a); *ny = sqrt(b);
}

static double cos_term(const float *pred, const float *target, int C, int inner, int64_t pos) {
    int64_t o = pos / inner, j = pos % inner;
    size_t base = (size_t)o * C * inner + j;
    double d, nx, ny;
    cos_parts(pred + base, target + base, C, inner, &d, &nx, &ny);
    return 1.0 - d / (fmax(nx, COS_EPS) * fmax(ny, COS_EPS));
}

double cosine_loss_forward_cpu(const float *pred, const float *target,
                           int outer, int C, int inner) {
    CHECK(outer > 0 && C > 0 && inner > 0);
    const int64_t P = (int64_t)outer * inner;
    double s;
    FIXED_ORDER_SUM(s, P, q, cos_term(pred, target, C, inner, q));
    return s / (double)P;
}

void cosine_loss_backward_cpu(float *dpred, float *dtarget, const float *pred,
                          const float *target, int outer, int C, int inner, float dloss) {
    CHECK(outer > 0 && C > 0 && inner > 0);
    const int64_t P = (int64_t)outer * inner;
    const double k = (double)dloss / (double)P;
    // L = 1 - dot/(nx' ny'), nx' = max(|x|, eps). Where |x| > eps:
    // dcos/dx = y/(nx ny) - cos * x / nx^2; where |x| <= eps the clamp is
    // constant and dcos/dx = y/(eps ny). Same for y by symmetry.
    #pragma omp parallel for schedule(static) if (PAR((int64_t)P * C))
    for (int64_t q = 0; q < P; q++) {
        int64_t o = q / inner, j = q % inner;
        size_t base = (size_t)o * C * inner + j;
        const float *x = pred + base, *y = target + base;
        double d, nx, ny;
        cos_parts(x, y, C, inner, &d, &nx, &ny);
        double cx = fmax(nx, COS_EPS), cy = fmax(ny, COS_EPS), cs = d / (cx * cy);
        double ax = nx > COS_EPS ? cs / (cx * cx) : 0.0;
        double ay = ny > COS_EPS ? cs / (cy * cy) : 0.0;
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)c * inner;
            if (dpred) dpred[base + i] += (float)(-k * (y[i] / (cx * cy) - ax * x[i]));
            if (dtarget) dtarget[base + i] += (float)(-k * (x[i] / (cx * cy) - ay * y[i]));
        }
    }
}
