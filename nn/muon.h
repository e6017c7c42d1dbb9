// muon.h: the orthogonalisation at the heart of Muon (Keller Jordan's
// reference implementation): a quintic Newton-Schulz iteration that maps a
// 2-D update G to roughly U V^T of its SVD (singular values pushed towards 1).
//
// Exact choices (the reference does the same unless noted):
//   X = G / (||G||_F + 1e-7), the norm accumulated in double;
//   if rows > cols, work on X^T (so X X^T is the small Gram matrix);
//   `steps` times: A = X X^T; B = b A + c A A; X = a X + B X
//     with (a, b, c) = (3.4445, -4.7750, 2.0315);
//   transpose back. fp32 throughout (the reference runs in bf16); matmuls via
//   nn/matmul.h on the CPU. The quintic is tuned for speed, not convergence: singular
//   values end up spread around 1 (measured in tests/nn/test_muon.c), which
//   is what Muon wants.
// The optimizer step (momentum, aspect-ratio scale, decay) is in nn/optim.c.
#ifndef NN_MUON_H
#define NN_MUON_H

#include <stdint.h>

#define MUON_NS_A 3.4445f
#define MUON_NS_B (-4.7750f)
#define MUON_NS_C 2.0315f

// Floats of scratch muon_newton_schulz needs for a rows x cols matrix.
int64_t muon_ns_scratch_floats(int64_t rows, int64_t cols);

// out (rows, cols) = NS_steps(g (rows, cols)); out may equal g.
// scratch holds muon_ns_scratch_floats(rows, cols) floats.
void muon_newton_schulz(float *out, const float *g, int64_t rows, int64_t cols, int steps,
                        float *scratch);

#endif
