// eval.h: entry points of the eval stage, one per --model (main.c is only
// the dispatcher). Each takes the full argv (including --model) and returns
// the process exit code: 0 ok, 1 runtime failure, 2 bad usage.
#ifndef STAGES_EVAL_EVAL_H
#define STAGES_EVAL_EVAL_H

// The feature network of `eval --model images` when neither --classifier nor
// --weights is given: the classifier whose weights ship in the repository
// (path relative to its root; bin/eval finds it as ../weights/ from itself).
// Its recipe, hash and test accuracy: weights/README.md.
#define EVAL_DEFAULT_CLASSIFIER "weights/fmnist-classifier.safetensors"

int eval_toy_main(int argc, char **argv);   // stages/eval/toy_eval.c
int eval_vae_main(int argc, char **argv);   // stages/eval/image_vae.c
int eval_images_main(int argc, char **argv);   // stages/eval/images.c

#endif
