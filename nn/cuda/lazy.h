// lazy.h: loading the CUDA half on first use. The CUDA code is built as a
// shared object (build/libvelcuda.so: nn/cuda/*.cu, dist/*.cu, linked with
// cuBLAS, cuBLASLt, cuDNN and the CUDA runtime); binaries link stubs
// generated from nn/cuda/ops.h, nn/cuda/vcuda.h and dist/backend.h by
// mk/cuda_stubs.py, which call vel_cuda_sym on their first call. So a run
// that never touches the GPU never maps the CUDA libraries (they cost ~200 MB
// of resident memory at start when linked directly).
// The object is found at $VEL_CUDA_LIB when set, else at the path it was
// built at (mk/cuda.mk bakes it in), else near the executable (a moved tree:
// libvelcuda.so or build/libvelcuda.so in its folder or up to three above).
// C, callable from any thread.
#ifndef NN_CUDA_LAZY_H
#define NN_CUDA_LAZY_H

// The address of the CUDA half's function `name`, loading the object on the
// first call (once per process). NULL when it cannot be loaded or lacks the
// name; vel_cuda_load_error() then says why.
void *vel_cuda_sym(const char *name);
// Why loading failed; "" while nothing failed (or nothing was tried).
const char *vel_cuda_load_error(void);
// 1 once the object is loaded (tests: a CPU-only run must leave it 0).
int vel_cuda_loaded(void);

#endif
