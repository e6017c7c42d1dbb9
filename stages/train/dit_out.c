// dit_out.c: what `train --model dit` writes besides the tensors: the
// checkpoint metadata (and its check on --resume), config.json, the preview
// sample grid and the loss curve.
//
// Checkpoint metadata (decimal strings, in dit.safetensors and
// dit-ema.safetensors; the sampler builds its model from them):
//   dit.preset, dit.depth, dit.hidden, dit.heads, dit.patch, dit.in_channels,
//   dit.input_size, dit.num_classes, dit.qk_norm, dit.time,
//   store.tokenizer_hash, store.shape ("C,H,W"), store.mean, store.std
//   (C floats "%.9g" comma-separated: samples are normalised latents,
//   z = zn * std + mean before the decoder), train.batch, train.seed.
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/image_io.h"
#include "models/vae.h"
#include "models/vae_ckpt.h"
#include "stages/common/plot_lines.h"
#include "stages/train/dit.h"

static void put(dit_meta *m, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void put(dit_meta *m, const char *key, const char *fmt, ...) {
    CHECK(m->n < DIT_META_MAX);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->val[m->n], sizeof m->val[m->n], fmt, ap);
    va_end(ap);
    m->kv[m->n] = (st_kv){key, m->val[m->n]};
    m->n++;
}

static char *floats(const float *x, int n) {
    char *s = malloc((size_t)n * 20 + 1);
    CHECK(s != NULL);
    size_t k = 0;
    s[0] = 0;
    for (int i = 0; i < n; i++) k += (size_t)sprintf(s + k, "%s%.9g", i ? "," : "", (double)x[i]);
    return s;
}

void dit_meta_build(dit_meta *m, const dit_opts *o, const store_meta *sm) {
    memset(m, 0, sizeof *m);
    const ldit_config *c = &o->cfg;
    put(m, "dit.preset", "%s", o->preset);
    put(m, "dit.depth", "%d", c->depth);
    put(m, "dit.hidden", "%d", c->hidden);
    put(m, "dit.heads", "%d", c->heads);
    put(m, "dit.patch", "%d", c->patch);
    put(m, "dit.in_channels", "%d", c->in_channels);
    put(m, "dit.input_size", "%d", c->input_size);
    put(m, "dit.num_classes", "%d", c->num_classes);
    put(m, "dit.qk_norm", "%d", c->qk_norm);
    put(m, "dit.time", "%s", dit_time_name(o->fm.time));
    put(m, "store.tokenizer_hash", "%s", sm->tokenizer_hash);
    put(m, "store.shape", "%lld,%lld,%lld", (long long)sm->shape[0], (long long)sm->shape[1],
        (long long)sm->shape[2]);
    put(m, "train.batch", "%d", o->batch);
    put(m, "train.seed", "%llu", (unsigned long long)o->seed);
    m->stats[0] = floats(sm->mean, (int)sm->shape[0]);
    m->stats[1] = floats(sm->std, (int)sm->shape[0]);
    m->kv[m->n++] = (st_kv){"store.mean", m->stats[0]};
    m->kv[m->n++] = (st_kv){"store.std", m->stats[1]};
}

void dit_meta_free(dit_meta *m) {
    free(m->stats[0]);
    free(m->stats[1]);
    m->stats[0] = m->stats[1] = NULL;
}

int dit_meta_check(const char *path, const dit_meta *want) {
    st_file *f = NULL;
    int e = st_open(&f, path);
    if (e) {
        fprintf(stderr, "train: --resume: %s\n", vel_errmsg(e));   // st_open names the file
        return 2;
    }
    int bad = 0;
    for (int i = 0; i < want->n && !bad; i++) {
        const char *k = want->kv[i].key, *have = st_meta_get(f, k);
        // The stats follow the cache; its hash and shape are checked instead.
        if (!strcmp(k, "store.mean") || !strcmp(k, "store.std")) continue;
        if (!have || strcmp(have, want->kv[i].value)) {
            const char *what = !strncmp(k, "store.", 6) ? "the latent cache differs from the checkpoint's"
                             : !strncmp(k, "dit.", 4)   ? "the model differs from the checkpoint's"
                                                        : "the run's settings differ from the checkpoint's";
            fprintf(stderr, "train: --resume: %s: %s is %s in %s, %s here\n", what, k, have ? have : "(missing)",
                    path, want->kv[i].value);
            bad = 1;
        }
    }
    st_close(&f);
    return bad ? 2 : 0;
}

