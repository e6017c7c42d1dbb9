// vae.h: the LDM / VA-VAE convolutional autoencoder (SPEC section 3): encoder
// -> moments (mu, logvar) through quant_conv, decoder from z through
// post_quant_conv; configurable channels, multipliers, blocks and attention
// resolutions; parameters named as CompVis checkpoints name them
// (encoder.conv_in.weight, encoder.down.0.block.0.norm1.weight, ...,
// quant_conv.weight, post_quant_conv.weight, decoder.up.N...), so a
// safetensors export of a CompVis/VA-VAE state dict loads by name.
// Also the tokenizer's training loss (L1 + beta*KL, or L1 + VE terms).
// Not here: the discriminator, the optimizer loop and checkpoints (stages/).
//
// Layout as CompVis Encoder/Decoder: encoder levels i = 0..L-1 with
// num_res_blocks ResnetBlocks each (attention after each block when the
// level's resolution is listed), Downsample after every level but the last;
// mid = block_1, attn_1, block_2; norm_out, swish, conv_out -> 2*z channels.
// The decoder mirrors it with num_res_blocks + 1 blocks per level (so
// num_res_blocks 2 gives VA-VAE's "3 in the decoder") and Upsample before
// each level but level 0 (decoder.up.{i}.upsample, i = L-1 .. 1).
#ifndef MODELS_VAE_H
#define MODELS_VAE_H

#include <stdint.h>

#include "models/vae_blocks.h"
#include "nn/loss.h"
#include "nn/params.h"

#define VAE_MAX_LEVELS 6
#define VAE_MAX_ATTN 4

typedef struct {
    char name[32];
    int in_ch, out_ch;         // image channels (1 Fashion-MNIST, 3 RGB)
    int resolution;            // input side
    int ch;                    // base channels
    int nlevels;
    int ch_mult[VAE_MAX_LEVELS];
    int num_res_blocks;
    int attn_res[VAE_MAX_ATTN];  // resolutions with attention after each block
    int nattn;
    int z_channels;            // embed_dim = z_channels (quant convs 2z->2z, z->z)
    int groups;                // GroupNorm groups (32)
} vae_config;

// Presets: "f16d32" (VA-VAE ImageNet 256: ch 128, mult 1,1,2,2,4, 2 blocks,
// attn at 16, z 32), "kl-f16" (same with z 16), and for 32x32 Fashion-MNIST
// "f4c4" / "f4c8" (ch 32, mult 1,2,2, 1 block, no level attention (mid only),
// z 4 / 8, 1 channel) and "f8c4" (mult 1,2,2,2). Returns 0 or VEL_EINVAL.
int vae_config_preset(const char *name, int in_ch, vae_config *out);
// Latent side = resolution / 2^(nlevels-1).
int vae_latent_side(const vae_config *c);
// 0 if usable (channels divisible by groups, sizes positive), else VEL_EINVAL.
int vae_config_validate(const vae_config *c);

typedef struct {
    vae_config cfg;
    param_table pt;            // all encoder, quant, post-quant, decoder params
    vtape enc, dec;            // enc input buffer 0: images; dec input 0: z
    int Bmax, train, zside;
    float *mu, *logvar;        // (Bmax, z, zs, zs) split of the moments
    float *dmoments;           // (Bmax, 2z, zs, zs) scratch for backward
    // Training-step buffers, allocated once when train (nothing is allocated
    // inside a step): z, dz, dmu, dlogvar, zeros (Bmax, z, zs, zs); dx like x.
    float *z, *dz, *dmu, *dlv, *zeros, *dx;
} vae;

// Builds the model for batches up to Bmax; train = 1 also allocates the
// activation gradients. Parameters are zero until vae_init_params or a load.
int vae_create(vae **out, const vae_config *cfg, int Bmax, int train);
void vae_destroy(vae **m);
// PyTorch's default Conv2d init (kaiming_uniform a=sqrt(5): U(+-1/sqrt(fan_in))
// for weight and bias), GroupNorm weight 1 bias 0; seeded, deterministic.
void vae_init_params(vae *m, uint64_t seed);

