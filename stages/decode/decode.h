// decode.h: entry points of the decode stage, one per --model (main.c is only
// the dispatcher). Each takes the full argv (including --model) and returns
// the process exit code: 0 ok, 1 runtime failure, 2 bad usage.
#ifndef STAGES_DECODE_DECODE_H
#define STAGES_DECODE_DECODE_H

int decode_toy_main(int argc, char **argv);   // stages/decode/toy_decode.c
int decode_vae_main(int argc, char **argv);   // stages/decode/image_vae.c

#endif