int dit_write_config(const char *path, const dit_opts *o, const store_meta *sm, int world,
                     int64_t nparams, int64_t nrecords) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", "dit");
    cJSON_AddStringToObject(j, "store", o->store);
    cJSON_AddStringToObject(j, "tokenizer_hash", sm->tokenizer_hash);
    cJSON_AddNumberToObject(j, "records", (double)nrecords);
    cJSON_AddStringToObject(j, "preset", o->preset);
    const ldit_config *c = &o->cfg;
    cJSON_AddNumberToObject(j, "depth", c->depth);
    cJSON_AddNumberToObject(j, "hidden", c->hidden);
    cJSON_AddNumberToObject(j, "heads", c->heads);
    cJSON_AddNumberToObject(j, "patch", c->patch);
    cJSON_AddNumberToObject(j, "in_channels", c->in_channels);
    cJSON_AddNumberToObject(j, "input_size", c->input_size);
    cJSON_AddNumberToObject(j, "num_classes", c->num_classes);
    cJSON_AddBoolToObject(j, "qk_norm", c->qk_norm);
    cJSON_AddNumberToObject(j, "parameters", (double)nparams);
    cJSON_AddStringToObject(j, "time", dit_time_name(o->fm.time));
    cJSON_AddNumberToObject(j, "label_drop", o->fm.label_drop);
    cJSON_AddNumberToObject(j, "cos_weight", o->fm.cos_weight);
    cJSON_AddBoolToObject(j, "flip", o->flip > 0);
    cJSON_AddNumberToObject(j, "batch", o->batch);
    cJSON_AddNumberToObject(j, "world_size", world);
    cJSON_AddNumberToObject(j, "steps", (double)o->steps);
    cJSON_AddStringToObject(j, "optimizer", optim_kind_name(o->optimizer));
    cJSON_AddNumberToObject(j, "lr", o->lr);
    cJSON_AddNumberToObject(j, "warmup", (double)o->warmup);
    cJSON_AddNumberToObject(j, "beta1", o->beta1);
    cJSON_AddNumberToObject(j, "beta2", o->beta2);
    cJSON_AddNumberToObject(j, "weight_decay", o->wd);
    cJSON_AddNumberToObject(j, "clip", o->clip);
    cJSON_AddNumberToObject(j, "ema", o->ema);
    cJSON_AddNumberToObject(j, "seed", (double)o->seed);
    cJSON_AddNumberToObject(j, "time_limit_s", o->time_limit_s);
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    FILE *f = s ? fopen(path, "w") : NULL;
    int rc = (!f || fputs(s, f) < 0) ? -1 : 0;
    if (f && fclose(f)) rc = -1;
    free(s);
    if (rc) fprintf(stderr, "train: cannot write %s\n", path);
    return rc;
}

// Rows of the grid: classes 0..rows-1 (at most 10), `per` samples each.
int dit_preview(const char *path, ldit *m, ema *e, const dit_opts *o, const store_meta *sm) {
    const ldit_config *c = &m->cfg;
    int rows = c->num_classes < 10 ? c->num_classes : 10;
    int per = m->Bmax / rows < 8 ? m->Bmax / rows : 8;
    if (per < 1) { rows = m->Bmax; per = 1; }
    int B = rows * per, S = c->input_size, C = c->in_channels;
    int64_t numel = (int64_t)C * S * S;
    float *z = malloc(sizeof(float) * (size_t)(numel * B));
    int32_t *y = malloc(sizeof(int32_t) * (size_t)B);
    vae *v = NULL;
    float *img = NULL;
    int rc = -1, e2;
    if (!z || !y) { fprintf(stderr, "train: preview: out of memory\n"); goto done; }
    for (int i = 0; i < B; i++) y[i] = i / per;
    ema_swap(e, &m->pt);
    e2 = dit_euler_sample(m, z, y, B, o->sample_steps, o->seed);
    ema_swap(e, &m->pt);
    if (e2 || store_denormalise(z, z, sm, B)) { fprintf(stderr, "train: preview sampling failed\n"); goto done; }
    if (o->tokenizer) {
        char wp[1200];
        snprintf(wp, sizeof wp, "%s.safetensors", o->tokenizer);
        vae_config vc;
        int ve = vae_config_from_ckpt(wp, NULL, &vc);
        if (ve) {
            fprintf(stderr, "train: --tokenizer: %s\n", vel_errmsg(ve));
            goto done;
        }
        if (vc.z_channels != C || vae_latent_side(&vc) != S) {
            fprintf(stderr, "train: --tokenizer %s makes %dx%dx%d latents, the cache holds %dx%dx%d\n", wp,
                    vc.z_channels, vae_latent_side(&vc), vae_latent_side(&vc), C, S, S);
            goto done;
        }
        if (vae_create(&v, &vc, B, 0)) {
            fprintf(stderr, "train: --tokenizer %s: out of memory\n", wp);
            goto done;
        }
        if ((e2 = st_load_params(wp, &v->pt))) {   // the message names the file: print it once
            fprintf(stderr, "train: --tokenizer: %s\n", vel_errmsg(e2));
            goto done;
        }
        const float *x = vae_decode(v, z, B);
        if (image_grid_write_png(path, x, B, vc.out_ch, vc.resolution, vc.resolution, per)) {
            fprintf(stderr, "train: cannot write %s\n", path);
            goto done;
        }
    } else {
        // Latent channel 0 in gray, scaled by the grid's largest magnitude.
        img = malloc(sizeof(float) * (size_t)(B * S * S));
        if (!img) goto done;
        float mx = 1e-6f;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < S * S; i++) {
                float a = z[b * numel + i];
                img[b * S * S + i] = a;
                if (a > mx) mx = a;
                if (-a > mx) mx = -a;
            }
        for (int i = 0; i < B * S * S; i++) img[i] /= mx;
        if (image_grid_write_png(path, img, B, 1, S, S, per)) {
            fprintf(stderr, "train: cannot write %s\n", path);
            goto done;
        }
    }
    rc = 0;
