// vae_ckpt.c: see vae_ckpt.h.
#include "models/vae_ckpt.h"

#include <stdio.h>
#include <string.h>

#include "core/base.h"
#include "nn/safetensors.h"

int vae_config_from_ckpt(const char *path, const char *want, vae_config *out) {
    st_file *f = NULL;
    int e = st_open(&f, path);
    if (e) return e;   // its detail names the file
    const char *meta = st_meta_get(f, "vae.config");
    const char *name = meta ? meta : want ? want : "f4c4";
    int rc = VEL_EINVAL;
    if (meta && want && strcmp(meta, want)) {
        vel_fail(VEL_EINVAL, "%s holds a '%s' tokenizer, not '%s'", path, meta, want);
        goto done;
    }
    int ci = st_find(f, "encoder.conv_in.weight"), co = st_find(f, "decoder.conv_out.weight");
    if (ci < 0 || co < 0) {
        vel_fail(VEL_EINVAL, "%s: no encoder.conv_in.weight / decoder.conv_out.weight (not a VAE?)", path);
        goto done;
    }
    const st_entry *wi = st_get(f, ci), *wo = st_get(f, co);
    if (wi->ndim != 4 || wo->ndim != 4 || (wi->shape[1] != 1 && wi->shape[1] != 3) ||
        (wo->shape[0] != 1 && wo->shape[0] != 3)) {
        vel_fail(VEL_EINVAL, "%s: conv_in / conv_out weights are not (OC, 1|3, k, k) / (1|3, C, k, k)", path);
        goto done;
    }
    if (vae_config_preset(name, (int)wi->shape[1], out)) {
        vel_fail(VEL_EINVAL, "%s: unknown tokenizer config '%s'", path, name);
        goto done;
    }
    out->out_ch = (int)wo->shape[0];
    rc = 0;
done:
    st_close(&f);
    return rc;
}
