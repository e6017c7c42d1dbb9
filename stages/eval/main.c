// main.c of bin/eval: a thin dispatcher on --model. The work of each model
// lives in its own file behind stages/eval/eval.h; models listed without
// an entry are announced and refused with exit code 2.
#include <stddef.h>

#include "stages/common/dispatch.h"
#include "stages/eval/eval.h"

static const model_entry MODELS[] = {
    {"toy", eval_toy_main, "2D toy points: log-density, off-manifold, precision/recall, figures"},
    {"vae", eval_vae_main, "image tokenizer reconstruction metrics and robustness probe"},
    {"images", eval_images_main, "sink of sample -> decode: samples.npz, class grids, FID/sFID/IS/P-R on classifier features"},
};

int main(int argc, char **argv) {
    return model_dispatch("eval", MODELS, (int)(sizeof MODELS / sizeof *MODELS), argc, argv);
}
