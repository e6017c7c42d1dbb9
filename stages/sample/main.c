// main.c of bin/sample: a thin dispatcher on --model. The work of each model
// lives in its own file behind stages/sample/sample.h; models listed without
// an entry are announced and refused with exit code 2.
#include <stddef.h>

#include "stages/common/dispatch.h"
#include "stages/sample/sample.h"

static const model_entry MODELS[] = {
    {"toy-flow", sample_toy_flow_main, "2D toy flow model, Euler sampler (also the job source)"},
    {"dit", sample_dit_main, "LightningDiT, Euler/Heun with classifier-free guidance (also the job source)"},
};

int main(int argc, char **argv) {
    return model_dispatch("sample", MODELS, (int)(sizeof MODELS / sizeof *MODELS), argc, argv);
}
