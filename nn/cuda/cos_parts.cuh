// cos_parts.cuh: the dot product and the two norms along C at one position of
// an (outer, C, inner) view, in double, as nn/cpu/loss.c's cos_parts: shared
// by the cosine loss gradient (loss.cu) and its value (flow_loss.cu). C++
// only. x, y point at channel 0 of the position; channels are inner apart.
#ifndef NN_CUDA_COS_PARTS_CUH
#define NN_CUDA_COS_PARTS_CUH

#define COS_EPS 1e-8   // PyTorch F.cosine_similarity's default, as nn/cpu/loss.c

static __device__ __forceinline__ void cos_parts_dev(const float *x, const float *y, int C, int inner,
                                                     double *dot, double *nx, double *ny) {
    double d = 0, a = 0, b = 0;
    for (int c = 0; c < C; c++) {
        double xv = x[(int64_t)c * inner], yv = y[(int64_t)c * inner];
        d += xv * yv;
        a += xv * xv;
        b += yv * yv;
    }
    *dot = d;
    *nx = sqrt(a);
    *ny = sqrt(b);
}

#endif
