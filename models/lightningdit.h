// lightningdit.h: the LightningDiT velocity model (SPEC section 4;
// hustvl/LightningDiT with use_swiglu, use_rope, use_rmsnorm, optional
// use_qknorm, learn_sigma off): patch embed + fixed 2D sin-cos position
// embedding, conditioning c = TimestepEmbedder(t) + LabelEmbedder(y), depth x
// block, final adaLN layer, unpatchify.
//   block: (shift1, scale1, gate1, shift2, scale2, gate2) = Linear(SiLU(c))
//          x += gate1 * Attn(RMSNorm(x)*(1+scale1) + shift1)
//          x += gate2 * SwiGLU(RMSNorm(x)*(1+scale2) + shift2)
//   Attn: qkv Linear(D,3D) with bias, [q_norm/k_norm RMSNorm(HD)], 2D RoPE
//         (nn/rope.h), softmax(q k^T/sqrt(HD)) v (nn/attention.h), proj.
// Parameters carry PyTorch state-dict names, declared in module order:
//   x_embedder.proj.{weight (D,C,p,p), bias}, t_embedder.mlp.{0,2}.{weight,bias},
//   y_embedder.embedding_table.weight (classes+1, D),
//   blocks.i.norm1.weight, blocks.i.attn.qkv.{weight,bias},
//   [blocks.i.attn.q_norm.weight, blocks.i.attn.k_norm.weight (HD)],
//   blocks.i.attn.proj.{weight,bias}, blocks.i.norm2.weight,
//   blocks.i.mlp.w12.{weight (2H,D),bias}, blocks.i.mlp.w3.{weight (D,H),bias},
//   blocks.i.adaLN_modulation.1.{weight (6D,D),bias},
//   final_layer.norm_final.weight, final_layer.linear.{weight (p*p*C,D),bias},
//   final_layer.adaLN_modulation.1.{weight (2D,D),bias}.
// H = int(2/3 * 4D) (SwiGLUFFN's hidden, no rounding to a multiple of 8).
// pos_embed (a frozen parameter in PyTorch) and the RoPE tables are fixed
// buffers here, not in the parameter table (so optimizers never see them).
//
// Memory: one param table (values + grads), one activation arena sized by a
// measuring pass for batches up to Bmax; forward/backward allocate nothing.
// Backward ACCUMULATES into the parameter gradients (zero them per step with
// param_zero_grads) and into dx if given.
// Not here: the flow-matching loss, label-dropout sampling, optimizers, CFG.
#ifndef MODELS_LIGHTNINGDIT_H
#define MODELS_LIGHTNINGDIT_H

#include <stddef.h>
#include <stdint.h>

#include "nn/arena.h"
#include "nn/device.h"
#include "nn/params.h"

enum {
    LDIT_ECONFIG = -540,   // invalid configuration
    LDIT_EBATCH = -541,    // batch larger than the Bmax the model was built for
    LDIT_ELABEL = -542,    // class label outside [0, num_classes]
};

typedef struct {
    int depth;          // blocks
    int hidden;         // D
    int heads;          // D / heads = head dim, divisible by 4 (2D RoPE)
    int patch;          // p
    int in_channels;    // latent channels C (= output channels)
    int input_size;     // latent side (square, divisible by p)
    int num_classes;    // label table has num_classes + 1 rows (null id)
    int qk_norm;        // 1: per-head RMSNorm on q and k
} ldit_config;

// Presets "S" (12, 384, 6), "B" (12, 768, 12), "L" (24, 1024, 16),
// "XL" (28, 1152, 16), all patch 1, 32 channels, 16 x 16 latent, 1000
// classes, no qk norm; "tiny" (2, 64, 4 heads, patch 1, 4 x 8 x 8, 10
// classes). Returns 0 or LDIT_ECONFIG (unknown name).
int ldit_config_preset(const char *name, ldit_config *out);
// 0 if usable; otherwise LDIT_ECONFIG with a vel_fail detail saying which
// field is wrong (core/error.h: vel_errmsg(LDIT_ECONFIG) prints it).
int ldit_config_validate(const ldit_config *c);
int ldit_mlp_hidden(const ldit_config *c);      // int(2/3 * 4D)
int ldit_tokens(const ldit_config *c);          // (input_size / patch)^2
// Parameter count without allocating anything (declaration pass only).
int64_t ldit_param_count(const ldit_config *c);

