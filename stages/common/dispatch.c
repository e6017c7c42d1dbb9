// dispatch.c: see dispatch.h.
#include "stages/common/dispatch.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f, const char *stage, const model_entry *m, int n) {
    fprintf(f, "usage: %s --model NAME [options]   (%s --model NAME --help for options)\nmodels:\n", stage, stage);
    for (int i = 0; i < n; i++)
        fprintf(f, "  %-14s %s%s\n", m[i].name, m[i].what, m[i].fn ? "" : " (not built yet)");
}

int model_dispatch(const char *stage, const model_entry *models, int n, int argc, char **argv) {
    const char *model = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[i + 1];
        else if (!strncmp(argv[i], "--model=", 8)) model = argv[i] + 8;
    }
    if (!model) {
        int help = 0;
        for (int i = 1; i < argc; i++) help |= !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h");
        usage(help ? stdout : stderr, stage, models, n);
        if (!help) fprintf(stderr, "%s: --model is required\n", stage);
        return help ? 0 : 2;
    }
    for (int i = 0; i < n; i++) {
        if (strcmp(model, models[i].name) != 0) continue;
        if (!models[i].fn) {
            fprintf(stderr, "%s: model '%s' is not built yet\n", stage, model);
            return 2;
        }
        return models[i].fn(argc, argv);
    }
    fprintf(stderr, "%s: unknown model '%s'\n", stage, model);
    usage(stderr, stage, models, n);
    return 2;
}
