// main.c of bin/train: a thin dispatcher on --model. The work of each model
// lives in its own file behind stages/train/train.h; models listed without
// an entry are announced and refused with exit code 2.
#include <stddef.h>

#include "stages/common/dispatch.h"
#include "stages/train/train.h"

static const model_entry MODELS[] = {
    {"toy-tokenizer", train_toy_tokenizer_main, "2D toy MLP tokenizer (KL or VE regulariser)"},
    {"toy-flow", train_toy_flow_main, "2D toy flow model on latents from a store"},
    {"vae", train_vae_main, "image tokenizer (conv VAE)"},
    {"classifier", train_classifier_main, "feature classifier for image metrics"},
    {"dit", train_dit_main, "LightningDiT on image latents"},
};

int main(int argc, char **argv) {
    return model_dispatch("train", MODELS, (int)(sizeof MODELS / sizeof *MODELS), argc, argv);
}
