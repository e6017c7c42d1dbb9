// bench_store: random-access reads of latent records from the LMDB cache
// (store_read_batch into a (B,C,H,W) batch buffer, as the train stage does),
// in records/s and GB/s, beside a RAM memcpy gather of the same bytes with
// the same index sequence measured in the same run; prints the ratio.
// Two shapes: the real latent 32x16x16 f32 (mu + sigma = 64 KiB/record) and
// the toy 2x1x1 (16 bytes: per-record overhead dominates).
// The cache is written first (its write rate is printed too) and is then
// warm in the page cache: this measures the store's own cost, not the disk.
// Bounded: each timed phase runs --seconds (default 2); the temp directory
// is removed at the end.
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static uint64_t lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

static void die(const char *what, int rc) {
    fprintf(stderr, "bench_store: %s: %s (%s)\n", what, vel_strerror(rc), vel_error_detail());
    exit(1);
}

typedef struct { double recs_per_s, gb_per_s; } rate;

// One shape: write n records, then time random batch reads vs memcpy.
static void run_shape(const char *root, const char *name, int64_t C, int64_t H, int64_t W,
                      size_t n, size_t B, double seconds) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    store_meta m;
    int rc = store_meta_init(&m, "bench", C, H, W, false, "bench", n, "bench");
    if (rc) die("meta", rc);
    const size_t numel = (size_t)(C * H * W), rec_bytes = 2 * numel * sizeof(float);
    // The RAM reference: the same records, mu and sigma per record.
    float *ram = malloc(n * 2 * numel * sizeof(float));
    float *bmu = malloc(B * numel * sizeof(float)), *bsg = malloc(B * numel * sizeof(float));
    int32_t *lab = malloc(B * sizeof(int32_t));
    uint64_t *idx = malloc(B * sizeof(uint64_t));
    store_record *recs = malloc(B * sizeof *recs);
    if (!ram || !bmu || !bsg || !lab || !idx || !recs) { fprintf(stderr, "bench_store: out of memory\n"); exit(1); }
    uint64_t seed = 1;
    for (size_t i = 0; i < n * 2 * numel; i++) ram[i] = (float)(lcg(&seed) & 0xffff) / 65536.0f;

    store *s;
    if ((rc = store_create(&s, dir, &m, NULL))) die("create", rc);
    double t0 = vel_now();
    for (size_t i = 0; i < n; i += B) {
        size_t k = 0;
        for (size_t j = i; j < n && k < B; j++, k++)
            recs[k] = (store_record){j, (int32_t)(j % 10), ram + j * 2 * numel, ram + j * 2 * numel + numel, NULL, NULL};
        if ((rc = store_put_batch(s, recs, k, NULL))) die("put", rc);
    }
    double tw = vel_now() - t0;
    store_close(&s);
    if ((rc = store_open(&s, dir, "bench", NULL, NULL))) die("open", rc);

    // Same index sequence for both: a seeded stream, regenerated per phase.
    rate r[2];
    for (int phase = 0; phase < 2; phase++) {
        uint64_t is = 12345, done = 0;
        double t = vel_now(), el = 0;
        while ((el = vel_now() - t) < seconds) {
            for (size_t b = 0; b < B; b++) idx[b] = lcg(&is) % n;
            if (phase == 0) {
                if ((rc = store_read_batch(s, bmu, bsg, lab, idx, NULL, B))) die("read", rc);
            } else {
                for (size_t b = 0; b < B; b++) {
                    memcpy(bmu + b * numel, ram + idx[b] * 2 * numel, numel * sizeof(float));
                    memcpy(bsg + b * numel, ram + idx[b] * 2 * numel + numel, numel * sizeof(float));
                    lab[b] = (int32_t)(idx[b] % 10);
                }
            }
            done += B;
        }
        r[phase].recs_per_s = (double)done / el;
        r[phase].gb_per_s = (double)done * (double)rec_bytes / el / 1e9;
    }
    // Spot check that the reads returned the records (a bench that measures
    // a broken path is worse than none).
    idx[0] = n / 2;
    if ((rc = store_read_batch(s, bmu, bsg, lab, idx, NULL, 1))) die("check", rc);
    if (memcmp(bmu, ram + idx[0] * 2 * numel, numel * sizeof(float)) != 0) {
        fprintf(stderr, "bench_store: read-back mismatch\n");
        exit(1);
    }
    store_close(&s);
    printf("%-10s %zu records of %zu B (mu+sigma), batch %zu\n", name, n, rec_bytes, B);
    printf("  write (1 txn/batch, synced)  %12.0f records/s %8.3f GB/s\n", (double)n / tw,
           (double)n * (double)rec_bytes / tw / 1e9);
    printf("  store random batch read      %12.0f records/s %8.3f GB/s\n", r[0].recs_per_s, r[0].gb_per_s);
    printf("  RAM memcpy gather (same idx) %12.0f records/s %8.3f GB/s\n", r[1].recs_per_s, r[1].gb_per_s);
    printf("  ratio store/memcpy           %12.3f\n", r[0].gb_per_s / r[1].gb_per_s);
    free(ram); free(bmu); free(bsg); free(lab); free(idx); free(recs);
}

int main(int argc, char **argv) {
    size_t n_latent = 2048, n_toy = 100000;
    double seconds = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: bench_store [--records N] [--toy-records N] [--seconds S]\n"
                   "Random-access batch reads from the LMDB latent cache vs a RAM memcpy of\n"
                   "the same bytes. N: 32x16x16 records (default 2048 = 128 MiB), toy 2x1x1\n"
                   "records (default 100000); S: seconds per timed phase (default 2, max 5).\n");
            return 0;
        }
        if (i + 1 >= argc) { fprintf(stderr, "bench_store: %s needs a value\n", argv[i]); return 2; }
        if (!strcmp(argv[i], "--records")) n_latent = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--toy-records")) n_toy = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[++i]);
        else { fprintf(stderr, "bench_store: unknown option %s\n", argv[i]); return 2; }
    }
    // Keep the whole run under ~30 s and the RAM copy under 1 GiB.
    if (seconds <= 0 || seconds > 5 || n_latent < 64 || n_latent > 16384 || n_toy < 64 || n_toy > 1000000) {
        fprintf(stderr, "bench_store: --seconds in (0,5], --records in [64,16384], --toy-records in [64,1e6]\n");
        return 2;
    }
    char root[] = "/tmp/vel-bench-store-XXXXXX";
    if (!mkdtemp(root)) { perror("bench_store: mkdtemp"); return 1; }
    run_shape(root, "latent", 32, 16, 16, n_latent, 64, seconds);
    run_shape(root, "toy", 2, 1, 1, n_toy, 256, seconds);
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
