// dsum.cuh: a block-wide sum of doubles in a fixed-shape tree (C++ only),
// for the deterministic reductions of flow_loss.cu and muon.cu: every one of
// the NT threads (NT a power of two, blockDim.x == NT) passes its value and
// gets the block's sum; sh holds NT doubles. The first barrier keeps a
// previous call's readers of sh[0] ahead of this call's writes, so calls may
// follow each other on one sh. The order of the additions depends only on
// NT: identical bits from run to run.
#ifndef NN_CUDA_DSUM_CUH
#define NN_CUDA_DSUM_CUH

template <int NT>
static __device__ double block_sum_f64(double v, double *sh) {
    static_assert(NT > 0 && (NT & (NT - 1)) == 0, "NT must be a power of two");
    __syncthreads();
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = NT / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    return sh[0];
}

#endif
