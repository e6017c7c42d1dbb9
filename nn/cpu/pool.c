// pool.c: CPU pooling (see nn/pool.h). Plain loops over output elements;
// the tap window is clipped to the input once per output, so padding costs
// nothing and never enters a max.
#include "nn/pool.h"

#include <float.h>

#include "core/base.h"
#include "nn/cpu/ops.h"
#include "nn/cpu/par.h"

static void check_cfg(int H, int W, int k, int stride, int pad) {
    CHECK(k >= 1 && stride >= 1 && pad >= 0 && 2 * pad <= k && H + 2 * pad >= k &&
          W + 2 * pad >= k);
}

enum { POOL_MAX, POOL_AVG_ALL, POOL_AVG_INSIDE };

// out (B, C, OH, OW), inp (B, C, H, W)
static void pool2d(float *out, const float *inp, int B, int C, int H, int W, int k, int stride,
                   int pad, int mode) {
    check_cfg(H, W, k, stride, pad);
    const int OH = pool2d_out_size(H, k, stride, pad), OW = pool2d_out_size(W, k, stride, pad);
    // One plane per task (each output written by one thread: same bits for
    // any thread count).
    #pragma omp parallel for schedule(static) if (PAR((int64_t)B * C * OH * OW * k * k))
    for (long bc = 0; bc < (long)B * C; bc++) {
        const float *x = inp + bc * H * W;
        float *y = out + bc * OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            int h0 = oh * stride - pad, h1 = h0 + k;
            if (h0 < 0) h0 = 0;
            if (h1 > H) h1 = H;
            for (int ow = 0; ow < OW; ow++) {
                int w0 = ow * stride - pad, w1 = w0 + k;
                if (w0 < 0) w0 = 0;
                if (w1 > W) w1 = W;
                float m = -FLT_MAX, s = 0.0f;
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++) {
                        float v = x[h * W + w];
                        m = v > m ? v : m;
                        s += v;
                    }
                // PyTorch divides the float sum by the count (no reciprocal).
                y[oh * OW + ow] = mode == POOL_MAX       ? m
                                  : mode == POOL_AVG_ALL ? s / (float)(k * k)
                                                         : s / (float)((h1 - h0) * (w1 - w0));
            }
        }
    }
}

void maxpool2d_forward_cpu(float *out, const float *inp, int B, int C, int H, int W, int k,
                           int stride, int pad) {
    pool2d(out, inp, B, C, H, W, k, stride, pad, POOL_MAX);
}

void avgpool2d_forward_cpu(float *out, const float *inp, int B, int C, int H, int W, int k,
                           int stride, int pad, int count_include_pad) {
    pool2d(out, inp, B, C, H, W, k, stride, pad, count_include_pad ? POOL_AVG_ALL : POOL_AVG_INSIDE);
}

void pool_global_avg_cpu(float *out, const float *inp, int B, int C, int HW) {
    // out (B, C), inp (B, C, HW)
    CHECK(HW >= 1);
    for (long bc = 0; bc < (long)B * C; bc++) {
        double s = 0;
        for (int i = 0; i < HW; i++) s += inp[bc * HW + i];
        out[bc] = (float)(s / HW);
    }
}
