// toy_ckpt.h: the toy models' checkpoint files: safetensors (nn/safetensors.h),
// every parameter under its table name as F32, and the architecture in
// __metadata__: "model" (toy-tokenizer | toy-flow), "depth", "width", plus
// the model's and the caller's extra pairs (st_kv). The file hash that ties
// a store to its tokenizer is nn/checkpoint.h's ckpt_file_hash.
// Errors: 0 or a negative code whose vel_fail detail names the file
// (print vel_errmsg(rc)); core/error.h.
#ifndef MODELS_TOY_CKPT_H
#define MODELS_TOY_CKPT_H

#include "nn/params.h"
#include "nn/safetensors.h"

int toy_ckpt_save(const char *path, const param_table *pt, const char *model, int depth, int width,
                  const st_kv *extra, int nextra);
// Reads the architecture of a checkpoint and checks its model name
// (TOY_EMODEL: another model, or a bad depth / width).
int toy_ckpt_arch(const char *path, const char *want_model, int *depth, int *width);
// Loads the weights into a table of the same layout (st_load_params).
int toy_ckpt_load_params(const char *path, param_table *pt);

#endif
