// progress.h: how a stage's progress report starts and ends. On a terminal
// the report is one line rewritten in place ("\r" in front, blanks after to
// cover a longer previous report, a newline once the loop is done). Written
// to a file or a pipe (a log, a batch job's output), every report is a line
// of its own, so the log reads line by line and nothing is left unfinished.
#ifndef STAGES_COMMON_PROGRESS_H
#define STAGES_COMMON_PROGRESS_H

#include <stdio.h>

const char *progress_start(FILE *f);   // "\r" on a terminal, "" otherwise
const char *progress_end(FILE *f);     // "   " on a terminal, "\n" otherwise
const char *progress_done(FILE *f);    // "\n" on a terminal, "" otherwise

#endif
