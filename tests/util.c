// tests/util.c: see util.h.
#include "tests/util.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/base.h"

int npy_load(const char *path, npy_array *out) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "npy: cannot open %s\n", path); return -1; }
    unsigned char pre[10];
    int rc = -2;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) goto done;
    size_t hlen;
    if (pre[6] == 1) {
        hlen = pre[8] | (pre[9] << 8);
    } else {
        unsigned char b[2];
        if (fread(b, 1, 2, f) != 2) goto done;
        hlen = pre[8] | (pre[9] << 8) | ((size_t)b[0] << 16) | ((size_t)b[1] << 24);
    }
    if (hlen > 65536) goto done;
    char *h = calloc(1, hlen + 1);
    if (fread(h, 1, hlen, f) != hlen) { free(h); goto done; }
    char *d = strstr(h, "'descr':"), *s = strstr(h, "'shape':");
    if (!d || !s || strstr(h, "'fortran_order': True")) { free(h); goto done; }
    d = strchr(d + 8, '\'');
    if (!d || d[1] != '<' ) { free(h); goto done; }
    memcpy(out->dtype, d + 2, 2);
    size_t esz = (out->dtype[1] == '4') ? 4 : 8;
    s = strchr(s, '(');
    out->numel = 1;
    for (char *p = s + 1; *p && *p != ')';) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') break;
        long long v = strtoll(p, &p, 10);
        out->shape[out->ndim++] = v;
        out->numel *= v;
    }
    free(h);
    out->data = malloc(out->numel * esz + 1);
    if (fread(out->data, esz, out->numel, f) != (size_t)out->numel) { free(out->data); out->data = NULL; goto done; }
    rc = 0;
done:
    if (rc) fprintf(stderr, "npy: bad file %s\n", path);
    fclose(f);
    return rc;
}

void npy_free(npy_array *a) { free(a->data); a->data = NULL; }

static npy_array ref_load(const char *group, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "build/ref/%s/%s.npy", group, name);
    npy_array a;
    cr_assert(npy_load(path, &a) == 0, "missing reference %s (run `make refs`)", path);
    return a;
}

float *ref_f32(const char *group, const char *name, int64_t *numel) {
    npy_array a = ref_load(group, name);
    if (numel) *numel = a.numel;
    if (!strcmp(a.dtype, "f4")) return a.data;
    float *out = malloc(a.numel * sizeof(float) + 1);
    for (int64_t i = 0; i < a.numel; i++) {
        if (!strcmp(a.dtype, "f8")) out[i] = (float)((double *)a.data)[i];
        else if (!strcmp(a.dtype, "i4")) out[i] = (float)((int32_t *)a.data)[i];
        else out[i] = (float)((int64_t *)a.data)[i];
    }
    npy_free(&a);
    return out;
}

double *ref_f64(const char *group, const char *name, int64_t *numel) {
    npy_array a = ref_load(group, name);
    if (numel) *numel = a.numel;
    if (!strcmp(a.dtype, "f8")) return a.data;
    double *out = malloc(a.numel * sizeof(double) + 1);
    for (int64_t i = 0; i < a.numel; i++) {
        if (!strcmp(a.dtype, "f4")) out[i] = ((float *)a.data)[i];
        else if (!strcmp(a.dtype, "i4")) out[i] = ((int32_t *)a.data)[i];
        else out[i] = (double)((int64_t *)a.data)[i];
    }
    npy_free(&a);
    return out;
}

#define COMPARE_BODY                                                          \
    cmp_result r = {0, 0, 0, -1, 1};                                          \
    double se = 0, sr = 0, worst_excess = -INFINITY;                          \
    for (int64_t i = 0; i < n; i++) {                                         \
        double a = x[i], b = ref[i], e = fabs(a - b);                         \
        double rel = e / (fabs(b) > 1e-30 ? fabs(b) : 1e-30);                 \
        if (!(e <= atol + rtol * fabs(b))) r.ok = 0;                          \
        if (isnan(e)) e = INFINITY;                                           \
        double excess = e - (atol + rtol * fabs(b));                          \
        if (excess > worst_excess) { worst_excess = excess; r.worst = i; }    \
        if (e > r.max_abs) r.max_abs = e;                                     \
        if (rel > r.max_rel) r.max_rel = rel;                                 \
        se += (a - b) * (a - b); sr += b * b;                                 \
    }                                                                         \
    r.nmse = sr > 0 ? se / sr : se;                                           \
    return r;

cmp_result compare_f32(const float *x, const float *ref, int64_t n, double atol, double rtol) { COMPARE_BODY }
cmp_result compare_f64(const double *x, const double *ref, int64_t n, double atol, double rtol) { COMPARE_BODY }

