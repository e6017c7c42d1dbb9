// main.c of bin/encode: a thin dispatcher on --model. The work of each model
// lives in its own file behind stages/encode/encode.h; models listed without
// an entry are announced and refused with exit code 2.
#include <stddef.h>

#include "stages/common/dispatch.h"
#include "stages/encode/encode.h"

static const model_entry MODELS[] = {
    {"toy", encode_toy_main, "2D toy tokenizer: training points -> store (mu, sigma)"},
    {"vae", encode_vae_main, "image tokenizer (conv VAE): Fashion-MNIST -> store"},
    {"vae-folder", encode_vae_folder_main, "image tokenizer: an image folder -> store, N workers + one writer"},
};

int main(int argc, char **argv) {
    return model_dispatch("encode", MODELS, (int)(sizeof MODELS / sizeof *MODELS), argc, argv);
}
