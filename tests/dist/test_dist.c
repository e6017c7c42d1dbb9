// test_dist.c: dist/dist.h pieces that need no second process: rank variables
// (setenv), the epoch order and shards, backend parsing, the bucketed gradient
// sync on the single-rank backend, and the NCCL id file (round trip, stale,
// malformed, timeout, a writer in a child process). Multi-process training:
// test_dp.c.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include <criterion/criterion.h>

#include "core/base.h"
#include "dist/dist.h"
#include "tests/util.h"

static const char *all_vars[] = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID", "SLURM_NTASKS",
                                 "SLURM_LOCALID", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                                 "OMPI_COMM_WORLD_LOCAL_RANK", NULL};
static void clear_env(void) {
    for (int i = 0; all_vars[i]; i++) unsetenv(all_vars[i]);
}

Test(dist_env, default_is_single_rank) {
    clear_env();
    dist_env e;
    cr_assert_eq(dist_env_read(&e), 0);
    cr_assert(e.rank == 0 && e.world == 1 && e.local_rank == 0);
    cr_assert_str_eq(e.source, "default");
}

Test(dist_env, torchrun_slurm_ompi_and_precedence) {
    clear_env();
    dist_env e;
    setenv("SLURM_PROCID", "5", 1);
    setenv("SLURM_NTASKS", "8", 1);
    setenv("SLURM_LOCALID", "1", 1);
    cr_assert_eq(dist_env_read(&e), 0);
    cr_assert(e.rank == 5 && e.world == 8 && e.local_rank == 1);
    cr_assert_str_eq(e.source, "SLURM");
    setenv("RANK", "2", 1);     // torchrun variables win over SLURM's
    setenv("WORLD_SIZE", "4", 1);
    cr_assert_eq(dist_env_read(&e), 0);
    cr_assert(e.rank == 2 && e.world == 4 && e.local_rank == 0, "%d %d %d", e.rank, e.world, e.local_rank);
    setenv("LOCAL_RANK", "3", 1);
    cr_assert_eq(dist_env_read(&e), 0);
    cr_assert_eq(e.local_rank, 3);
    clear_env();
    setenv("OMPI_COMM_WORLD_RANK", "1", 1);
    setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
    cr_assert_eq(dist_env_read(&e), 0);
    cr_assert(e.rank == 1 && e.world == 2);
    cr_assert_str_eq(e.source, "OMPI");
    clear_env();
}

Test(dist_env, malformed_and_inconsistent) {
    struct { const char *k1, *v1, *k2, *v2, *k3, *v3, *want; } cases[] = {
        {"RANK", "0", NULL, NULL, NULL, NULL, "WORLD_SIZE is not"},
        {"WORLD_SIZE", "2", NULL, NULL, NULL, NULL, "RANK is not"},
        {"RANK", "x", "WORLD_SIZE", "2", NULL, NULL, "not an integer"},
        {"RANK", "2", "WORLD_SIZE", "2", NULL, NULL, "must be below"},
        {"RANK", "0", "WORLD_SIZE", "0", NULL, NULL, "must be below"},
        {"RANK", "-1", "WORLD_SIZE", "2", NULL, NULL, "not an integer"},
        {"RANK", "0", "WORLD_SIZE", "2", "LOCAL_RANK", "7", "LOCAL_RANK=7"},
        {"RANK", "0", "WORLD_SIZE", "99999999999", NULL, NULL, "not an integer"},
        {"SLURM_PROCID", "1", "SLURM_NTASKS", "", NULL, NULL, "SLURM_NTASKS is not"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        clear_env();
        setenv(cases[i].k1, cases[i].v1, 1);
        if (cases[i].k2) setenv(cases[i].k2, cases[i].v2, 1);
        if (cases[i].k3) setenv(cases[i].k3, cases[i].v3, 1);
        dist_env e;
        cr_assert_eq(dist_env_read(&e), DIST_EENV, "case %zu accepted", i);
        cr_assert(strstr(vel_error_detail(), cases[i].want), "case %zu: message '%s' lacks '%s'", i,
                  vel_error_detail(), cases[i].want);
    }
    clear_env();
}

Test(dist_shard, epoch_order_is_a_seeded_permutation) {
    enum { N = 1000 };
    int64_t *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b), *c = malloc(N * sizeof *c);
    dist_epoch_order(a, N, 42, 0);
    dist_epoch_order(b, N, 42, 0);
    dist_epoch_order(c, N, 42, 1);
    cr_assert_eq(memcmp(a, b, N * sizeof *a), 0, "same seed and epoch must give the same order");
    cr_assert_neq(memcmp(a, c, N * sizeof *a), 0, "epochs must differ");
    char seen[N] = {0};
    int fixed = 0;
    for (int i = 0; i < N; i++) {
        cr_assert(a[i] >= 0 && a[i] < N && !seen[a[i]], "not a permutation at %d", i);
        seen[a[i]] = 1;
        fixed += a[i] == i;
    }
    // A uniform permutation has ~1 fixed point; 20 would mean no shuffling.
    cr_assert_lt(fixed, 20);
    int64_t one;
    dist_epoch_order(&one, 1, 1, 0);
    cr_assert_eq(one, 0);
    free(a); free(b); free(c);
}

