// shape_ops.c: CPU nearest x2 upsample, zero padding and channel
// concat/split (see nn/shape_ops.h). Pure data movement; every backward
// element is summed by one thread in a fixed order.
#include "nn/cpu/ops.h"
#include "nn/cpu/par.h"

#include <string.h>

#include "core/base.h"

void upsample2x_forward_cpu(float *out, const float *inp, int B, int C, int H, int W) {
    // out (B,C,2H,2W), inp (B,C,H,W)
    CHECK(B >= 0 && C > 0 && H > 0 && W > 0);
    const int OW = 2 * W;
    #pragma omp parallel for collapse(2) schedule(static) if (PAR((int64_t)B * C * H * W * 4))
    for (int p = 0; p < B * C; p++) {
        for (int h = 0; h < H; h++) {
            const float *x = inp + ((size_t)p * H + h) * W;
            float *y = out + ((size_t)p * 2 * H + 2 * h) * OW;
            for (int w = 0; w < W; w++) y[2 * w] = y[2 * w + 1] = x[w];
            memcpy(y + OW, y, sizeof(float) * OW);
        }
    }
}

void upsample2x_backward_cpu(float *dinp, const float *dout, int B, int C, int H, int W) {
    // dinp (B,C,H,W), dout (B,C,2H,2W)
    CHECK(B >= 0 && C > 0 && H > 0 && W > 0);
    const int OW = 2 * W;
    #pragma omp parallel for collapse(2) schedule(static) if (PAR((int64_t)B * C * H * W * 4))
    for (int p = 0; p < B * C; p++) {
        for (int h = 0; h < H; h++) {
            float *dx = dinp + ((size_t)p * H + h) * W;
            const float *d0 = dout + ((size_t)p * 2 * H + 2 * h) * OW, *d1 = d0 + OW;
            for (int w = 0; w < W; w++)
                dx[w] += (d0[2 * w] + d0[2 * w + 1]) + (d1[2 * w] + d1[2 * w + 1]);
        }
    }
}

void pad2d_forward_cpu(float *out, const float *inp, int B, int C, int H, int W,
                   int pt, int pb, int pl, int pr) {
    // out (B,C,H+pt+pb,W+pl+pr), inp (B,C,H,W)
    CHECK(B >= 0 && C > 0 && H > 0 && W > 0 && pt >= 0 && pb >= 0 && pl >= 0 && pr >= 0);
    const int OH = H + pt + pb, OW = W + pl + pr;
    #pragma omp parallel for schedule(static) if (PAR((int64_t)B * C * H * W))
    for (int p = 0; p < B * C; p++) {
        float *y = out + (size_t)p * OH * OW;
        const float *x = inp + (size_t)p * H * W;
        memset(y, 0, sizeof(float) * OW * pt);
        for (int h = 0; h < H; h++) {
            float *yr = y + (size_t)(h + pt) * OW;
            memset(yr, 0, sizeof(float) * pl);
            memcpy(yr + pl, x + (size_t)h * W, sizeof(float) * W);
            memset(yr + pl + W, 0, sizeof(float) * pr);
        }
        memset(y + (size_t)(pt + H) * OW, 0, sizeof(float) * OW * pb);
    }
}

void pad2d_backward_cpu(float *dinp, const float *dout, int B, int C, int H, int W,
                    int pt, int pb, int pl, int pr) {
    // dinp (B,C,H,W), dout (B,C,H+pt+pb,W+pl+pr)
    CHECK(B >= 0 && C > 0 && H > 0 && W > 0 && pt >= 0 && pb >= 0 && pl >= 0 && pr >= 0);
    const int OH = H + pt + pb, OW = W + pl + pr;
    #pragma omp parallel for schedule(static) if (PAR((int64_t)B * C * H * W))
    for (int p = 0; p < B * C; p++) {
        const float *dy = dout + (size_t)p * OH * OW;
        float *dx = dinp + (size_t)p * H * W;
        for (int h = 0; h < H; h++)
            for (int w = 0; w < W; w++)
                dx[(size_t)h * W + w] += dy[(size_t)(h + pt) * OW + pl + w];
    }
}

void concat_channels_forward_cpu(float *out, const float *a, const float *b,
                             int B, int Ca, int Cb, int HW) {
    // out (B,Ca+Cb,HW), a (B,Ca,HW), b (B,Cb,HW)
    CHECK(B >= 0 && Ca >= 0 && Cb >= 0 && HW > 0);
    const size_t na = (size_t)Ca * HW, nb = (size_t)Cb * HW;
    #pragma omp parallel for schedule(static) if (PAR((int64_t)B * (na + nb)))
    for (int i = 0; i < B; i++) {
        memcpy(out + i * (na + nb), a + i * na, sizeof(float) * na);
        memcpy(out + i * (na + nb) + na, b + i * nb, sizeof(float) * nb);
    }
}

void concat_channels_backward_cpu(float *da, float *db, const float *dout,
                              int B, int Ca, int Cb, int HW) {
    // da (B,Ca,HW), db (B,Cb,HW), dout (B,Ca+Cb,HW)
    CHECK(B >= 0 && Ca >= 0 && Cb >= 0 && HW > 0);
    const size_t na = (size_t)Ca * HW, nb = (size_t)Cb * HW;
    #pragma omp parallel for schedule(static) if (PAR((int64_t)B * (na + nb)))
    for (int i = 0; i < B; i++) {
        const float *d = dout + i * (na + nb);
        if (da) for (size_t k = 0; k < na; k++) da[i * na + k] += d[k];
        if (db) for (size_t k = 0; k < nb; k++) db[i * nb + k] += d[na + k];
    }
}

void split_channels_forward_cpu(float *a, float *b, const float *inp,
                            int B, int Ca, int Cb, int HW) {
    // a (B,Ca,HW), b (B,Cb,HW), inp (B,Ca+Cb,HW)
    CHECK(B >= 0 && Ca >= 0 && Cb >= 0 && HW > 0);
    const size_t na = (size_t)Ca * HW, nb = (size_t)Cb * HW;
    #pragma omp parallel for schedule(static) if (PAR((int64_t)B * (na + nb)))
    for (int i = 0; i < B; i++) {
        if (a) memcpy(a + i * na, inp + i * (na + nb), sizeof(float) * na);
        if (b) memcpy(b + i * nb, inp + i * (na + nb) + na, sizeof(float) * nb);
    }
}

void split_channels_backward_cpu(float *dinp, const float *da, const float *db,
                             int B, int Ca, int Cb, int HW) {
    // dinp (B,Ca+Cb,HW), da (B,Ca,HW) or NULL, db (B,Cb,HW) or NULL
    CHECK(B >= 0 && Ca >= 0 && Cb >= 0 && HW > 0);
    const size_t na = (size_t)Ca * HW, nb = (size_t)Cb * HW;
    #pragma omp parallel for schedule(static) if (PAR((int64_t)B * (na + nb)))
    for (int i = 0; i < B; i++) {
        float *d = dinp + i * (na + nb);
        if (da) for (size_t k = 0; k < na; k++) d[k] += da[i * na + k];
        if (db) for (size_t k = 0; k < nb; k++) d[na + k] += db[i * nb + k];
    }
}
