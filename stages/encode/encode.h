// encode.h: entry points of the encode stage, one per --model (main.c is only
// the dispatcher). Each takes the full argv (including --model) and returns
// the process exit code: 0 ok, 1 runtime failure, 2 bad usage.
#ifndef STAGES_ENCODE_ENCODE_H
#define STAGES_ENCODE_ENCODE_H

int encode_toy_main(int argc, char **argv);   // stages/encode/toy_encode.c
int encode_vae_main(int argc, char **argv);   // stages/encode/image_vae.c
int encode_vae_folder_main(int argc, char **argv);   // stages/encode/vae_folder.c

#endif
