// plot_robustness.h: the robustness figure of `eval --model vae
// --plot-robustness` (stages/eval/plot_robustness.c).
#ifndef STAGES_EVAL_PLOT_ROBUSTNESS_H
#define STAGES_EVAL_PLOT_ROBUSTNESS_H

#define MAX_SCALES 16    // probe scales per report (eval --scales)
#define MAX_REPORTS 6    // reports per figure

// Draws the curves of reports[0..nrep) into out (PNG); labels: comma-separated
// legend names (NULL: each report's reg and config). 0, 1 (write failed) or
// 2 (bad reports or count), after a message on stderr.
int plot_robustness(const char *out, const char *labels, char **reports, int nrep);

#endif
