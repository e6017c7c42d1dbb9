// bench_inception.c: Inception-v3 (FID variant, models/inception.h) forward
// throughput on the CPU: images/s of inception_forward_u8 on 299x299 uint8
// images (pool3 + logits + spatial, resize included: an identity pass at
// 299), random weights. Compare with bench/bench_inception_torch.py (pytorch-fid,
// same batch) at the same thread count: set OPENBLAS_NUM_THREADS (the GEMMs)
// and OMP_NUM_THREADS equal to torch's thread count, and run both under
// `flock /tmp/vel-timing.lock`.
//   usage: bench_inception [BATCH (8)] [SECONDS (10)]
// Not a correctness test (tests/models/test_inception.c is).
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/base.h"
#include "models/inception.h"

int main(int argc, char **argv) {
    int B = argc > 1 ? atoi(argv[1]) : 8;
    double secs = argc > 2 ? atof(argv[2]) : 10.0;
    if (B < 1 || !(secs > 0)) { fprintf(stderr, "usage: bench_inception [BATCH] [SECONDS]\n"); return 2; }
    inception *m = NULL;
    if (inception_create(&m, B)) { fprintf(stderr, "bench_inception: out of memory\n"); return 1; }
    inception_random_weights(m, 1);
    size_t n = (size_t)B * 3 * INCEPTION_SIZE * INCEPTION_SIZE;
    uint8_t *img = xmalloc(n);
    for (size_t i = 0; i < n; i++) img[i] = (uint8_t)((i * 2654435761u) >> 24);
    float *pool = xmalloc(sizeof(float) * B * INCEPTION_POOL_DIM);
    float *lg = xmalloc(sizeof(float) * B * INCEPTION_LOGITS);
    float *sp = xmalloc(sizeof(float) * B * INCEPTION_SPATIAL_DIM);
    inception_forward_u8(m, img, B, INCEPTION_SIZE, INCEPTION_SIZE, pool, lg, sp);   // warm-up
    double t0 = vel_now(), c0 = vel_cpu_now();
    int reps = 0;
    do {
        inception_forward_u8(m, img, B, INCEPTION_SIZE, INCEPTION_SIZE, pool, lg, sp);
        reps++;
    } while (vel_now() - t0 < secs);
    double wall = vel_now() - t0, cpu = vel_cpu_now() - c0;
    const char *th = getenv("OPENBLAS_NUM_THREADS");
    printf("vel inception forward: batch %d, %d reps, %.2f images/s wall, %.4f CPU s/image, "
           "OPENBLAS_NUM_THREADS=%s\n", B, reps, reps * B / wall, cpu / (reps * B), th ? th : "unset");
    free(img); free(pool); free(lg); free(sp);
    inception_destroy(&m);
    return 0;
}