void expect_close_f32(const char *what, const float *x, const float *ref, int64_t n, double atol, double rtol) {
    cmp_result r = compare_f32(x, ref, n, atol, rtol);
    cr_assert(r.ok, "%s: n=%lld max_abs=%.3g max_rel=%.3g nmse=%.3g worst[%lld]: got %.9g want %.9g (atol %g rtol %g)",
              what, (long long)n, r.max_abs, r.max_rel, r.nmse, (long long)r.worst,
              r.worst >= 0 ? x[r.worst] : 0.0, r.worst >= 0 ? ref[r.worst] : 0.0, atol, rtol);
}

void expect_close_f64(const char *what, const double *x, const double *ref, int64_t n, double atol, double rtol) {
    cmp_result r = compare_f64(x, ref, n, atol, rtol);
    cr_assert(r.ok, "%s: n=%lld max_abs=%.3g max_rel=%.3g nmse=%.3g worst[%lld]: got %.12g want %.12g (atol %g rtol %g)",
              what, (long long)n, r.max_abs, r.max_rel, r.nmse, (long long)r.worst,
              r.worst >= 0 ? x[r.worst] : 0.0, r.worst >= 0 ? ref[r.worst] : 0.0, atol, rtol);
}

uint64_t test_mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// The SplitMix64 generator: state advances by the golden-ratio step, output
// is the finaliser of the state (so a stream equals test_mix64 of 0, 1, 2.. steps).
static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = test_mix64(*s);
    *s += 0x9e3779b97f4a7c15ull;
    return z;
}
static double unit(uint64_t *s) { return (splitmix64(s) >> 11) * 0x1.0p-53; }

void fill_uniform(float *x, int64_t n, uint64_t seed, float lo, float hi) {
    for (int64_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * (float)unit(&seed);
}
void fill_uniform_f64(double *x, int64_t n, uint64_t seed, double lo, double hi) {
    for (int64_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * unit(&seed);
}
void fill_normal(float *x, int64_t n, uint64_t seed, float std) {
    for (int64_t i = 0; i < n; i++) {
        double u1 = unit(&seed), u2 = unit(&seed);
        if (u1 < 1e-300) u1 = 1e-300;
        x[i] = std * (float)(sqrt(-2 * log(u1)) * cos(2 * M_PI * u2));
    }
}

char *test_tmpdir(const char *tag) {
    char *p = NULL;
    cr_assert(asprintf(&p, "/tmp/vel-test-%s-XXXXXX", tag) > 0);
    cr_assert(mkdtemp(p) != NULL, "mkdtemp failed");
    return p;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}
void rm_rf(const char *path) { nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

int test_files_equal(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int eq = fa && fb;
    while (eq) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) eq = 0;
        if (ca == EOF || cb == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return eq;
}

char *test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (b = malloc((size_t)n + 1)) && fread(b, 1, (size_t)n, f) == (size_t)n) {
        b[n] = 0;
        if (len) *len = (size_t)n;
    } else {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

int test_sh(const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

pid_t test_spawn(const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

int test_wait(pid_t pid) {
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void test_write_full(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) _exit(90);
        c += w;
        n -= (size_t)w;
    }
}

int test_read_full(int fd, void *p, size_t n, int timeout_ms) {
    char *c = p;
    double end = vel_now() + timeout_ms / 1000.0;
    while (n) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int left = (int)((end - vel_now()) * 1000);
        if (left <= 0 || poll(&pf, 1, left) <= 0) return -1;
        ssize_t r = read(fd, c, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

static int port_bindable(int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(s >= 0, "socket: %s", strerror(errno));
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = bind(s, (struct sockaddr *)&a, sizeof a) == 0;
    close(s);
    return ok;
}

void test_ephemeral_range(int *lo, int *hi) {
    *lo = 32768, *hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (!f) return;
    if (fscanf(f, "%d %d", lo, hi) != 2) *lo = 32768, *hi = 60999;
    fclose(f);
}

int test_free_ports(int n) {
    int lo, hi;
    test_ephemeral_range(&lo, &hi);
    // Below the range, else above it, else anywhere (a host whose range
    // leaves no room: the race stays possible there).
    const int step = n < 32 ? 32 : n;
    int first = 10000, slots = (lo - first - n) / step;
    if (slots < 1) first = hi + 1, slots = (65535 - hi - n) / step;
    if (slots < 1) first = 10000, slots = (65535 - first - n) / step;
    for (int k = 0; k < slots; k++) {
        const int base = first + (int)(((unsigned)getpid() + (unsigned)k) % (unsigned)slots) * step;
        int ok = 1;
        for (int i = 0; i < n && ok; i++) ok = port_bindable(base + i);
        if (ok) return base;
    }
    cr_assert_fail("no %d free tcp ports from %d", n, first);
    return -1;
}
