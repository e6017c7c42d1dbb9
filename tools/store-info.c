// store-info: prints a latent cache's metadata and record count; with
// --verify also decodes every record (header, size) in index order.
// Read-only: opens the cache with MDB_RDONLY and writes nothing.
#include <stdio.h>
#include <string.h>

#include "store/store.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: store-info [--verify] PATH\n"
            "Prints the metadata (__meta__) and record count of the LMDB latent cache\n"
            "in directory PATH.\n"
            "  --verify   also read every record and check its header and size\n"
            "  -h, --help this message\n"
            "Exit status: 0 ok, 1 the cache is bad or unreadable, 2 usage error.\n");
}

static int fail(const char *path, int rc) {
    fprintf(stderr, "store-info: %s: %s (%s)\n", path, vel_strerror(rc), vel_error_detail());
    return 1;
}

int main(int argc, char **argv) {
    const char *path = NULL;
    int verify = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
        if (!strcmp(argv[i], "--verify")) { verify = 1; continue; }
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
        store_iter *it;
        if ((rc = store_iter_open(s, &it, 0))) { store_close(&s); return fail(path, rc); }
        store_view v;
        uint64_t k = 0;
        while ((rc = store_iter_next(it, &v)) == 1) k++;
        store_iter_close(&it);
        if (rc < 0) {
            fprintf(stderr, "store-info: %s: verify stopped after %llu good records\n", path,
                    (unsigned long long)k);
            store_close(&s);
            return fail(path, rc);
        }
        printf("verified:       %llu records\n", (unsigned long long)k);
    }
    store_close(&s);
    return 0;
}
