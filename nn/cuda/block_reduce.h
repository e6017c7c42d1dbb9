// block_reduce.h: the block-wide max and sum of the attention kernels
// (nn/cuda/transformer.cu), written once for two compilers: nvcc builds them
// as device functions on CUDA's warp shuffles and barriers; a C compiler
// builds them on whatever the includer defines for BLK_TID, BLK_SYNC() and
// BLK_SHFL_XOR(v, o), which lets tests/nn/test_block_reduce.c run one block
// of threads on the host (one pthread per CUDA thread) without a GPU.
//
// Contract: all nt threads of the block call with their own v and the same
// shared array sh (at least nt/32 floats, nt a multiple of 32, at most 1024)
// and EVERY thread gets the block's result. Two steps: a butterfly inside
// each warp, then lane 0 of each warp leaves its partial in sh[warp] and
// every thread combines the nt/32 partials in warp order (so all threads
// hold the same bits). The first barrier keeps a previous call's readers
// ahead of this call's writers, so calls may follow each other on one sh.
//
// (The first version let only threads 0..nt/32-1 read the partials and then
// reduced again inside each warp, so only warp 0 got the result: the other
// warps of the attention forward used a max of -inf and NaN followed for
// T > 32.)
#ifndef NN_CUDA_BLOCK_REDUCE_H
#define NN_CUDA_BLOCK_REDUCE_H

#include <math.h>

#ifdef __CUDACC__
#define BLK_FN static __device__ __forceinline__
#define BLK_TID ((int)threadIdx.x)
#define BLK_SYNC() __syncthreads()
#define BLK_SHFL_XOR(v, o) __shfl_xor_sync(0xffffffffu, (v), (o))
#else
#define BLK_FN static inline
#if !defined(BLK_TID) || !defined(BLK_SHFL_XOR)
#error "host builds of block_reduce.h need BLK_TID, BLK_SYNC() and BLK_SHFL_XOR(v, o)"
#endif
#endif

BLK_FN float blk_max(float v, float *sh, int nt) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, BLK_SHFL_XOR(v, o));
    BLK_SYNC();
    if (BLK_TID % 32 == 0) sh[BLK_TID / 32] = v;
    BLK_SYNC();
    v = sh[0];
    for (int w = 1; w < nt / 32; w++) v = fmaxf(v, sh[w]);
    return v;
}

BLK_FN float blk_sum(float v, float *sh, int nt) {
    for (int o = 16; o > 0; o >>= 1) v += BLK_SHFL_XOR(v, o);
    BLK_SYNC();
    if (BLK_TID % 32 == 0) sh[BLK_TID / 32] = v;
    BLK_SYNC();
    v = sh[0];
    for (int w = 1; w < nt / 32; w++) v += sh[w];
    return v;
}

#endif
