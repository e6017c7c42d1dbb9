// safetensors.h: reading and writing the safetensors format (Hugging Face):
//   8-byte little-endian header length N, N bytes of JSON
//     {"NAME": {"dtype": "F32"|"BF16"|"F16"|"U8"|"I32", "shape": [..],
//               "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}}
//   then the byte buffer; offsets are relative to the buffer's start.
// Files are checked completely when opened: header length inside the file,
// valid JSON with the right field types, known dtypes, shape x dtype size ==
// end - begin, offsets inside the buffer, no overlap and no gap (the tensors
// tile the whole buffer, as the official package requires), unique names.
// Writes are atomic (temp file in the same directory, fsync, rename).
//
// Not here: what the tensors mean (nn/checkpoint.h names optimizer state).
// No OpenMP in this file: the fuzzer builds it with plain clang.
// Error codes are the checkpoint range -300..-399 (messages: vel_strerror);
// a failure records a detail naming the tensor or field (vel_error_detail).
#ifndef NN_SAFETENSORS_H
#define NN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "nn/params.h"
#include "core/error.h"
#include "core/tensor.h"

enum {
    CKPT_ETRUNC = -301,   // file shorter than its header says
    CKPT_EJSON = -302,    // header is not valid JSON (or trailing garbage)
    CKPT_EHEADER = -303,  // JSON valid but an entry has the wrong structure
    CKPT_EDTYPE = -304,   // unknown or unsupported dtype
    CKPT_EOFFSETS = -305, // offsets out of range, overlapping or leaving gaps
    CKPT_ESIZE = -306,    // shape x dtype size != byte length
    CKPT_EDUP = -307,     // duplicate tensor name
    CKPT_EMISSING = -308, // a tensor the caller needs is not in the file
    CKPT_EEXTRA = -309,   // the file has tensors the caller does not know
    CKPT_ESHAPE = -310,   // tensor shape differs from the caller's
    CKPT_EMETA = -311,    // __metadata__ malformed, or a needed key missing/bad
    CKPT_ETOOBIG = -312,  // header larger than ST_MAX_HEADER
};

#define ST_MAX_HEADER (100u << 20)    // the official package's limit too

typedef struct {
    const char *name;     // borrowed, valid until st_close
    dtype_t dtype;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end;  // byte offsets into the data buffer
} st_entry;

typedef struct st_file st_file;

// Open and validate a file (memory-mapped read-only). On error *out is NULL,
// the code is returned and vel_error_detail() says what is wrong.
int st_open(st_file **out, const char *path);
// The same on bytes in memory; bytes are borrowed and must outlive the handle.
int st_parse(st_file **out, const void *bytes, size_t len);
void st_close(st_file **f);

int st_count(const st_file *f);                   // number of tensors
const st_entry *st_get(const st_file *f, int i);  // 0..count-1, sorted by name
int st_find(const st_file *f, const char *name);  // index or -1 (binary search)
const void *st_data(const st_file *f, int i);     // raw bytes, possibly unaligned
int st_meta_count(const st_file *f);
const char *st_meta_get(const st_file *f, const char *key);  // NULL if absent
void st_meta_at(const st_file *f, int i, const char **key, const char **value);
// Opens path, copies the metadata value of key into out (truncated to
// outlen - 1 bytes) and closes it: 0, VEL_ENOTFOUND if absent, or st_open's code.
int st_meta_read(const char *path, const char *key, char *out, int outlen);

// Convert tensor i (F32, BF16 or F16) to floats; n must equal its numel.
int st_read_f32(const st_file *f, int i, float *out, int64_t n);
// Find name, check its shape equals (ndim, shape), convert into out.
int st_load_tensor(const st_file *f, const char *name, float *out, int ndim,
                   const int64_t *shape);

typedef struct {
    const char *name;
    dtype_t dtype;          // file dtype: DT_F32, DT_BF16 or DT_F16
    int ndim;
    const int64_t *shape;
    const float *data;      // numel floats, converted on the way out
} st_tensor_out;

typedef struct { const char *key, *value; } st_kv;

// Write n tensors (in this order) and nmeta metadata pairs atomically.
int st_write(const char *path, const st_tensor_out *t, int n, const st_kv *meta,
             int nmeta);

// Every parameter of pt under its own name, stored as dtype.
int st_save_params(const char *path, const param_table *pt, dtype_t dtype,
                   const st_kv *meta, int nmeta);
// Load values by name: the file must hold exactly the table's tensors with the
// same shapes (the error detail names the missing / extra / mismatched ones). On error the
// table is left unchanged.
int st_load_params(const char *path, param_table *pt);

#endif
