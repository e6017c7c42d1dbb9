// flags.c: see flags.h.
#include "stages/common/flags.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"

// strtoll/strtod skip leading white space and accept an empty tail only when
// they consumed something; the stages want the whole argument or nothing.
static int starts_ok(const char *text) {
    return text && *text && !isspace((unsigned char)*text);
}

int flag_i64(const char *stage, const char *flag, const char *text, int64_t lo, int64_t hi, int64_t *out) {
    char *end = NULL;
    errno = 0;
    long long v = starts_ok(text) ? strtoll(text, &end, 10) : 0;
    if (!starts_ok(text) || *end || errno == ERANGE || v < lo || v > hi) {
        fprintf(stderr, "%s: %s must be an integer in [%lld, %lld], not '%s'\n", stage, flag, (long long)lo,
                (long long)hi, text ? text : "");
        return FLAG_EUSAGE;
    }
    *out = v;
    return 0;
}

int flag_int(const char *stage, const char *flag, const char *text, int lo, int hi, int *out) {
    int64_t v;
    int e = flag_i64(stage, flag, text, lo, hi, &v);
    if (!e) *out = (int)v;
    return e;
}

int flag_u64(const char *stage, const char *flag, const char *text, uint64_t *out) {
    char *end = NULL;
    errno = 0;
    int ok = starts_ok(text) && isdigit((unsigned char)*text);   // no sign: strtoull turns -1 into 2^64-1
    unsigned long long v = ok ? strtoull(text, &end, 10) : 0;
    if (!ok || *end || errno == ERANGE) {
        fprintf(stderr, "%s: %s must be an integer in [0, %llu], not '%s'\n", stage, flag,
                (unsigned long long)UINT64_MAX, text ? text : "");
        return FLAG_EUSAGE;
    }
    *out = v;
    return 0;
}

int flag_f64(const char *stage, const char *flag, const char *text, double lo, double hi, unsigned open,
             double *out) {
    char *end = NULL;
    double v = starts_ok(text) ? strtod(text, &end) : NAN;
    int ok = starts_ok(text) && !*end && isfinite(v) && ((open & FLAG_OPEN_LO) ? v > lo : v >= lo) &&
             ((open & FLAG_OPEN_HI) ? v < hi : v <= hi);
    if (!ok) {
        // Infinite bounds are open: non-finite values are never taken.
        fprintf(stderr, "%s: %s must be a number in %c%g, %g%c, not '%s'\n", stage, flag,
                (open & FLAG_OPEN_LO) || isinf(lo) ? '(' : '[', lo, hi, (open & FLAG_OPEN_HI) || isinf(hi) ? ')' : ']',
                text ? text : "");
        return FLAG_EUSAGE;
    }
    *out = v;
    return 0;
}

int flag_f32(const char *stage, const char *flag, const char *text, double lo, double hi, unsigned open,
             float *out) {
    double v;
    int e = flag_f64(stage, flag, text, lo, hi, open, &v);
    if (e) return e;
    if (!isfinite((float)v)) {   // e.g. 1e300 inside a range of (0, inf)
        fprintf(stderr, "%s: %s: '%s' does not fit a 32-bit float\n", stage, flag, text);
        return FLAG_EUSAGE;
    }
    *out = (float)v;
    return 0;
}

int flag_device(const char *stage, const char *text, device_kind *kind, int *index) {
    if (device_parse(text, kind, index)) {
        fprintf(stderr, "%s: --device must be cpu, cuda or cuda:N, not '%s'\n", stage, text ? text : "");
        return FLAG_EUSAGE;
    }
    return 0;
}

int flag_device_use(const char *stage, const char *text) {
    device_kind kind;
    int index;
    char msg[512];
    int r = device_resolve(text, &kind, &index);
    if (r || device_activate(kind, index, msg, sizeof msg)) {
        if (r) fprintf(stderr, "%s: --device %s: %s\n", stage, text, vel_errmsg(r));
        else fprintf(stderr, "%s: %s\n", stage, msg);
        return FLAG_EUSAGE;
    }
    // The op API runs on the GPU, but no stage places its model's weights
    // and activations in device memory yet: computing on the CPU instead
    // would be a silent lie, so the request is refused until it does.
    if (kind == DEVICE_CUDA) {
        device_release();
        fprintf(stderr, "%s: --device cuda: this stage does not place its model on the GPU yet "
                        "(CUDA kernels exist behind the op API; stage support is pending); use --device cpu\n",
                stage);
        return FLAG_EUSAGE;
    }
    return 0;
}