Test(dist_shard, local_batches_partition_the_global_batch) {
    enum { N = 103, GB = 12, W = 3 };
    int64_t order[N], out[GB];
    dist_epoch_order(order, N, 7, 2);
    cr_assert_eq(dist_steps_per_epoch(N, GB), 8);
    for (int64_t s = 0; s < 8; s++) {
        int64_t joined[GB], k = 0;
        for (int r = 0; r < W; r++) {
            int64_t nl;
            cr_assert_eq(dist_local_batch(out, &nl, order, N, GB, s, r, W), 0);
            cr_assert_eq(nl, GB / W);
            for (int64_t i = 0; i < nl; i++) joined[k++] = out[i];
        }
        cr_assert_eq(memcmp(joined, order + s * GB, sizeof joined), 0, "step %lld", (long long)s);
    }
    int64_t nl;
    cr_assert_eq(dist_local_batch(out, &nl, order, N, GB, 8, 0, W), VEL_ERANGE);   // tail dropped
    cr_assert_eq(dist_local_batch(out, &nl, order, N, 10, 0, 0, W), VEL_EINVAL);   // 10 % 3 != 0
    cr_assert(strstr(vel_error_detail(), "not a multiple"));
    cr_assert_eq(dist_local_batch(out, &nl, order, N, GB, 0, 3, W), VEL_EINVAL);
    cr_assert_eq(dist_local_batch(out, &nl, order, N, GB, -1, 0, W), VEL_ERANGE);
}

Test(dist_comm, backend_parse) {
    dist_backend b;
    cr_assert_eq(dist_backend_parse("mpi", &b), 0);
    cr_assert_eq(b, DIST_MPI);
    cr_assert_eq(dist_backend_parse("nccl", &b), 0);
    cr_assert_eq(b, DIST_NCCL);
    cr_assert_eq(dist_backend_parse("none", &b), 0);
    cr_assert_eq(b, DIST_NONE);
    cr_assert_eq(dist_backend_parse("gloo", &b), DIST_EBACKEND);
    cr_assert(strstr(vel_error_detail(), "gloo"));
    cr_assert_str_eq(dist_backend_name(DIST_NCCL), "nccl");
}

Test(dist_comm, none_backend_sync_is_identity) {
    clear_env();
    dist_comm *c = NULL;
    dist_opts o = {.backend = DIST_NONE};
    cr_assert_eq(dist_init(&c, &o), 0);
    cr_assert(dist_rank(c) == 0 && dist_world(c) == 1);
    enum { N = 1001 };
    float g[N], ref[N];
    fill_normal(ref, N, 3, 1.0f);
    for (int bucket = 0; bucket <= 64; bucket += 16) {
        memcpy(g, ref, sizeof g);
        dist_grad_sync *s = NULL;
        cr_assert_eq(dist_grad_sync_create(&s, c, g, N, bucket ? bucket : 0), 0);
        if (bucket == 16) cr_assert_eq(dist_grad_sync_buckets(s), (N + 15) / 16);
        for (int64_t off = N; off >= 0; off -= 100) cr_assert_eq(dist_grad_ready(s, off), 0);
        cr_assert_eq(dist_grad_finish(s), 0);
        cr_assert_eq(memcmp(g, ref, sizeof g), 0, "bucket %d changed the gradients", bucket);
        dist_grad_sync_destroy(&s);
        cr_assert_null(s);
    }
    cr_assert_eq(dist_allreduce_avg(c, g, N), 0);
    cr_assert_eq(memcmp(g, ref, sizeof g), 0);
    cr_assert_eq(dist_broadcast(c, g, N, 0), 0);
    cr_assert_eq(dist_broadcast(c, g, N, 1), VEL_EINVAL);
    cr_assert_eq(dist_barrier(c), 0);
    dist_finalize(&c);
    cr_assert_null(c);
    setenv("RANK", "0", 1);
    setenv("WORLD_SIZE", "2", 1);
    cr_assert_eq(dist_init(&c, &o), DIST_EENV);
    cr_assert(strstr(vel_error_detail(), "needs world size 1"), "%s", vel_error_detail());
    clear_env();
#ifndef VEL_HAVE_CUDA
    o.backend = DIST_NCCL;
    cr_assert_eq(dist_init(&c, &o), DIST_EBACKEND);
#endif
}

