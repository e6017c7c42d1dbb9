// store-info: prints a latent cache's metadata and record count; with
// --verify also walks every key: each must be __meta__ or a record index
// whose record decodes, with a label in range and finite mu/sigma.
// Read-only: opens the cache with MDB_RDONLY and writes nothing.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: store-info [--verify] [--num-classes N] PATH\n"
            "Prints the metadata (__meta__) and record count of the LMDB latent cache\n"
            "in directory PATH.\n"
            "  --verify          also walk every key: a stray key (neither __meta__ nor a\n"
            "                    record index), a record that does not decode, a label\n"
            "                    outside -1..N-1 or a NaN/inf in mu or sigma fails\n"
            "  --num-classes N   labels must lie in -1..N-1 (implies --verify; default:\n"
            "                    any label below 1000000)\n"
            "  -h, --help        this message\n"
            "Exit status: 0 ok, 2 usage error or a damaged/invalid cache, 1 runtime\n"
            "failure (I/O, LMDB).\n");
}

static int fail(const char *path, int rc) {
    fprintf(stderr, "store-info: %s: %s\n", path, vel_errmsg(rc));
    return vel_exit_code(rc);
}

int main(int argc, char **argv) {
    const char *path = NULL;
    int verify = 0;
    long classes = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
        if (!strcmp(argv[i], "--verify")) { verify = 1; continue; }
        if (!strcmp(argv[i], "--num-classes")) {
            char *end = NULL;
            classes = i + 1 < argc ? strtol(argv[++i], &end, 10) : 0;
            if (!end || *end || classes < 1 || classes > STORE_MAX_CLASSES) {
                fprintf(stderr, "store-info: --num-classes wants an integer in 1..%d\n", STORE_MAX_CLASSES);
                return 2;
            }
            verify = 1;
            continue;
        }
        if (argv[i][0] == '-') {
            fprintf(stderr, "store-info: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
        if (path) { fprintf(stderr, "store-info: more than one PATH given\n"); usage(stderr); return 2; }
        path = argv[i];
    }
    if (!path) { usage(stderr); return 2; }
    store *s;
    int rc = store_open(&s, path, NULL, NULL, NULL);
    if (rc) return fail(path, rc);
    const store_meta *m = store_get_meta(s);
    uint64_t n = 0;
    size_t map = 0;
    if ((rc = store_count(s, &n)) || (rc = store_map_size(s, &map))) { store_close(&s); return fail(path, rc); }
    printf("cache:          %s\n", path);
    printf("tokenizer_hash: %s\n", m->tokenizer_hash);
    printf("latent:         %lldx%lldx%lld %s\n", (long long)m->shape[0], (long long)m->shape[1],
           (long long)m->shape[2], dtype_name(m->dtype));
    printf("has_flip:       %s\n", m->has_flip ? "yes" : "no");
    printf("dataset:        %s (%llu images)\n", m->dataset, (unsigned long long)m->dataset_size);
    printf("code_version:   %s\n", m->code_version);
    printf("records:        %llu\n", (unsigned long long)n);
    printf("map_size:       %zu bytes\n", map);
    if (!m->has_stats) {
        printf("stats:          none\n");
    } else {
        printf("stats:          channel mean std\n");
        for (int64_t c = 0; c < m->shape[0]; c++)
            printf("  %4lld %.9g %.9g\n", (long long)c, m->mean[c], m->std[c]);
    }
    if (verify) {
        store_verify_report r;
        rc = store_verify(s, (int32_t)classes, &r);
        printf("verified:       %llu records, %llu undecodable, %llu stray keys, %llu bad labels, "
               "%llu with non-finite values\n", (unsigned long long)r.records, (unsigned long long)r.bad_records,
               (unsigned long long)r.stray_keys, (unsigned long long)r.bad_labels,
               (unsigned long long)r.nonfinite);
        if (rc) { store_close(&s); return fail(path, rc); }
    }
    store_close(&s);
    return 0;
}