typedef struct ldit_acts ldit_acts;     // activation views (lightningdit.c)

typedef struct {
    ldit_config cfg;
    param_table pt;      // values and grads, PyTorch names
    int Bmax, T, H;      // batch capacity, tokens, MLP hidden
    arena act;           // all activations and backward scratch
    size_t act_bytes;    // committed size of `act`
    ldit_acts *a;        // views into `act` (owned)
    float *pos_embed;    // (T, D) in `act`
    float *rope_cos, *rope_sin;   // (T, HD) in `act`
    int lastB;           // batch of the last forward (backward uses it)
    device_kind dev;     // where pt and act live (ldit_to_device)
    uint8_t *drop_host;  // (Bmax) host: the dropout flags before they are copied
} ldit;

// Builds the model for batches up to Bmax: declares and allocates the
// parameters (zero until ldit_init_params or a checkpoint load) and the
// activation arena. Returns 0, LDIT_ECONFIG, LDIT_EBATCH or VEL_ENOMEM
// (with a vel_fail detail). Free with
// ldit_destroy.
int ldit_create(ldit **out, const ldit_config *cfg, int Bmax);
void ldit_destroy(ldit **m);
// Moves the parameters (values, grads) and the activation arena to kind
// (DEVICE_CUDA after device_activate, or back to DEVICE_CPU), keeping the
// parameter values; the fixed tables are computed on the host and copied.
// Every op of forward/backward then runs there (nn/backend.h); pointers
// taken from m->pt before must be read again. Optimizer and EMA state follow
// the parameters when created after this call. 0 or a device code (the
// model is unchanged on failure).
int ldit_to_device(ldit *m, device_kind kind);
// DiT's initialize_weights: Linears xavier-uniform (the patch conv on its
// (D, C*p*p) view) with zero bias; label table and both t-MLP weights
// N(0, 0.02); every adaLN_modulation Linear and final_layer.linear zero
// (adaLN-Zero); RMSNorm weights 1. Draws: core/philox.h, stream = parameter
// index, so the result depends only on the seed.
void ldit_init_params(ldit *m, uint64_t seed);

// v (B,C,S,S) = model(x (B,C,S,S), t (B) in [0,1], y (B)); drop (B) or NULL:
// drop[b] != 0 replaces y[b] by the null class (the caller's label dropout).
// Activations are kept for ldit_backward. Returns 0, LDIT_EBATCH (B > Bmax
// or B < 1) or LDIT_ELABEL (nothing computed).
// Where things live: y and drop are always host arrays (checked here, then
// copied next to the model). x, t and v may be host or device memory; for a
// model on the GPU host ones are staged through device buffers (one copy
// each way, and the call then waits for the result). Device failures inside
// the step are the op API's sticky error: call nn_sync() (nn/backend.h) after
// the step and before trusting its numbers.
int ldit_forward(ldit *m, float *v, const float *x, const float *t,
                 const int32_t *y, const uint8_t *drop, int B);
// Gradient of sum(dv .* v) for the last forward: parameter grads +=, and
// dx (B,C,S,S) += if dx is not NULL. The last forward must have succeeded
// (CHECKed), and the parameters must not have changed since. dv and dx may
// be host or device memory, as x and v of the forward.
void ldit_backward(ldit *m, float *dx, const float *dv);

// One block alone (tests, profiling): x_out (B,T,D) = block l applied to
// x_in (B,T,D) with sc = SiLU(c) (B,D). Uses (and overwrites) the model's
// activations of block l and its SiLU(c) buffer, so it must not be mixed with
// a pending ldit_forward/ldit_backward pair. Buffers must live where the model
// does. Returns 0 or LDIT_EBATCH.
int ldit_block_forward(ldit *m, int l, float *x_out, const float *x_in, const float *sc, int B);
// Backward of the last ldit_block_forward of block l: dx_in (B,T,D) +=,
// dsc (B,D) +=, and block l's parameter gradients +=.
void ldit_block_backward(ldit *m, int l, float *dx_in, float *dsc, const float *dx_out, int B);


#endif