Test(dist_idfile, round_trip_stale_malformed_timeout) {
    char *dir = test_tmpdir("idfile");
    char path[1024];
    snprintf(path, sizeof path, "%s/nccl.id", dir);
    unsigned char id[128], back[128];
    for (int i = 0; i < 128; i++) id[i] = (unsigned char)(i * 37 + 1);
    cr_assert_eq(dist_idfile_write(path, id, sizeof id, 4), 0);
    cr_assert_eq(dist_idfile_read(path, back, sizeof back, 4, 1.0, 0), 0);
    cr_assert_eq(memcmp(id, back, sizeof id), 0);
    // Wrong world size, wrong id size: rejected with a message.
    cr_assert_eq(dist_idfile_read(path, back, sizeof back, 2, 1.0, 0), VEL_EFORMAT);
    cr_assert(strstr(vel_error_detail(), "world size 4"), "%s", vel_error_detail());
    cr_assert_eq(dist_idfile_read(path, back, 64, 4, 1.0, 0), VEL_EFORMAT);
    // Stale: a file older than not_before is waited past, then times out.
    struct utimbuf old = {time(NULL) - 3600, time(NULL) - 3600};
    cr_assert_eq(utime(path, &old), 0);
    cr_assert_eq(dist_idfile_read(path, back, sizeof back, 4, 0.2, (int64_t)time(NULL) - 60),
                 DIST_ETIMEOUT);
    // Malformed bytes: bad magic, truncated header, truncated payload.
    const char *bad[] = {"garbage-garbage-garbage", "VELNCCL1", "VELNCCL1\x04\0\0\0\x80\0\0\0short"};
    size_t badlen[] = {23, 8, 24};
    for (int i = 0; i < 3; i++) {
        FILE *f = fopen(path, "wb");
        fwrite(bad[i], 1, badlen[i], f);
        fclose(f);
        cr_assert_eq(dist_idfile_read(path, back, sizeof back, 4, 0.5, 0), VEL_EFORMAT, "bad %d", i);
    }
    unlink(path);
    cr_assert_eq(dist_idfile_read(path, back, sizeof back, 4, 0.1, 0), DIST_ETIMEOUT);
    cr_assert(strstr(vel_error_detail(), "rank 0"));
    cr_assert_eq(dist_idfile_write("", id, sizeof id, 4), VEL_EINVAL);
    snprintf(path, sizeof path, "%s/no/such/dir/id", dir);
    cr_assert_eq(dist_idfile_write(path, id, sizeof id, 4), VEL_EIO);
    rm_rf(dir);
    free(dir);
}

Test(dist_idfile, reader_waits_for_a_late_writer) {
    char *dir = test_tmpdir("idfile2");
    char path[1024];
    snprintf(path, sizeof path, "%s/id", dir);
    unsigned char id[128], back[128];
    memset(id, 0xab, sizeof id);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        usleep(200 * 1000);
        _exit(dist_idfile_write(path, id, sizeof id, 2) == 0 ? 0 : 1);
    }
    int r = dist_idfile_read(path, back, sizeof back, 2, 10.0, (int64_t)time(NULL) - 60);
    int st;
    waitpid(pid, &st, 0);
    cr_assert_eq(r, 0, "%s", vel_error_detail());
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    cr_assert_eq(memcmp(id, back, sizeof id), 0);
    rm_rf(dir);
    free(dir);
}
