// rows.c: CPU strided row copies (see nn/rows.h). Each output row is written
// by one thread, so the thread count never changes a result.
#include <stdint.h>
#include <string.h>

#include "core/base.h"
#include "nn/cpu/ops.h"
#include "nn/cpu/par.h"

void rows_copy_forward_cpu(float *out, const float *inp, int N, int W, int out_stride,
                           int inp_stride) {
    // out (N, out_stride), inp (N, inp_stride); columns [0, W) copied
    CHECK(N >= 0 && W >= 0 && out_stride >= W && inp_stride >= W);
    #pragma omp parallel for schedule(static) if (PAR((int64_t)N * W))
    for (int n = 0; n < N; n++)
        memcpy(out + (size_t)n * out_stride, inp + (size_t)n * inp_stride, sizeof(float) * W);
}

void rows_copy_backward_cpu(float *dinp, const float *dout, int N, int W, int out_stride,
                            int inp_stride) {
    // dinp (N, inp_stride), dout (N, out_stride); columns [0, W) accumulated
    CHECK(N >= 0 && W >= 0 && out_stride >= W && inp_stride >= W);
    #pragma omp parallel for schedule(static) if (PAR((int64_t)N * W))
    for (int n = 0; n < N; n++) {
        float *d = dinp + (size_t)n * inp_stride;
        const float *g = dout + (size_t)n * out_stride;
        for (int j = 0; j < W; j++) d[j] += g[j];
    }
}
