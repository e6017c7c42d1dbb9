// progress.c: see progress.h.
#include "stages/common/progress.h"

#include <unistd.h>

static int on_terminal(FILE *f) { return isatty(fileno(f)); }

const char *progress_start(FILE *f) { return on_terminal(f) ? "\r" : ""; }
const char *progress_end(FILE *f) { return on_terminal(f) ? "   " : "\n"; }
const char *progress_done(FILE *f) { return on_terminal(f) ? "\n" : ""; }
