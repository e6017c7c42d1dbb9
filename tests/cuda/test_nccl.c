// test_nccl.c: the DIST_NCCL backend of dist/dist.h on one GPU (world size 1):
// all-reduce-average, bucketed gradient sync (with the side-stream overlap
// path) and broadcast leave device buffers bit-identical, as the single-rank
// contract requires. Multi-GPU runs need a machine with several GPUs (one
// process per GPU); they are not exercised here. The argument check runs
// everywhere; the rest skips without a GPU or without libnccl.so.2.
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "core/base.h"
#include "dist/dist.h"
#include "tests/cuda/cuda_test.h"

static void clear_env(void) {
    const char *v[] = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID", "SLURM_NTASKS",
                       "SLURM_LOCALID", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", NULL};
    for (int i = 0; v[i]; i++) unsetenv(v[i]);
}

#ifdef VEL_HAVE_CUDA
Test(nccl, needs_a_cuda_context) {
    clear_env();
    dist_comm *c = NULL;
    dist_opts o = {.backend = DIST_NCCL};
    cr_assert_eq(dist_init(&c, &o), VEL_EINVAL);
    cr_assert_null(c);
    cr_assert(strstr(vel_error_detail(), "CUDA context"), "%s", vel_error_detail());
}

Test(nccl, world1_collectives_are_identities) {
    clear_env();
    vcuda_ctx *ctx = cuda_test_ctx();
    dist_comm *c = NULL;
    dist_opts o = {.backend = DIST_NCCL, .cuda_ctx = ctx};
    int r = dist_init(&c, &o);
    if (r == DIST_ENOLIB) cr_skip_test("%s", vel_error_detail());
    cr_assert_eq(r, 0, "dist_init nccl: %s: %s", vel_strerror(r), vel_error_detail());
    cr_assert_eq(dist_world(c), 1);
    enum { N = 100003 };
    float *h = malloc(N * 4), *back = malloc(N * 4);
    fill_normal(h, N, 91, 1.0f);
    float *d = cuda_test_upload(ctx, h, N * 4);
    cr_assert_eq(dist_allreduce_avg(c, d, N), 0, "%s", vel_error_detail());
    cuda_test_download(ctx, back, d, N * 4);
    cr_assert_eq(memcmp(h, back, N * 4), 0, "all-reduce over one rank changed the data");
    for (int bucket = 0; bucket <= 4096; bucket += 4096) {
        dist_grad_sync *s = NULL;
        cr_assert_eq(dist_grad_sync_create(&s, c, d, N, bucket), 0);
        for (int64_t off = N; off >= 0; off -= 10000) cr_assert_eq(dist_grad_ready(s, off), 0, "%s", vel_error_detail());
        cr_assert_eq(dist_grad_finish(s), 0, "%s", vel_error_detail());
        dist_grad_sync_destroy(&s);
        cuda_test_download(ctx, back, d, N * 4);
        cr_assert_eq(memcmp(h, back, N * 4), 0, "grad sync (bucket %d) changed the data", bucket);
    }
    cr_assert_eq(dist_broadcast(c, d, N, 0), 0, "%s", vel_error_detail());
    cr_assert_eq(dist_barrier(c), 0, "%s", vel_error_detail());
    cuda_test_download(ctx, back, d, N * 4);
    cr_assert_eq(memcmp(h, back, N * 4), 0);
    dist_finalize(&c);
    vcuda_free((void **)&d);
    free(h);
    free(back);
    vcuda_ctx_destroy(&ctx);
}
#else
Test(nccl, built_without_cuda) {
    clear_env();
    dist_comm *c = NULL;
    dist_opts o = {.backend = DIST_NCCL};
    cr_assert_eq(dist_init(&c, &o), DIST_EBACKEND);
}
#endif
