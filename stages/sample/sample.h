// sample.h: entry points of the sample stage, one per --model (main.c is only
// the dispatcher). Each takes the full argv (including --model) and returns
// the process exit code: 0 ok, 1 runtime failure, 2 bad usage.
#ifndef STAGES_SAMPLE_SAMPLE_H
#define STAGES_SAMPLE_SAMPLE_H

int sample_toy_flow_main(int argc, char **argv);   // stages/sample/toy_sample.c
int sample_dit_main(int argc, char **argv);        // stages/sample/dit.c

#endif
