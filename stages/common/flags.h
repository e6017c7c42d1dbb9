// flags.h: the number, device and folder parsing every stage's getopt loop
// shares. Each stage keeps its own getopt_long table and --help text; for
// each value it calls one of these, which parses the whole argument (no
// trailing junk, no silent wrap: integers go through 64 bits and must lie
// in [lo, hi]), prints one line naming the stage and the flag on failure,
//   "sample: --n must be an integer in [1, 10000000], not '4294967297'"
// and returns FLAG_EUSAGE (2, the stages' exit code for usage errors), so a
// caller writes
//   case 'n': if (flag_int("sample", "--n", optarg, 1, SAMPLE_MAX_N, &n)) return 2; break;
// Upper bounds are the caller's: where memory or time follows from a number
// (points held, widths, steps), the bound keeps a typo from allocating
// gigabytes before failing.
// Not here: the --model dispatcher (stages/common/dispatch.h).
#ifndef STAGES_COMMON_FLAGS_H
#define STAGES_COMMON_FLAGS_H

#include <stddef.h>
#include <stdint.h>

#include "nn/device.h"

enum { FLAG_EUSAGE = 2 };

// Integers: decimal, optional sign, nothing before or after.
int flag_i64(const char *stage, const char *flag, const char *text, int64_t lo, int64_t hi, int64_t *out);
int flag_int(const char *stage, const char *flag, const char *text, int lo, int hi, int *out);
// Seeds: any value in [0, 2^64 - 1]; a sign is refused (strtoull would wrap -1).
int flag_u64(const char *stage, const char *flag, const char *text, uint64_t *out);

// Floats: strtod syntax (1e-3, 0.5, inf is refused), finite, in the range.
// open: FLAG_OPEN_LO makes the lower bound strict (x > lo), FLAG_OPEN_HI the
// upper (x < hi); 0 for a closed range.
enum { FLAG_OPEN_LO = 1, FLAG_OPEN_HI = 2 };
int flag_f64(const char *stage, const char *flag, const char *text, double lo, double hi, unsigned open,
             double *out);
// As flag_f64, stored as float (the range is checked on the double).
int flag_f32(const char *stage, const char *flag, const char *text, double lo, double hi, unsigned open,
             float *out);

// --device cpu|cuda[:N]: parses the name (a bad name is a usage error).
int flag_device(const char *stage, const char *text, device_kind *kind, int *index);
// At the start of the run: checks that the device chosen is usable (cuda:
// built with CUDA, a GPU present) and makes it this thread's device
// (device_activate: the CUDA context the ops on device memory run on; a
// model's tensors still live where the model puts them). Prints
// "STAGE: --device cuda: ..." and returns FLAG_EUSAGE when it is not usable
// (asking for a GPU the machine does not have is the caller's mistake).
// It also refuses a usable GPU: the stages that use it do not place their
// model in device memory, and computing on the CPU instead would hide that.
// (train --model dit and sample --model dit do: they parse with flag_device
// and activate the device themselves.)
int flag_device_use(const char *stage, const char *text);

// --threads N: the number of CPU threads of this process (OpenMP: the
// nn/cpu kernels and OpenBLAS's OpenMP build share one libgomp pool), set with
// omp_set_num_threads before any work. Without the flag OMP_NUM_THREADS
// decides, else one thread per core. Results do not depend on it (the CPU
// kernels are bit-identical for any thread count).
enum { FLAG_MAX_THREADS = 1024 };
int flag_threads(const char *stage, const char *text);

// ---- whole command lines --------------------------------------------------
// A stage lists its options once, as a table; flag_parse runs getopt_long
// over it (GNU syntax: --name VALUE, --name=VALUE, unambiguous prefixes,
// options and operands in any order) and stores each value through its
// pointer, with the checks above. --model NAME (the dispatcher's),
// --threads N (flag_threads) and --help / -h are always accepted.
typedef enum {
    FLAG_STR,      // const char **: the argument itself
    FLAG_BOOL,     // int *: 1 when present (takes no argument)
    FLAG_INT,      // int *, in [lo, hi]
    FLAG_I64,      // int64_t *, in [lo, hi]
    FLAG_U64,      // uint64_t * (seeds)
    FLAG_F64,      // double *, in [flo, fhi] (open ends per `open`)
    FLAG_F32,      // float *, likewise
    FLAG_CHOICE,   // int *: index of the argument in choices (NULL-terminated)
    FLAG_DEVICE,   // --device cpu|cuda[:N]: flag_device_use (dst unused)
} flag_kind;

typedef struct {
    const char *name;               // without the leading "--"
    flag_kind kind;
    void *dst;
    int64_t lo, hi;                 // FLAG_INT, FLAG_I64
    double flo, fhi;                // FLAG_F64, FLAG_F32
    unsigned open;                  // FLAG_F64, FLAG_F32: FLAG_OPEN_LO | FLAG_OPEN_HI
    const char *const *choices;     // FLAG_CHOICE
} flag_spec;

#define FLAG_STR_(name, p) {name, FLAG_STR, p, 0, 0, 0, 0, 0, 0}
#define FLAG_BOOL_(name, p) {name, FLAG_BOOL, p, 0, 0, 0, 0, 0, 0}
#define FLAG_INT_(name, p, lo, hi) {name, FLAG_INT, p, lo, hi, 0, 0, 0, 0}
#define FLAG_I64_(name, p, lo, hi) {name, FLAG_I64, p, lo, hi, 0, 0, 0, 0}
#define FLAG_U64_(name, p) {name, FLAG_U64, p, 0, 0, 0, 0, 0, 0}
#define FLAG_F64_(name, p, lo, hi, open) {name, FLAG_F64, p, 0, 0, lo, hi, open, 0}
#define FLAG_F32_(name, p, lo, hi, open) {name, FLAG_F32, p, 0, 0, lo, hi, open, 0}
#define FLAG_CHOICE_(name, p, list) {name, FLAG_CHOICE, p, 0, 0, 0, 0, 0, list}
#define FLAG_DEVICE_ {"device", FLAG_DEVICE, 0, 0, 0, 0, 0, 0, 0}
#define FLAG_COUNT(table) ((int)(sizeof(table) / sizeof *(table)))

// Parses argv against specs[0..n). Returns 0 (*help set when --help or -h
// came, parsing stopped there), or FLAG_EUSAGE after one line on stderr
// (unknown or incomplete option, a bad value). *operands (may be NULL)
// receives the index in argv of the first operand (argv is permuted so that
// the operands come last, as getopt_long does).
int flag_parse(const char *stage, int argc, char **argv, const flag_spec *specs, int n, int *help,
               int *operands);

// mkdir -p: creates path and every missing parent (mode 0777 before umask).
// 0, or -1 with "STAGE: cannot create PATH: REASON" printed.
int stage_mkdir_p(const char *stage, const char *path);
// mkdir -p of the folder that will hold the file at path (nothing when the
// path has no folder part).
int stage_mkdir_parent(const char *stage, const char *path);

#endif
