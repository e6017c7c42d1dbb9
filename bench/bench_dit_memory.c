// bench_dit_memory.c: peak resident memory of one LightningDiT training step
// (forward + backward, models/lightningdit.h) against what the shapes say it
// should be: parameter + gradient bytes plus the activation bytes computed
// here from the layer shapes (independently of the model's arena carving,
// whose committed size is printed beside it).
//
// The step runs in a forked child; the parent reads the child's ru_maxrss
// (getrusage RUSAGE_CHILDREN) and subtracts the child's resident size just
// before it built the model. Default: LightningDiT-B (depth 12, D 768,
// 12 heads, patch 1, 32 x 16 x 16 latent, 256 tokens) at batch 8.
// Not a speed benchmark (it prints the step time only as information).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "models/lightningdit.h"
#include "core/base.h"

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kb = atol(line + 6);
    if (f) fclose(f);
    return kb;
}

// Activation floats from the shapes: what the backward needs saved, plus the
// backward's scratch (one set shared by all blocks).
static double act_floats(const ldit_config *c, int B) {
    const double T = ldit_tokens(c), N = B * T, D = c->hidden, H = ldit_mlp_hidden(c);
    const double NH = c->heads, HD = D / NH, P = c->patch * c->patch * c->in_channels;
    double blk = N * D * 10          // x_in, xn1, xm1, att, ya, x_mid, xn2, xm2, ym (9) + qkv's extra below
               + N * 3 * D - N * D   // qkv is 3D wide (one D counted above)
               + N * 3 * H           // x12 (2H) and the SwiGLU output (H)
               + N * 2 + N * NH      // two RMSNorm rstd, attention lse
               + B * 6 * D;          // adaLN output
    if (c->qk_norm) blk += 2 * N * D + 2 * N * NH;
    double fixed = T * D + 2 * T * HD                       // pos_embed, rope tables
                 + N * P * 2 + B * (256 + 6 * D)            // patches, final tokens, conditioning
                 + N * D * 3 + N + B * 2 * D;               // x_out, final norm/modulate, final adaLN
    if (c->qk_norm) fixed += N * D;                        // normalised q/k before RoPE
    // dres, dy, dxm, dxn, datt, dtmp, dtmp2; dqkv; dx12 + dh; adaLN and
    // conditioning grads; token grads
    double scratch = N * D * 7 + N * 3 * D + N * 3 * H + B * 10 * D + 2 * N * P;
    return c->depth * blk + fixed + scratch;
}

static int child(const ldit_config *c, int B, int fd) {
    long base = rss_kb();
    ldit *m;
    int rc = ldit_create(&m, c, B);
    if (rc) { fprintf(stderr, "ldit_create: %s\n", vel_strerror(rc)); return 1; }
    ldit_init_params(m, 1);
    // random (not adaLN-Zero) weights keep every activation non-trivial
    for (int64_t i = 0; i < m->pt.total; i++) m->pt.values[i] += 1e-3f * (float)((i * 2654435761u) % 1000) / 1000.0f;
    const size_t nx = (size_t)B * c->in_channels * c->input_size * c->input_size;
    float *x = xmalloc(nx * 4), *v = xmalloc(nx * 4), *dv = xmalloc(nx * 4);
    float *t = xmalloc(B * 4);
    int32_t *y = xmalloc(B * 4);
    for (size_t i = 0; i < nx; i++) { x[i] = (float)((i * 7919) % 200) / 100.0f - 1.0f; dv[i] = 1.0f / nx; }
    for (int b = 0; b < B; b++) { t[b] = (b + 0.5f) / B; y[b] = b % c->num_classes; }
    double t0 = vel_now();
    param_zero_grads(&m->pt);
    rc = ldit_forward(m, v, x, t, y, NULL, B);
    double t1 = vel_now();
    if (!rc) ldit_backward(m, NULL, dv);
    double t2 = vel_now();
    double msg[3] = {(double)base, (double)m->act_bytes, (double)m->pt.total * 8};
    if (write(fd, msg, sizeof msg) != (ssize_t)sizeof msg) return 1;
    printf("step: forward %.0f ms, backward %.0f ms\n", (t1 - t0) * 1e3, (t2 - t1) * 1e3);
    fflush(stdout);   // the child leaves through _exit
    ldit_destroy(&m);
    return rc ? 1 : 0;
}

int main(int argc, char **argv) {
    const char *preset = "B";
    int B = 8, depth = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: %s [--model S|B|L|XL|tiny] [--batch N] [--depth N]\n"
                   "Peak RSS of one LightningDiT forward+backward (forked child, ru_maxrss)\n"
                   "vs parameter+gradient bytes plus activation bytes from the shapes.\n"
                   "Default: LightningDiT-B, batch 8, 32x16x16 latent, patch 1.\n", argv[0]);
            return 0;
        } else if (!strcmp(argv[i], "--model") && i + 1 < argc) preset = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--depth") && i + 1 < argc) depth = atoi(argv[++i]);
        else { fprintf(stderr, "unknown argument '%s' (see --help)\n", argv[i]); return 2; }
    }
    ldit_config c;
    if (ldit_config_preset(preset, &c)) { fprintf(stderr, "unknown model '%s'\n", preset); return 2; }
    if (depth > 0) c.depth = depth;
    if (B < 1 || B > 1024) { fprintf(stderr, "--batch must be 1..1024\n"); return 2; }
    int fds[2];
    if (pipe(fds)) { perror("pipe"); return 1; }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 1; }
    if (pid == 0) { close(fds[0]); _exit(child(&c, B, fds[1])); }
    close(fds[1]);
    double msg[3];
    ssize_t got = read(fds[0], msg, sizeof msg);
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) { perror("wait4"); return 1; }
    if (got != (ssize_t)sizeof msg || !WIFEXITED(status) || WEXITSTATUS(status)) {
        fprintf(stderr, "child failed\n");
        return 1;
    }
    const double MiB = 1024.0 * 1024.0;
    const double peak = ru.ru_maxrss * 1024.0 - msg[0] * 1024.0;
    const double pg = msg[2], arena = msg[1], shapes = act_floats(&c, B) * 4;
    printf("model %s depth %d D %d heads %d tokens %d batch %d, params %lld\n", preset, c.depth,
           c.hidden, c.heads, ldit_tokens(&c), B, (long long)ldit_param_count(&c));
    printf("params+grads      %9.1f MiB\n", pg / MiB);
    printf("activations/shapes %8.1f MiB (arena committed %.1f MiB)\n", shapes / MiB, arena / MiB);
    printf("expected          %9.1f MiB\n", (pg + shapes) / MiB);
    printf("peak RSS (delta)  %9.1f MiB  ratio %.3f\n", peak / MiB, peak / (pg + shapes));
    return 0;
}
