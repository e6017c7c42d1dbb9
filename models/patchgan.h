// patchgan.h: the PatchGAN discriminator of LDM / taming-transformers
// (NLayerDiscriminator, SPEC section 3) with its hinge loss and LDM's
// adaptive generator weight.
//
// Layout for n_layers = 3, ndf = 64 (PyTorch state-dict names in brackets):
//   conv4x4 s2 p1 in->64, bias            [main.0.weight, main.0.bias]  + LeakyReLU 0.2
//   conv4x4 s2 p1 64->128, no bias        [main.2.weight]
//     BatchNorm [main.3.weight, .bias, .running_mean, .running_var] + LeakyReLU 0.2
//   conv4x4 s2 p1 128->256, no bias       [main.5.weight]  + BN [main.6.*] + LReLU
//   conv4x4 s1 p1 256->512, no bias       [main.8.weight]  + BN [main.9.*] + LReLU
//   conv4x4 s1 p1 512->1, bias            [main.11.weight, main.11.bias]
// Widths ndf * min(2^n, 8). A 32x32 input gives (B, 1, 2, 2) logits; 256x256
// gives 30x30. BatchNorm runs in training mode (batch statistics, eps 1e-5)
// on every forward, as the PyTorch module does under model.train(); each
// forward with update_running = 1 moves the running statistics (momentum
// 0.1, unbiased variance). The running statistics live in the parameter
// table (so they are checkpointed with the weights); their gradients are
// always zero, so Adam leaves them unchanged. PyTorch's num_batches_tracked
// (an int64 counter unused with a fixed momentum) is not kept.
//
// Ownership: patchgan_create allocates everything (parameters, activations,
// their gradients, conv scratch) for batches up to Bmax; nothing is
// allocated in forward/backward. Not here: the training loop (stages/train).
#ifndef MODELS_PATCHGAN_H
#define MODELS_PATCHGAN_H

#include <stdint.h>

#include "nn/conv.h"
#include "nn/params.h"

#define PATCHGAN_MAX_LAYERS 8

typedef struct {
    int in_ch;      // image channels
    int ndf;        // first layer width (64)
    int n_layers;   // 3 (LDM); 1..6
} patchgan_config;

typedef struct {
    conv2d_cfg conv;      // B set per call
    int pw, pb;           // conv weight / bias param indices (pb -1: no bias)
    int bw, bb, rm, rv;   // BN weight, bias, running mean, running var (-1: no BN)
    int act;              // LeakyReLU 0.2 after
    int64_t in_per, y_per;         // floats per sample: input, conv output
    float *y, *n, *a;     // conv out, BN out (or NULL), activation out (or NULL)
    float *dy, *dn, *da;  // their gradients
    float *mean, *rstd;   // BN batch statistics (C)
} patchgan_layer;

typedef struct {
    patchgan_config cfg;
    param_table pt;
    int Bmax, H, W;
    int nl;                          // conv layers (n_layers + 2)
    patchgan_layer L[PATCHGAN_MAX_LAYERS];
    float *x;                        // (Bmax, in_ch, H, W) copy of the last input
    float *mem, *scratch;
    int out_c, out_h, out_w;         // logits per sample (1, out_h, out_w)
} patchgan;

// Returns 0, VEL_EINVAL (bad config or an input too small for the layers) or
// VEL_ENOMEM. Parameters are zero until patchgan_init_params or a load.
int patchgan_create(patchgan **out, const patchgan_config *cfg, int Bmax, int H, int W);
void patchgan_destroy(patchgan **d);
// LDM's weights_init: conv weights N(0, 0.02), BN weight N(1, 0.02), biases
// 0, running mean 0 and var 1; Philox-seeded (stream 100 + parameter index).
void patchgan_init_params(patchgan *d, uint64_t seed);
// Logits per sample.
int64_t patchgan_out_per(const patchgan *d);

// x (B, in_ch, H, W) -> logits (B, 1, out_h, out_w), owned by d and valid
// until the next forward. Keeps the activations for patchgan_backward.
const float *patchgan_forward(patchgan *d, const float *x, int B, int update_running);
// Backward of the last forward: dlogits (B, 1, out_h, out_w) -> dx (B, in_ch,
// H, W) += (NULL: not needed); parameter gradients += into d->pt.grads when
// param_grads is nonzero (else the weight gradients are not computed).
void patchgan_backward(patchgan *d, float *dx, const float *dlogits, int B, int param_grads);

// Hinge discriminator loss 0.5 * (mean(relu(1 - real)) + mean(relu(1 + fake)))
// over n logits each; dreal, dfake (n) += its gradient (either may be NULL).
double hinge_d_loss(float *dreal, float *dfake, const float *real, const float *fake, int64_t n);
// One half of it (real = 1: 0.5*mean(relu(1 - l)); real = 0: 0.5*mean(relu(1 + l))),
// dlogits += its gradient (or NULL), for when D sees the two batches apart.
double hinge_d_loss_part(float *dlogits, const float *logits, int64_t n, int real);
// Generator loss -mean(fake); dfake (n) += -scale / n.
double gan_g_loss(float *dfake, const float *fake, int64_t n, float scale);
// LDM's adaptive weight: ||g_rec|| / (||g_gan|| + 1e-4) clamped to [0, 1e4],
// times disc_weight (norms in double over n floats, the gradients of the
// reconstruction loss and of the generator loss w.r.t. the decoder's last
// layer weight).
double gan_adaptive_weight(const float *g_rec, const float *g_gan, int64_t n, double disc_weight);

#endif
