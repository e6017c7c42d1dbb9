// main.c of bin/decode: a thin dispatcher on --model. The work of each model
// lives in its own file behind stages/decode/decode.h; models listed without
// an entry are announced and refused with exit code 2.
#include <stddef.h>

#include "stages/common/dispatch.h"
#include "stages/decode/decode.h"

static const model_entry MODELS[] = {
    {"toy", decode_toy_main, "2D toy tokenizer decoder: latents -> points"},
    {"vae", decode_vae_main, "image tokenizer decoder: store latents -> PNG grid + .npz"},
};

int main(int argc, char **argv) {
    return model_dispatch("decode", MODELS, (int)(sizeof MODELS / sizeof *MODELS), argc, argv);
}
