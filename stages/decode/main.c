// main.c of bin/decode: a thin dispatcher on --model. The work of each model
// lives in its own file behind stages/decode/decode.h; models listed without
// an entry are announced and refused with exit code 2.
#include <stdio.h>
#include <string.h>

#include "stages/decode/decode.h"

typedef int (*entry_fn)(int, char **);
static const struct { const char *name; entry_fn fn; const char *what; } MODELS[] = {
    {"toy", decode_toy_main, "2D toy tokenizer decoder: latents -> points"},
    {"vae", decode_vae_main, "image tokenizer decoder: store latents -> PNG grid + .npz"},
};
#define NMODELS (int)(sizeof MODELS / sizeof *MODELS)

static void usage(FILE *f) {
    fprintf(f, "usage: decode --model NAME [options]   (decode --model NAME --help for options)\nmodels:\n");
    for (int i = 0; i < NMODELS; i++)
        fprintf(f, "  %-14s %s%s\n", MODELS[i].name, MODELS[i].what, MODELS[i].fn ? "" : " (not built yet)");
}

int main(int argc, char **argv) {
    const char *model = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[i + 1];
        else if (!strncmp(argv[i], "--model=", 8)) model = argv[i] + 8;
    }
    if (!model) {
        int help = 0;
        for (int i = 1; i < argc; i++) help |= !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h");
        usage(help ? stdout : stderr);
        if (!help) fprintf(stderr, "decode: --model is required\n");
        return help ? 0 : 2;
    }
    for (int i = 0; i < NMODELS; i++) {
        if (strcmp(model, MODELS[i].name) != 0) continue;
        if (!MODELS[i].fn) {
            fprintf(stderr, "decode: model '%s' is not built yet\n", model);
            return 2;
        }
        return MODELS[i].fn(argc, argv);
    }
    fprintf(stderr, "decode: unknown model '%s'\n", model);
    usage(stderr);
    return 2;
}