// x (B, in_ch, R, R) in [-1, 1] -> m->mu, m->logvar (B, z, zs, zs) (logvar
// unclamped: consumers clamp to [-30, 20] as LDM does). The activations stay
// for vae_encoder_backward.
void vae_encode(vae *m, const float *x, int B);
// z (B, z, zs, zs) -> returns the decoder's output buffer (B, out_ch, R, R),
// owned by m and valid until the next decode.
const float *vae_decode(vae *m, const float *z, int B);
// Backward of the last decode: dxrec (B, out_ch, R, R) -> dz (B, z, zs, zs)
// +=, decoder parameter gradients +=.
void vae_decoder_backward(vae *m, float *dz, const float *dxrec, int B);
// Backward of the last encode from dmu, dlogvar (B, z, zs, zs) (either NULL =
// zero): encoder and quant_conv parameter gradients +=.
void vae_encoder_backward(vae *m, const float *dmu, const float *dlogvar, int B);

typedef enum { VAE_REG_KL = 0, VAE_REG_VE = 1 } vae_reg;
typedef enum { VAE_MAG_NONE = 0, VAE_MAG_ELEM = 1, VAE_MAG_GLOBAL = 2 } vae_mag;
// Reduction of the L1 reconstruction term (docs/FORMULAS.md section 1).
// SUM, the default, is LDM's contperceptual.py: summed over C*H*W per image,
// divided by the batch, so beta keeps its LDM meaning (KL summed per image,
// batch mean, under both). MEAN is the mean over every pixel (this project's
// convention before issue 14): beta then weighs the KL C*H*W times more.
// lambda_ve and lambda_reg weigh their per-element means against the
// per-pixel mean L1 under both: with SUM the whole VE-arm loss is C*H*W times
// the MEAN one, so that arm trains the same (Adam is scale-free).
typedef enum { VAE_RECON_SUM = 0, VAE_RECON_MEAN = 1 } vae_recon;

typedef struct {
    vae_reg reg;
    float beta;                // KL weight (LDM/VA-VAE 1e-6)
    ve_kind ve;                // VE form (iii) by default
    float lambda_ve, delta;
    vae_mag mag;
    float lambda_reg, tau;
    vae_recon recon;           // VAE_RECON_SUM (LDM) unless set
} vae_loss_cfg;

typedef struct {
    double total;              // the loss optimised (reduction lc->recon)
    double rec_l1, kl, ve, mag;  // rec_l1: per-pixel mean L1 under both reductions
    double mean_sigma;         // mean over elements of exp(0.5*clamp(logvar))
} vae_loss_parts;

// One forward + backward on x (B, in_ch, R, R) with noise eps (B, z, zs, zs):
// z = mu + sigma*eps, xrec = decode(z), L = L1(xrec, x) + regulariser.
// Gradients ACCUMULATE into m->pt.grads (caller zeroes per step). xrec_out
// (optional) receives the reconstruction. Returns 0 or VEL_EINVAL.
int vae_train_step(vae *m, const float *x, const float *eps, int B, const vae_loss_cfg *lc,
                   vae_loss_parts *parts, float *xrec_out);

// The tokenizer loss alone (what vae_train_step optimises) on a batch of B
// images of px = C*H*W pixels and latents of pz elements each: fills parts
// (total, rec_l1, kl or ve + mag; not mean_sigma) and ADDS dL/dxrec, dL/dmu,
// dL/dlogvar into dxrec, dmu, dlv. zc, zhw: latent channels and H*W (the
// global magnitude regulariser is per channel). models/vae_loss.c
void vae_loss(const vae_loss_cfg *lc, const float *x, const float *xrec, const float *mu,
              const float *logvar, int B, int64_t px, int zc, int zhw, float *dxrec,
              float *dmu, float *dlv, vae_loss_parts *parts);

// The posterior's sigma from its moments, element-wise:
// sigma = exp(0.5 * clamp(logvar, LOGVAR_MIN, LOGVAR_MAX)) in float, as the
// latent store keeps it (encode) and as eval averages it.
void vae_sigma(float *sigma, const float *logvar, int64_t n);

// Multiply-add FLOPs (2 per MAC) of one encoder + decoder forward on B
// images, counting convolutions and attention matmuls (the GEMM work);
// a training step is about 3x this (forward, data and weight gradients).
double vae_forward_flops(const vae *m, int B);

#endif
