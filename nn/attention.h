// attention.h: multi-head scaled dot-product attention, softmax(q k^T/sqrt(hd)) v,
// non-causal, computed flash-style: tiles of queries x keys with an online
// softmax, so no T x T matrix ever exists (T up to a few thousand is fine).
// CPU implementation in nn/cpu/attention.c (tiles through nn/cpu/gemm.h), and
// for head dim 64 on AVX-512 CPUs nn/cpu/attn_avx512.c (own kernels).
//
// Layout: qkv (B, T, 3, NH, HD) exactly as a Linear(D, 3D) writes it
// (D = NH*HD; q, k, v of token t, head h at qkv[t*3D + {0,D,2D} + h*HD]);
// out (B, T, NH, HD) = (B, T, D), ready for the output projection; the
// per-row log-sum-exp lse (B, NH, T) is saved for the backward pass, which
// recomputes the probabilities tile by tile.
//
// Not here: q/k normalisation and RoPE (the model applies them to qkv first),
// masks, dropout, causal attention.
//
// Backward ACCUMULATES (+=) into dqkv (same layout as qkv); callers zero it,
// or call attention_backward_set, which writes it.
// Scratch: none from the caller. The CPU version keeps one buffer per
// thread, allocated on its first call and grown only when a shape needs more:
// at most 2 MiB of tiles (nn/cpu/attention.c: 256 queries x up to 1024 keys),
// or on the AVX-512 path about 1.3 KiB per token plus 70 KiB (packed K, V,
// dK, dV, dS^T of one head: 1.4 MiB at T 1024); no T x T matrix.
// Threads: OpenMP over (batch, head); each (b, h) is done by one thread in a
// fixed order, so results are identical for any thread count.
#ifndef NN_ATTENTION_H
#define NN_ATTENTION_H

#define ATTN_HD_MAX 256

// out (B,T,NH,HD) written, lse (B,NH,T) written, qkv (B,T,3,NH,HD) read.
// HD <= ATTN_HD_MAX.
void attention_forward(float *out, float *lse, const float *qkv,
                       int B, int T, int NH, int HD);

// dqkv (B,T,3,NH,HD) += gradient of sum(dout .* out) w.r.t. qkv.
// out and lse are the forward's outputs for the same qkv.
void attention_backward(float *dqkv, const float *dout, const float *qkv,
                        const float *out, const float *lse,
                        int B, int T, int NH, int HD);

// attention_backward with dqkv SET (=) instead of accumulated: the same bits
// as zeroing dqkv first, without a pass over it (CPU; the device clears it
// and runs the accumulating kernel).
void attention_backward_set(float *dqkv, const float *dout, const float *qkv,
                            const float *out, const float *lse, int B, int T, int NH, int HD);

#endif
