// vae_ckpt.h: the tokenizer's configuration as a checkpoint states it, for
// the stages that load one (encode, eval): the preset name from the
// safetensors metadata key "vae.config" (written by train --model vae) and
// the image channels from the weights' own shapes (encoder.conv_in.weight
// (ch, in_ch, 3, 3), decoder.conv_out.weight (out_ch, ch, 3, 3)), so a
// 1-channel Fashion-MNIST and a 3-channel photo tokenizer are told apart
// without a flag.
// Not here: loading the weights (st_load_params), training metadata.
#ifndef MODELS_VAE_CKPT_H
#define MODELS_VAE_CKPT_H

#include "models/vae.h"

// path: PREFIX.safetensors. want: the preset asked for on the command line,
// or NULL. The preset is the metadata's "vae.config" when present (an
// explicit want that differs is an error), else want, else "f4c4".
// Returns 0, VEL_EINVAL (unknown preset, mismatch, missing or odd conv
// tensors) or a checkpoint code (nn/safetensors.h); the vel_fail detail
// names the file and what is wrong (print vel_errmsg(rc)).
int vae_config_from_ckpt(const char *path, const char *want, vae_config *out);

#endif
