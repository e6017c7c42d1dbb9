// image_report.h: what `eval --model images` writes into its --out folder:
//   samples.npz        ADM layout: arr_0 uint8 (n, H, W, C), labels int32 (n)
//   grid_class_K.png   the first `per_class` images of class K, `ncols` wide
//   report.json / .md  counts (images, items, duplicates, rejected, per class)
//                      and, when scored, the metrics with their feature
//                      network and its label ("classifier features, not
//                      Inception" for the classifier)
#ifndef STAGES_EVAL_IMAGE_REPORT_H
#define STAGES_EVAL_IMAGE_REPORT_H

#include <stdint.h>

#include "metrics/evaluate.h"

typedef struct {
    const char *title;
    int64_t n, items, duplicates, rejected;
    int classes;
    const image_scores *scores;   // NULL: not scored
    const char *net, *net_hash, *net_label, *ref_path;
    int64_t ref_count;
    const char *input_npz;        // scored from this archive (--npz), else NULL
} image_report_info;

int image_write_npz(const char *dir, const uint8_t *u8, const int32_t *labels, int64_t n, int H, int W, int C);
int image_write_grids(const char *dir, const uint8_t *u8, const int32_t *labels, int64_t n, int H, int W,
                      int C, int classes, int per_class, int ncols);
int image_write_report(const char *dir, const image_report_info *r, const int32_t *labels);

#endif
