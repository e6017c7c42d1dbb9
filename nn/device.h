// device.h: the `--device cpu|cuda` choice shared by every stage that
// computes. Parses the flag's value and, for cuda, checks that this build has
// CUDA and that a GPU is present, with a message that says which is missing.
// Not here: the CUDA context itself (nn/cuda/vcuda.h).
#ifndef NN_DEVICE_H
#define NN_DEVICE_H

#include <stddef.h>

typedef enum { DEVICE_CPU = 0, DEVICE_CUDA = 1 } device_kind;

// Module range -650..-659 (beside nn/cuda's -600..-649).
enum {
    DEVICE_EBADNAME = -650,   // not "cpu" or "cuda"
    DEVICE_ENOCUDA = -651,    // built without nvcc
    DEVICE_ENOGPU = -652,     // CUDA requested but no GPU found
};

const char *device_strerror(int err);   // chains to vel_strerror

// "cpu" / "cuda" (also "gpu", "cuda:N" with N >= 0 stored in *index, -1 when
// absent). Only parses: does not look for a GPU.
int device_parse(const char *name, device_kind *kind, int *index);
const char *device_name(device_kind kind);

// 1 if this binary was built with CUDA (nvcc found at build time).
int device_cuda_built(void);
// Number of GPUs visible (0 when built without CUDA or when none is found).
int device_cuda_count(void);

// Parses `name` and, for cuda, checks that a GPU is usable. On failure
// returns a DEVICE_E* code and writes a full sentence to msg, e.g.
// "--device cuda: CUDA requested but no GPU found (cudaGetDeviceCount: no
// CUDA-capable device is detected)".
int device_resolve(const char *name, device_kind *kind, int *index, char *msg, size_t msglen);

// One line for --help texts.
#define DEVICE_HELP "  --device cpu|cuda[:N]  where to compute (default cpu); cuda needs a GPU\n"

#endif