done:
    vae_destroy(&v);
    free(img);
    free(z);
    free(y);
    return rc;
}

// log.jsonl lines {"step":N,"loss":L,"mse":M,"cos":C,...} -> one panel with
// loss, mse and cos against the step (log y axis).
int dit_plot_loss(const char *png, const char *jsonl) {
    FILE *f = fopen(jsonl, "r");
    if (!f) { fprintf(stderr, "train: cannot read %s\n", jsonl); return -1; }
    int n = 0, cap = 0, rc = -1;
    double *col[4] = {NULL, NULL, NULL, NULL};   // step, loss, mse, cos
    static const char *key[4] = {"step", "loss", "mse", "cos"};
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *it[4];
        int ok = j != NULL;
        for (int k = 0; k < 4 && ok; k++) ok = cJSON_IsNumber(it[k] = cJSON_GetObjectItem(j, key[k]));
        if (ok && n == cap) {
            cap = cap ? 2 * cap : 1024;
            for (int k = 0; k < 4 && ok; k++) {
                double *g = realloc(col[k], sizeof(double) * (size_t)cap);
                if (g) col[k] = g;
                else ok = 0;
            }
            if (!ok) { cJSON_Delete(j); fprintf(stderr, "train: out of memory plotting %s\n", jsonl); goto done; }
        }
        for (int k = 0; k < 4 && ok; k++) col[k][n] = it[k]->valuedouble;
        n += ok;
        cJSON_Delete(j);
    }
    plot_series s[3] = {{"LOSS", n, col[0], col[1]}, {"MSE", n, col[0], col[2]}, {"COS", n, col[0], col[3]}};
    toy_canvas c;
    if (toy_canvas_new(&c, 640, 400, 0, 1, 0, 1) == 0) {
        plot_lines_panel(&c, 0, 0, 640, 400, "TRAINING LOSS (LOG) VS STEP", "STEP", s, 3, 1);
        rc = toy_canvas_write(&c, png) ? -1 : 0;
        toy_canvas_free(&c);
    }
    if (rc) fprintf(stderr, "train: cannot write %s\n", png);
done:
    fclose(f);
    for (int k = 0; k < 4; k++) free(col[k]);
    return rc;
}

int dit_log_truncate(const char *path, int64_t step) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;   // no log yet: nothing to cut
    char tmp[1300], line[1024];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *g = fopen(tmp, "w");
    int rc = g ? 0 : -1;
    while (g && fgets(line, sizeof line, f)) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *s = cJSON_GetObjectItem(j, "step");
        if (cJSON_IsNumber(s) && s->valuedouble <= (double)step && fputs(line, g) < 0) rc = -1;
        cJSON_Delete(j);
    }
    fclose(f);
    if (g && fclose(g)) rc = -1;
    if (!rc && rename(tmp, path)) rc = -1;
    if (rc) fprintf(stderr, "train: cannot rewrite %s\n", path);
    return rc;
}
