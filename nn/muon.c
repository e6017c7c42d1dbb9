// muon.c: quintic Newton-Schulz orthogonalisation (see muon.h).
#include "nn/muon.h"

#include <math.h>
#include <string.h>

#include "core/base.h"
#include "nn/backend.h"
#include "nn/matmul.h"
#ifdef VEL_HAVE_CUDA
#include "nn/cuda/ops.h"
#endif

// X and its next iterate (r x c each, r = min dim) and A, B (r x r).
int64_t muon_ns_scratch_floats(int64_t rows, int64_t cols) {
    int64_t r = rows < cols ? rows : cols;
    return 2 * rows * cols + 2 * r * r;
}

void muon_newton_schulz(float *out, const float *g, int64_t rows, int64_t cols, int steps,
                        float *scratch) {
    // out (rows,cols), g (rows,cols); scratch: X (r,c), Xn (r,c), A (r,r), B (r,r)
    CHECK(rows > 0 && cols > 0 && steps >= 0);
    int w = NN_WHERE(out, g, scratch);
    if (w == NN_DEVICE) NN_CUDA(muon_newton_schulz_cuda(NN_CTX, out, g, rows, cols, steps, scratch));
    if (w != NN_HOST) return;
    const int tr = rows > cols;
    const int64_t r = tr ? cols : rows, c = tr ? rows : cols;
    float *X = scratch, *Xn = X + r * c, *A = Xn + r * c, *B = A + r * r;

    double ss = 0;
    for (int64_t i = 0; i < rows * cols; i++) ss += (double)g[i] * g[i];
    const float inv = (float)(1.0 / (sqrt(ss) + 1e-7));
    if (tr) {
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++) X[j * rows + i] = g[i * cols + j] * inv;
    } else {
        for (int64_t i = 0; i < rows * cols; i++) X[i] = g[i] * inv;
    }
    const int R = (int)r, C = (int)c;
    for (int s = 0; s < steps; s++) {
        // A = X X^T
        matmul_batched(1, 0, 1, R, R, C, 1.0f, X, C, 0, X, C, 0, 0.0f, A, R, 0);
        // B = b A + c A A
        for (int64_t i = 0; i < r * r; i++) B[i] = MUON_NS_B * A[i];
        matmul_batched(1, 0, 0, R, R, R, MUON_NS_C, A, R, 0, A, R, 0, 1.0f, B, R, 0);
        // Xn = a X + B X
        for (int64_t i = 0; i < r * c; i++) Xn[i] = MUON_NS_A * X[i];
        matmul_batched(1, 0, 0, R, C, R, 1.0f, B, R, 0, X, C, 0, 1.0f, Xn, C, 0);
        float *t = X; X = Xn; Xn = t;
    }
    if (tr) {
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++) out[i * cols + j] = X[j * rows + i];
    } else {
        memcpy(out, X, (size_t)(r * c) * sizeof(float));
    }
}
