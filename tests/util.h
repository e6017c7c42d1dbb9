// tests/util.h: helpers shared by the Criterion tests.
// - .npy loading for references written by tests/ref/gen_*.py (numpy's
//   np.save, little-endian '<f4', '<f8', '<i4', '<i8', C order only);
// - closeness checks in HACKING.md's form |x - r| <= atol + rtol*|r|, which
//   report max abs/rel error, the worst index and the NMSE on failure;
// - central finite differences in double precision;
// - seeded test data and per-test temp directories.
#ifndef TESTS_UTIL_H
#define TESTS_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct {
    char dtype[4];        // "f4", "f8", "i4", "i8"
    int ndim;
    int64_t shape[8];
    int64_t numel;
    void *data;           // malloc'ed; free with npy_free
} npy_array;

// Load path; returns 0 or a negative code (message printed to stderr).
int npy_load(const char *path, npy_array *out);
void npy_free(npy_array *a);
// Convenience: load build/ref/<group>/<name>.npy as float32 (converting from
// f8 if needed). Aborts the test (cr_assert) if missing. Caller frees.
float *ref_f32(const char *group, const char *name, int64_t *numel);
double *ref_f64(const char *group, const char *name, int64_t *numel);

typedef struct {
    double max_abs, max_rel, nmse;
    int64_t worst;        // index of the worst violation (or largest error)
    int ok;
} cmp_result;

cmp_result compare_f32(const float *x, const float *ref, int64_t n, double atol, double rtol);
cmp_result compare_f64(const double *x, const double *ref, int64_t n, double atol, double rtol);
// cr_assert with a full report: what, n, max abs/rel error, worst index, NMSE.
void expect_close_f32(const char *what, const float *x, const float *ref, int64_t n,
                      double atol, double rtol);
void expect_close_f64(const char *what, const double *x, const double *ref, int64_t n,
                      double atol, double rtol);

// Deterministic test data: splitmix64-based uniform in [lo, hi) / normal.
void fill_uniform(float *x, int64_t n, uint64_t seed, float lo, float hi);
void fill_normal(float *x, int64_t n, uint64_t seed, float std);
void fill_uniform_f64(double *x, int64_t n, uint64_t seed, double lo, double hi);

// Makes a fresh directory under /tmp for this test; returns a malloc'ed path.
char *test_tmpdir(const char *tag);
void rm_rf(const char *path);
// 1 when both files exist and hold the same bytes.
int test_files_equal(const char *a, const char *b);
// The whole file, malloc'ed and NUL-terminated (*len bytes without the NUL;
// len may be NULL); NULL when it cannot be read.
char *test_read_file(const char *path, size_t *len);
// Runs a printf-formatted shell command (system); its exit code, 128 if it
// did not exit normally.
int test_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Starts a printf-formatted shell command in a child process (sh -c) and
// returns its pid without waiting (-1 if fork failed).
pid_t test_spawn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Waits for child pid (asserting that waitpid succeeds); returns its exit
// status, or 128 + the signal that ended it.
int test_wait(pid_t pid);
// SplitMix64's finaliser: a well-mixed 64-bit value from any input (seeds
// and expected payloads that two test processes derive independently).
uint64_t test_mix64(uint64_t z);
// Pipes between a test and the processes it forks: writes all n bytes
// (retrying on EINTR; _exit(90) if the pipe is gone, as a forked child
// should), and reads exactly n bytes within timeout_ms (0, or -1 on timeout
// or end of file).
void test_write_full(int fd, const void *p, size_t n);
int test_read_full(int fd, void *p, size_t n, int timeout_ms);
// A first tcp port P with P .. P+n-1 all bindable on 127.0.0.1 right now,
// outside the kernel's ephemeral range (/proc/sys/net/ipv4/ip_local_port_range;
// below it, else above, else anywhere if it leaves no room): a port inside it
// may be taken later by any connection's local side, one lingering in
// TIME_WAIT included, and a stage's bind then fails. The pid spreads
// concurrent test runs apart.
int test_free_ports(int n);
// The kernel's ephemeral port range (32768 and 60999, its default, when the
// file cannot be read).
void test_ephemeral_range(int *lo, int *hi);

#endif
