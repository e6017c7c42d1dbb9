// recon_grid.h: the tokenizer's reconstruction figure, shared by train and
// eval --model vae: a title, then B originals (C, 32, 32) in [-1, 1] over
// their reconstructions, each upscaled 3x (nearest) and each row labelled
// ("INPUT", "RECON (MU)") in plot_lines' font, so the PNG reads on its own.
#ifndef STAGES_COMMON_RECON_GRID_H
#define STAGES_COMMON_RECON_GRID_H

// C is 1 or 3. Returns 0 or a VEL_* code (VEL_EINVAL for bad sizes).
int recon_grid_png(const char *path, const float *orig, const float *rec, int B, int C, const char *title);

#endif
