// toy_ckpt.c: see toy_ckpt.h.
#include "models/toy_ckpt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/toy_mlp.h"

int toy_ckpt_save(const char *path, const param_table *pt, const char *model, int depth, int width,
                  const st_kv *extra, int nextra) {
    char ds[16], ws[16];
    snprintf(ds, sizeof ds, "%d", depth);
    snprintf(ws, sizeof ws, "%d", width);
    st_kv kv[40];
    int n = 0;
    kv[n++] = (st_kv){"model", model};
    kv[n++] = (st_kv){"depth", ds};
    kv[n++] = (st_kv){"width", ws};
    for (int i = 0; i < nextra && n < 40; i++) kv[n++] = extra[i];
    return st_save_params(path, pt, DT_F32, kv, n);   // its detail names the file
}

int toy_ckpt_arch(const char *path, const char *want_model, int *depth, int *width) {
    st_file *f;
    int rc = st_open(&f, path);
    if (rc) return rc;   // its detail names the file (printing the path again doubled it)
    const char *m = st_meta_get(f, "model"), *d = st_meta_get(f, "depth"), *w = st_meta_get(f, "width");
    rc = 0;
    if (!m || strcmp(m, want_model) != 0) {
        rc = vel_fail(TOY_EMODEL, "%s: checkpoint holds model '%s', expected '%s'", path, m ? m : "(none)",
                      want_model);
    } else {
        char *end1 = NULL, *end2 = NULL;
        long dv = d ? strtol(d, &end1, 10) : -1, wv = w ? strtol(w, &end2, 10) : -1;
        if (!d || !w || *end1 || *end2 || dv < 0 || dv + 1 > TOY_MAX_LAYERS || wv <= 0 || wv > 65536) {
            rc = vel_fail(TOY_EMODEL, "%s: bad depth/width in metadata", path);
        } else {
            *depth = (int)dv;
            *width = (int)wv;
        }
    }
    st_close(&f);
    return rc;
}

int toy_ckpt_load_params(const char *path, param_table *pt) {
    return st_load_params(path, pt);   // its detail names the file and tensor
}
