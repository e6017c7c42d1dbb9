// shape_ops.h: data movement ops with gradients: nearest x2 upsample, zero
// padding (the VAE downsample pads right/bottom by 1; conv2d can also take
// that padding directly), channel concat/split (NCHW along C), and
// patchify/unpatchify between latents (B, C, H, W) and tokens (B, T, D).
// CPU implementation in nn/cpu/shape_ops.c and nn/cpu/patchify.c.
// Not here: position embeddings (nn-transformer), general permutes.
//
// Backward ACCUMULATES (+=) into every gradient it writes; NULL = not needed.
// No op here may run in place.
#ifndef NN_SHAPE_OPS_H
#define NN_SHAPE_OPS_H

// out (B, C, 2H, 2W), inp (B, C, H, W): out[2h+i][2w+j] = inp[h][w].
void upsample2x_forward(float *out, const float *inp, int B, int C, int H, int W);
// dinp (B, C, H, W) += sum of the four dout cells each input cell fed.
void upsample2x_backward(float *dinp, const float *dout, int B, int C, int H, int W);

// Zero padding: out (B, C, H+pt+pb, W+pl+pr), inp (B, C, H, W); pads >= 0.
void pad2d_forward(float *out, const float *inp, int B, int C, int H, int W,
                   int pt, int pb, int pl, int pr);
void pad2d_backward(float *dinp, const float *dout, int B, int C, int H, int W,
                    int pt, int pb, int pl, int pr);

// out (B, Ca+Cb, HW) = [a (B, Ca, HW), b (B, Cb, HW)] along C.
void concat_channels_forward(float *out, const float *a, const float *b,
                             int B, int Ca, int Cb, int HW);
void concat_channels_backward(float *da, float *db, const float *dout,
                              int B, int Ca, int Cb, int HW);
// a (B, Ca, HW), b (B, Cb, HW) = split of inp (B, Ca+Cb, HW) along C (e.g.
// encoder moments -> mu, logvar). Either output may be NULL (not wanted).
void split_channels_forward(float *a, float *b, const float *inp,
                            int B, int Ca, int Cb, int HW);
void split_channels_backward(float *dinp, const float *da, const float *db,
                             int B, int Ca, int Cb, int HW);

// Token feature order inside one p x p patch, D = p*p*C:
//  PATCH_CPQ: index c*p*p + i*p + j, the im2col order of a Conv2d with
//             kernel = stride = p, so LightningDiT's patch embed (conv, then
//             flatten(2).transpose(1,2)) equals linear_forward on these tokens
//             with the conv weight (D_model, C, p, p) viewed as (D_model, C*p*p).
//  PATCH_PQC: index (i*p + j)*C + c, DiT's final-layer order: unpatchify is
//             x.reshape(N, h, w, p, p, C) -> einsum('nhwpqc->nchpwq').
// Tokens are row-major over the (H/p, W/p) grid: t = hp*(W/p) + wp.
typedef enum { PATCH_CPQ = 0, PATCH_PQC = 1 } patch_order;

// out tokens (B, T, D), inp latent (B, C, H, W); H, W divisible by p.
void patchify_forward(float *out, const float *inp, int B, int C, int H, int W,
                      int p, patch_order order);
void patchify_backward(float *dinp, const float *dout, int B, int C, int H, int W,
                       int p, patch_order order);
// out latent (B, C, H, W), inp tokens (B, T, D): the exact inverse of patchify.
void unpatchify_forward(float *out, const float *inp, int B, int C, int H, int W,
                        int p, patch_order order);
void unpatchify_backward(float *dinp, const float *dout, int B, int C, int H, int W,
                         int p, patch_order order);

#endif
