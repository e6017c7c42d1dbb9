// tensor.h: dtypes and tensor views. A view never owns its data: arenas,
// device buffers, bus messages or the store own the bytes (HACKING.md, ggml).
// Dimension order is PyTorch's (outermost first) in memory, files and on the
// wire; strides are in elements.
#ifndef CORE_TENSOR_H
#define CORE_TENSOR_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#define TENSOR_MAX_DIMS 8

typedef enum {
    DT_F32 = 0,
    DT_BF16 = 1,
    DT_F16 = 2,
    DT_U8 = 3,
    DT_I32 = 4,
    DT_COUNT
} dtype_t;

typedef struct {
    dtype_t dtype;
    int ndim;                          // 0..TENSOR_MAX_DIMS (0 = scalar)
    int64_t shape[TENSOR_MAX_DIMS];
    int64_t stride[TENSOR_MAX_DIMS];   // elements; contiguous = row-major
    void *data;                        // borrowed
} tensor;

size_t dtype_size(dtype_t dt);               // bytes per element, 0 if unknown
const char *dtype_name(dtype_t dt);          // "f32", "bf16", "f16", "u8", "i32"
int dtype_from_name(const char *name, size_t len, dtype_t *out); // 0 or VEL_EFORMAT

// Contiguous view over data with the given shape.
tensor tensor_view(dtype_t dt, void *data, int ndim, const int64_t *shape);
int64_t tensor_numel(const tensor *t);
size_t tensor_nbytes(const tensor *t);       // numel * dtype size (contiguous)
bool tensor_is_contiguous(const tensor *t);

// Element count of a shape, or -1 if any dim is negative or the product
// overflows int64 (used by parsers of outside bytes before trusting a shape).
int64_t shape_numel_checked(int ndim, const int64_t *shape);

// bf16 / f16 <-> f32 (round to nearest even on the way down).
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

#endif
