// vae_blocks.h: the conv-net "tape" the VAE is built from. A tape is a flat
// list of primitive ops (conv, group norm, SiLU, add, nearest x2 upsample,
// single-head spatial attention core) over numbered activation buffers; the
// CompVis blocks (ResnetBlock, AttnBlock, Downsample, Upsample) are emitted as
// short op sequences by the vtape_* builders below, with parameters declared
// in a param_table under CompVis/VA-VAE names.
// Not here: the encoder/decoder layout and losses (models/vae.c).
//
// Why a tape: every activation keeps its own buffer and, when training, its
// own gradient buffer, so backward is the ops in reverse with each op
// accumulating (+=) into its inputs' gradients (nn/ convention); fan-out
// (the residual input used by GN and by the shortcut) needs no special case.
// Memory: 2x activations when training; fine for the 32x32 configs, and
// inference (train = 0) allocates no gradients.
//
// Lifetime: build ops (sizes only) -> param_table_commit -> vtape_alloc(Bmax)
// -> forward/backward with any B <= Bmax -> vtape_free.
#ifndef MODELS_VAE_BLOCKS_H
#define MODELS_VAE_BLOCKS_H

#include <stdint.h>

#include "nn/conv.h"
#include "nn/params.h"

typedef enum { VT_CONV, VT_GN, VT_SILU, VT_ADD, VT_UP, VT_ATTN, VT_POOL } vtape_kind;

typedef struct {
    vtape_kind kind;
    int in, in2, in3, out;     // buffer ids (in2: ADD's second input / ATTN k; in3: ATTN v)
    int aux, aux2;             // GN: mean, rstd buffers; ATTN: scores S, probabilities P
    int pw, pb;                // param indices (-1: none)
    int C, H, W;               // input per-sample dims
    int OC, k, stride, pt, pbm, pl, pr;   // conv
    int G;                     // group norm groups
    float eps;
} vtape_op;

typedef struct {
    int64_t per;               // floats per sample
    int C, H, W;               // its shape per sample (informational)
    float *v, *g;              // values, grads (g NULL when not training)
} vtape_buf;

typedef struct {
    vtape_op *ops;
    int nops, capops;
    vtape_buf *bufs;
    int nbufs, capbufs;
    int Bmax, train;
    float *mem;                // one allocation for every buffer (and grads)
    float *scratch;            // conv im2col scratch, sized for Bmax
    int *gfirst;               // per buffer: the op whose backward first writes its
                               // gradient (zeroed just before), -1: zeroed up front
    param_table *pt;           // borrowed: the model's table
} vtape;

void vtape_init(vtape *t, param_table *pt);
// New activation buffer of shape (C, H, W) per sample; returns its id.
int vtape_buffer(vtape *t, int C, int H, int W);

// Block builders: read buffer x, return the id of the output buffer. prefix is
// the PyTorch module path ("encoder.down.0.block.1"). Parameters are
// declared in CompVis order under prefix.
int vtape_conv(vtape *t, const char *prefix, int x, int OC, int k, int stride,
               int pt, int pb, int pl, int pr);
int vtape_groupnorm(vtape *t, const char *prefix, int x, int G, float eps);
int vtape_silu(vtape *t, int x);
int vtape_add(vtape *t, int a, int b);
int vtape_upsample(vtape *t, int x);
// Global average pool: (C, H, W) -> (C, 1, 1).
int vtape_avgpool(vtape *t, int x);
// ResnetBlock (no time embedding, dropout 0): norm1, swish, conv1, norm2,
// swish, conv2, plus nin_shortcut (1x1) when channels change.
int vtape_resnet_block(vtape *t, const char *prefix, int x, int OC, int G);
// AttnBlock: norm, q, k, v (1x1), softmax(q^T k / sqrt(C)) over H*W, proj_out, + x.
int vtape_attn_block(vtape *t, const char *prefix, int x, int G);
// Downsample: pad right/bottom by 1, conv3x3 stride 2 (prefix.conv).
int vtape_downsample(vtape *t, const char *prefix, int x);
// Upsample: nearest x2, conv3x3 (prefix.conv).
int vtape_upsample_block(vtape *t, const char *prefix, int x);

// PyTorch's default Conv2d init for every conv in pt (kaiming_uniform
// a=sqrt(5): U(+-1/sqrt(fan_in)) for weight and bias; a bias follows its
// weight in the table), GroupNorm weight 1 and bias 0; Philox-seeded.
void vtape_init_params(param_table *pt, uint64_t seed);

// Allocates all buffers for Bmax samples (and gradients if train). Call after
// param_table_commit. Returns 0 or VEL_ENOMEM.
int vtape_alloc(vtape *t, int Bmax, int train);
void vtape_free(vtape *t);

// Runs every op for B samples; the caller has filled buffer 0's values (B
// samples) and reads the last op's output buffer.
void vtape_forward(vtape *t, int B);
// Zeroes every activation gradient, sets the last output's gradient to dout,
// runs the ops in reverse. (Each gradient is zeroed just before the first op
// that accumulates into it, on all threads, so it is still in cache when
// that op reads it: a serial up-front memset of every gradient was 5% of the
// f4c4 training step, all of it on one thread; a SiLU that is the first
// writer overwrites instead: silu_backward_set.) Parameter gradients accumulate into pt->grads;
// buffer 0's gradient (the input's) is then in bufs[0].g. Needs train.
void vtape_backward(vtape *t, const float *dout, int B);
int vtape_output(const vtape *t);   // id of the last op's output buffer

#endif
