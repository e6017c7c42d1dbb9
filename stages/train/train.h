// train.h: entry points of the train stage, one per --model (main.c is only
// the dispatcher). Each takes the full argv (including --model) and returns
// the process exit code: 0 ok, 1 runtime failure, 2 bad usage.
#ifndef STAGES_TRAIN_TRAIN_H
#define STAGES_TRAIN_TRAIN_H

int train_toy_tokenizer_main(int argc, char **argv);   // stages/train/toy_train.c
int train_toy_flow_main(int argc, char **argv);        // stages/train/toy_train.c
int train_vae_main(int argc, char **argv);             // stages/train/image_vae.c
int train_classifier_main(int argc, char **argv);      // stages/train/image_classifier.c
int train_dit_main(int argc, char **argv);             // stages/train/dit.c

#endif
