// plot_robustness.c: `eval --model vae --plot-robustness OUT.png
// [--labels A,B,..] REPORT.json...`, the robustness curves of several eval
// reports in one figure: PSNR and classifier-feature Frechet vs the probe
// scale s (s = 0 being the plain reconstruction), one line per report
// (stages/common/plot_lines.h). Reads only the reports.
#include "stages/eval/plot_robustness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "stages/common/plot_lines.h"

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && n < (64L << 20) && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1))) {
            if (fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
            else buf[n] = 0;
        }
    }
    fclose(f);
    return buf;
}

static double num_or_nan(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

int plot_robustness(const char *out, const char *labels, char **reports, int nrep) {
    if (nrep < 1 || nrep > MAX_REPORTS) {
        fprintf(stderr, "eval: --plot-robustness takes 1..%d report.json files\n", MAX_REPORTS);
        return 2;
    }
    double xs[MAX_REPORTS][MAX_SCALES + 1], ps[MAX_REPORTS][MAX_SCALES + 1], fs[MAX_REPORTS][MAX_SCALES + 1];
    char names[MAX_REPORTS][64];
    plot_series sp[MAX_REPORTS], sf[MAX_REPORTS];
    const char *lp = labels;
    for (int r = 0; r < nrep; r++) {
        char *text = slurp(reports[r]);
        cJSON *j = text ? cJSON_Parse(text) : NULL;
        free(text);
        const cJSON *rob = j ? cJSON_GetObjectItemCaseSensitive(j, "robustness") : NULL;
        if (!cJSON_IsArray(rob) || !isfinite(num_or_nan(j, "psnr"))) {
            fprintf(stderr, "eval: %s: not an eval --model vae report.json (%s)\n", reports[r],
                    j ? "no psnr / robustness" : "unreadable or not JSON");
            cJSON_Delete(j);
            return 2;
        }
        int n = 0;
        xs[r][n] = 0;
        ps[r][n] = num_or_nan(j, "psnr");
        fs[r][n++] = num_or_nan(j, "frechet_classifier_features");
        const cJSON *e;
        cJSON_ArrayForEach(e, rob) {
            if (n > MAX_SCALES) break;
            xs[r][n] = num_or_nan(e, "scale");
            ps[r][n] = num_or_nan(e, "psnr");
            fs[r][n++] = num_or_nan(e, "frechet_classifier_features");
        }
        if (lp && *lp) {
            const char *c = strchr(lp, ',');
            size_t len = c ? (size_t)(c - lp) : strlen(lp);
            snprintf(names[r], sizeof names[r], "%.*s", (int)(len < 60 ? len : 60), lp);
            lp = c ? c + 1 : lp + len;
        } else {
            const cJSON *reg = cJSON_GetObjectItemCaseSensitive(j, "reg");
            const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(j, "config");
            snprintf(names[r], sizeof names[r], "%s %s", cJSON_IsString(reg) ? reg->valuestring : "?",
                     cJSON_IsString(cfg) ? cfg->valuestring : "");
        }
        sp[r] = (plot_series){names[r], n, xs[r], ps[r]};
        sf[r] = (plot_series){names[r], n, xs[r], fs[r]};
        cJSON_Delete(j);
    }
    toy_canvas c;
    if (toy_canvas_new(&c, 2 * 460, 330, 0, 1, 0, 1)) { fprintf(stderr, "eval: out of memory\n"); return 1; }
    plot_lines_panel(&c, 0, 0, 460, 330, "PSNR (DB) VS S", "S", sp, nrep, 0);
    plot_lines_panel(&c, 460, 0, 460, 330, "FRECHET (CLS FEATS, LOG) VS S", "S", sf, nrep, 1);
    int rc = toy_canvas_write(&c, out);
    toy_canvas_free(&c);
    if (rc) { fprintf(stderr, "eval: cannot write %s\n", out); return 1; }
    fprintf(stderr, "[eval vae] wrote %s\n", out);
    return 0;
}
