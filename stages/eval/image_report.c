// image_report.c: see image_report.h.
#include "stages/eval/image_report.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "data/image_io.h"

int image_write_npz(const char *dir, const uint8_t *u8, const int32_t *labels, int64_t n, int H, int W, int C) {
    char path[4096];
    snprintf(path, sizeof path, "%s/samples.npz", dir);
    image_npz_member m[2] = {{"arr_0", u8, 0, 4, {n, H, W, C}}, {"labels", labels, 1, 1, {n}}};
    return image_npz_write(path, m, 2);
}

int image_write_grids(const char *dir, const uint8_t *u8, const int32_t *labels, int64_t n, int H, int W,
                      int C, int classes, int per_class, int ncols) {
    size_t per = (size_t)H * W * C;
    float *x = malloc(sizeof(float) * per * (size_t)per_class);
    if (!x) return VEL_ENOMEM;
    int rc = 0;
    for (int k = 0; k < classes && !rc; k++) {
        int m = 0;
        for (int64_t i = 0; i < n && m < per_class; i++) {
            if (labels[i] != k) continue;
            for (int c = 0; c < C; c++)   // NHWC bytes -> NCHW floats in [-1, 1]
                for (int p = 0; p < H * W; p++)
                    x[(size_t)m * per + (size_t)c * H * W + p] = image_u8_to_f32(u8[(size_t)i * per + (size_t)p * C + c]);
            m++;
        }
        if (!m) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/grid_class_%d.png", dir, k);
        rc = image_grid_write_png(path, x, m, C, H, W, ncols);
    }
    free(x);
    return rc;
}

static void num(cJSON *j, const char *k, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(j, k, v);
    else cJSON_AddNullToObject(j, k);
}

int image_write_report(const char *dir, const image_report_info *r, const int32_t *labels) {
    int64_t *per = calloc((size_t)r->classes, sizeof(int64_t));
    if (!per) return VEL_ENOMEM;
    for (int64_t i = 0; i < r->n; i++) per[labels[i]]++;
    cJSON *j = cJSON_CreateObject(), *pc = cJSON_CreateArray();
    cJSON_AddStringToObject(j, "title", r->title);
    if (r->input_npz) cJSON_AddStringToObject(j, "input_npz", r->input_npz);
    cJSON_AddNumberToObject(j, "n_images", (double)r->n);
    cJSON_AddNumberToObject(j, "items", (double)r->items);
    cJSON_AddNumberToObject(j, "duplicates_dropped", (double)r->duplicates);
    cJSON_AddNumberToObject(j, "rejected", (double)r->rejected);
    for (int k = 0; k < r->classes; k++) cJSON_AddItemToArray(pc, cJSON_CreateNumber((double)per[k]));
    cJSON_AddItemToObject(j, "per_class", pc);
    const image_scores *s = r->scores;
    if (s) {
        cJSON *m = cJSON_AddObjectToObject(j, "metrics");
        cJSON_AddStringToObject(m, "features", r->net_label);
        cJSON_AddStringToObject(m, "feature_net", r->net);
        cJSON_AddStringToObject(m, "feature_net_hash", r->net_hash);
        cJSON_AddStringToObject(m, "ref_stats", r->ref_path);
        cJSON_AddNumberToObject(m, "ref_count", (double)r->ref_count);
        num(m, "fid", s->fid); num(m, "sfid", s->sfid); num(m, "is", s->is); num(m, "is_std", s->is_std);
        num(m, "precision_k3", s->precision); num(m, "recall_k3", s->recall);
        num(m, "fid_neg_eig", s->fid_neg_eig);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/report.json", dir);
    char *txt = cJSON_Print(j);
    FILE *f = fopen(path, "w");
    int rc = (!txt || !f || fputs(txt, f) < 0) ? VEL_EIO : 0;
    if (f && fclose(f)) rc = VEL_EIO;
    free(txt);
    cJSON_Delete(j);
    snprintf(path, sizeof path, "%s/report.md", dir);
    f = fopen(path, "w");
    if (!f) { free(per); return VEL_EIO; }
    fprintf(f, "# Image evaluation: %s\n\n| count | value |\n|---|---|\n", r->title);
    fprintf(f, "| images | %lld |\n| items | %lld |\n| duplicates dropped | %lld |\n| rejected messages | %lld |\n",
            (long long)r->n, (long long)r->items, (long long)r->duplicates, (long long)r->rejected);
    fprintf(f, "\n| class | images |\n|---|---|\n");
    for (int k = 0; k < r->classes; k++) fprintf(f, "| %d | %lld |\n", k, (long long)per[k]);
    if (s) {
        fprintf(f, "\nMetrics: %s (%s, weights %s), against %s (%lld real images)\n\n", r->net_label, r->net,
                r->net_hash, r->ref_path, (long long)r->ref_count);
        fprintf(f, "| metric | value |\n|---|---|\n| FID | %.4f |\n| sFID | %.4f |\n| IS | %.4f +- %.4f |\n",
                s->fid, s->sfid, s->is, s->is_std);
        fprintf(f, "| precision (k=3) | %.4f |\n| recall (k=3) | %.4f |\n", s->precision, s->recall);
    } else {
        fprintf(f, "\nNo metrics: no feature network (--classifier or --weights) given.\n");
    }
    if (r->input_npz) fprintf(f, "\nImages read from %s. Files: grid_class_K.png.\n", r->input_npz);
    else fprintf(f, "\nFiles: samples.npz (arr_0 uint8 NHWC, labels int32), grid_class_K.png.\n");
    if (fclose(f)) rc = VEL_EIO;
    free(per);
    return rc;
}
