// patchify.c: latents (B,C,H,W) <-> tokens (B,T,D), D = p*p*C, in either
// feature order of nn/shape_ops.h. Every op is a permutation, so each one is
// a single index map walked in one direction; the backward of patchify is an
// accumulating unpatchify and vice versa.
#include "nn/cpu/ops.h"
#include "nn/cpu/par.h"

#include <stddef.h>

#include "core/base.h"

// Visits every (latent index, token index) pair of the permutation.
// dir 0: tok[t] (op)= lat[l]; dir 1: lat[l] (op)= tok[t]; acc: += instead of =.
static void permute(float *dst, const float *src, int B, int C, int H, int W, int p,
                    patch_order order, int to_tokens, int acc) {
    CHECK(B >= 0 && C > 0 && p > 0 && H > 0 && W > 0 && H % p == 0 && W % p == 0);
    CHECK(order == PATCH_CPQ || order == PATCH_PQC);
    const int hp = H / p, wp = W / p, T = hp * wp, D = p * p * C;
    // One thread per (image, token): it owns the token's D features and the
    // p x p x C latent cells of that patch, so no two threads touch one cell.
    #pragma omp parallel for collapse(2) schedule(static) if (PAR((int64_t)B * C * H * W))
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            int ty = t / wp, tx = t % wp;
            size_t tok0 = ((size_t)b * T + t) * D;
            for (int c = 0; c < C; c++) {
                for (int i = 0; i < p; i++) {
                    for (int j = 0; j < p; j++) {
                        size_t l = (((size_t)b * C + c) * H + ty * p + i) * W + tx * p + j;
                        size_t f = order == PATCH_CPQ ? (size_t)(c * p + i) * p + j
                                                      : (size_t)(i * p + j) * C + c;
                        size_t k = tok0 + f;
                        if (to_tokens) { if (acc) dst[k] += src[l]; else dst[k] = src[l]; }
                        else           { if (acc) dst[l] += src[k]; else dst[l] = src[k]; }
                    }
                }
            }
        }
    }
}

void patchify_forward_cpu(float *out, const float *inp, int B, int C, int H, int W,
                      int p, patch_order order) {
    // out (B, H/p*W/p, p*p*C), inp (B,C,H,W)
    permute(out, inp, B, C, H, W, p, order, 1, 0);
}
void patchify_backward_cpu(float *dinp, const float *dout, int B, int C, int H, int W,
                       int p, patch_order order) {
    // dinp (B,C,H,W), dout (B,T,D)
    permute(dinp, dout, B, C, H, W, p, order, 0, 1);
}
void unpatchify_forward_cpu(float *out, const float *inp, int B, int C, int H, int W,
                        int p, patch_order order) {
    // out (B,C,H,W), inp (B,T,D)
    permute(out, inp, B, C, H, W, p, order, 0, 0);
}
void unpatchify_backward_cpu(float *dinp, const float *dout, int B, int C, int H, int W,
                         int p, patch_order order) {
    // dinp (B,T,D), dout (B,C,H,W)
    permute(dinp, dout, B, C, H, W, p, order, 1, 1);
}