static int set_choice(const char *stage, const flag_spec *f, const char *text) {
    for (int i = 0; f->choices[i]; i++)
        if (!strcmp(text, f->choices[i])) { *(int *)f->dst = i; return 0; }
    fprintf(stderr, "%s: --%s must be ", stage, f->name);
    for (int i = 0; f->choices[i]; i++)
        fprintf(stderr, "%s%s", i == 0 ? "" : f->choices[i + 1] ? ", " : " or ", f->choices[i]);
    fprintf(stderr, ", not '%s'\n", text);
    return FLAG_EUSAGE;
}

// One option's value into its destination.
static int set_value(const char *stage, const flag_spec *f, const char *text) {
    char flag[80];
    snprintf(flag, sizeof flag, "--%s", f->name);
    switch (f->kind) {
    case FLAG_STR: *(const char **)f->dst = text; return 0;
    case FLAG_BOOL: *(int *)f->dst = 1; return 0;
    case FLAG_INT: return flag_int(stage, flag, text, (int)f->lo, (int)f->hi, f->dst);
    case FLAG_I64: return flag_i64(stage, flag, text, f->lo, f->hi, f->dst);
    case FLAG_U64: return flag_u64(stage, flag, text, f->dst);
    case FLAG_F64: return flag_f64(stage, flag, text, f->flo, f->fhi, f->open, f->dst);
    case FLAG_F32: return flag_f32(stage, flag, text, f->flo, f->fhi, f->open, f->dst);
    case FLAG_CHOICE: return set_choice(stage, f, text);
    case FLAG_DEVICE: return flag_device_use(stage, text);
    }
    return FLAG_EUSAGE;
}

int flag_threads(const char *stage, const char *text) {
    int n;
    if (flag_int(stage, "--threads", text, 1, FLAG_MAX_THREADS, &n)) return FLAG_EUSAGE;
    omp_set_num_threads(n);
    return 0;
}

enum { FLAG_MAX_SPECS = 64 };

int flag_parse(const char *stage, int argc, char **argv, const flag_spec *specs, int n, int *help,
               int *operands) {
    struct option L[FLAG_MAX_SPECS + 4];
    if (n > FLAG_MAX_SPECS) {
        fprintf(stderr, "%s: too many options for flag_parse (%d > %d)\n", stage, n, FLAG_MAX_SPECS);
        return FLAG_EUSAGE;
    }
    for (int i = 0; i < n; i++)   // val: 256 + the spec's index (clear of every short option)
        L[i] = (struct option){specs[i].name, specs[i].kind == FLAG_BOOL ? no_argument : required_argument, 0, 256 + i};
    L[n] = (struct option){"model", required_argument, 0, 'm'};
    L[n + 1] = (struct option){"help", no_argument, 0, 'h'};
    L[n + 2] = (struct option){"threads", required_argument, 0, 't'};
    L[n + 3] = (struct option){0, 0, 0, 0};
    *help = 0;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", L, NULL)) != -1) {
        if (c == 'm') continue;
        if (c == 't') {
            if (flag_threads(stage, optarg)) return FLAG_EUSAGE;
            continue;
        }
        if (c == 'h') { *help = 1; return 0; }
        if (c < 256 || c >= 256 + n) {
            fprintf(stderr, "%s: unknown or incomplete option '%s' (see --help)\n", stage, argv[optind - 1]);
            return FLAG_EUSAGE;
        }
        if (set_value(stage, &specs[c - 256], optarg)) return FLAG_EUSAGE;
    }
    if (operands) *operands = optind;
    return 0;
}

int stage_mkdir_p(const char *stage, const char *path) {
    char buf[4096];
    if (!path || !*path || strlen(path) >= sizeof buf) {
        fprintf(stderr, "%s: cannot create '%s': path empty or too long\n", stage, path ? path : "");
        return -1;
    }
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {   // each parent in turn, then the path itself
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) && errno != EEXIST) goto fail;
        *p = '/';
    }
    if (mkdir(buf, 0777) && errno != EEXIST) goto fail;
    struct stat sb;
    if (stat(path, &sb) || !S_ISDIR(sb.st_mode)) {   // EEXIST also covers a file of that name
        errno = ENOTDIR;
        strcpy(buf, path);
        goto fail;
    }
    return 0;
fail:
    fprintf(stderr, "%s: cannot create %s: %s\n", stage, buf, strerror(errno));
    return -1;
}

int stage_mkdir_parent(const char *stage, const char *path) {
    const char *slash = path ? strrchr(path, '/') : NULL;
    if (!slash || slash == path) return 0;
    char buf[4096];
    size_t n = (size_t)(slash - path);
    if (n >= sizeof buf) {
        fprintf(stderr, "%s: cannot create the folder of '%s': path too long\n", stage, path);
        return -1;
    }
    memcpy(buf, path, n);
    buf[n] = 0;
    return stage_mkdir_p(stage, buf);
}
