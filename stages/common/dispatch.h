// dispatch.h: the `--model NAME` dispatcher every stage executable shares.
// A stage's main.c lists its models; this picks one, prints usage on --help
// or a missing/unknown model (exit 2), and refuses unbuilt ones (fn NULL).
#ifndef STAGES_COMMON_DISPATCH_H
#define STAGES_COMMON_DISPATCH_H

typedef int (*model_entry_fn)(int, char **);
typedef struct {
    const char *name;
    model_entry_fn fn;   // NULL: listed but not built yet
    const char *what;
} model_entry;

int model_dispatch(const char *stage, const model_entry *models, int n, int argc, char **argv);

#endif
