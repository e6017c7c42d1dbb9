// dp_worker.c: a tiny data-parallel training run used by tests/dist/test_dp.c
// (started directly, or under mpirun -np W). Model: one linear layer
// (nn/linear.h) with an MSE loss against a fixed random teacher, plain SGD.
// Each rank takes its slice of every global batch (dist_local_batch), its loss
// is the mean over its slice, gradients are averaged with dist_grad_sync, so
// every world size follows the same trajectory up to fp32 rounding.
//
// Writes (rank 0) OUT.params: the final parameters as raw f32; and (every
// rank) OUT.rankR: the sample indices it used, int64, in order.
// Not a benchmark and not a library: a test fixture with --help.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"
#include "dist/dist.h"
#include "nn/linear.h"
#include "nn/params.h"
#include "core/philox.h"

enum { C = 12, OC = 5, NDATA = 96 };

static void usage(FILE *f) {
    fprintf(f,
            "usage: dp_worker --out PREFIX [--backend none|mpi] [--global-batch 16]\n"
            "                 [--epochs 3] [--bucket FLOATS] [--overlap 0|1]\n"
            "Trains a linear layer data-parallel over the ranks of the job and writes\n"
            "PREFIX.params (rank 0) and PREFIX.rankR (indices each rank used).\n");
}

static int write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(p, 1, n, f);
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

int main(int argc, char **argv) {
    const char *out = NULL, *backend = "none";
    long gb = 16, epochs = 3, bucket = 0, overlap = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "dp_worker: %s needs a value\n", a);
            usage(stderr);
            return 2;
        }
        if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--backend")) backend = v;
        else if (!strcmp(a, "--global-batch")) gb = strtol(v, NULL, 10);
        else if (!strcmp(a, "--epochs")) epochs = strtol(v, NULL, 10);
        else if (!strcmp(a, "--bucket")) bucket = strtol(v, NULL, 10);
        else if (!strcmp(a, "--overlap")) overlap = strtol(v, NULL, 10);
        else {
            fprintf(stderr, "dp_worker: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (!out || gb < 1 || epochs < 1 || bucket < 0) {
        usage(stderr);
        return 2;
    }
    dist_opts o = {0};
    int r = dist_backend_parse(backend, &o.backend);
    dist_comm *comm = NULL;
    if (!r) r = dist_init(&comm, &o);
    if (r) {
        fprintf(stderr, "dp_worker: dist_init(%s): %s: %s\n", backend, vel_strerror(r), vel_error_detail());
        return 1;
    }
    int rank = dist_rank(comm), world = dist_world(comm);

    param_table pt;
    param_table_init(&pt);
    param_add(&pt, "fc.weight", 2, (int64_t[]){OC, C});
    param_add(&pt, "fc.bias", 1, (int64_t[]){OC});
    if (param_table_commit(&pt)) {
        fprintf(stderr, "dp_worker: out of memory\n");
        return 1;
    }
    float *w = param_data(&pt, 0), *b = param_data(&pt, 1);
    float *dw = param_grad(&pt, 0), *db = param_grad(&pt, 1);
    // Rank 0 initialises, everyone receives the same values (as a real
    // trainer would after loading or seeding on rank 0 only).
    if (rank == 0) {
        philox_normal(w, OC * C, 11, 0, 0);
        for (int i = 0; i < OC * C; i++) w[i] *= 0.3f;
        philox_normal(b, OC, 11, 1, 0);
    }
    r = dist_broadcast(comm, pt.values, pt.total, 0);
    // Data: x ~ N(0,1), targets from a fixed teacher (same on every rank).
    float *X = xmalloc(sizeof(float) * NDATA * C), *T = xmalloc(sizeof(float) * NDATA * OC);
    float *teacher = xmalloc(sizeof(float) * OC * C);
    philox_normal(X, NDATA * C, 5, 0, 0);
    philox_normal(teacher, OC * C, 5, 1, 0);
    linear_forward(T, X, teacher, NULL, NDATA, C, OC);

    int64_t *order = xmalloc(sizeof(int64_t) * NDATA), *idx = xmalloc(sizeof(int64_t) * gb);
    int64_t steps = dist_steps_per_epoch(NDATA, gb);
    int64_t *seen = xmalloc(sizeof(int64_t) * (size_t)(epochs * steps * gb));
    int64_t nseen = 0;
    float *xb = xmalloc(sizeof(float) * gb * C), *yb = xmalloc(sizeof(float) * gb * OC);
    float *dy = xmalloc(sizeof(float) * gb * OC);
    dist_grad_sync *sync = NULL;
    if (!r) r = dist_grad_sync_create(&sync, comm, pt.grads, pt.total, bucket);
    const float lr = 0.05f;
    for (long ep = 0; ep < epochs && !r; ep++) {
        dist_epoch_order(order, NDATA, 1234, ep);
        for (int64_t s = 0; s < steps && !r; s++) {
            int64_t nl;
            r = dist_local_batch(idx, &nl, order, NDATA, gb, s, rank, world);
            if (r) break;
            for (int64_t i = 0; i < nl; i++) {
                memcpy(xb + i * C, X + idx[i] * C, sizeof(float) * C);
                seen[nseen++] = idx[i];
            }
            linear_forward(yb, xb, w, b, (int)nl, C, OC);
            // loss = mean over the local slice and outputs of (y - t)^2
            for (int64_t i = 0; i < nl; i++)
                for (int j = 0; j < OC; j++)
                    dy[i * OC + j] = 2.0f * (yb[i * OC + j] - T[idx[i] * OC + j]) / (float)(nl * OC);
            param_zero_grads(&pt);
            // The bias sits at the tail of the flat buffer: announce it as
            // soon as it is final, as a model's backward would layer by layer.
            linear_backward(NULL, NULL, db, dy, xb, w, (int)nl, C, OC);
            if (overlap) r = dist_grad_ready(sync, pt.info[1].offset);
            linear_backward(NULL, dw, NULL, dy, xb, w, (int)nl, C, OC);
            if (!r && overlap) r = dist_grad_ready(sync, pt.info[0].offset);
            if (!r) r = dist_grad_finish(sync);
            for (int64_t i = 0; i < pt.total && !r; i++) pt.values[i] -= lr * pt.grads[i];
        }
    }
    if (r) {
        fprintf(stderr, "dp_worker rank %d: %s: %s\n", rank, vel_strerror(r), vel_error_detail());
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s.rank%d", out, rank);
    if (write_file(path, seen, sizeof(int64_t) * (size_t)nseen)) {
        fprintf(stderr, "dp_worker: cannot write %s\n", path);
        return 1;
    }
    if (rank == 0) {
        snprintf(path, sizeof path, "%s.params", out);
        if (write_file(path, pt.values, sizeof(float) * (size_t)pt.total)) {
            fprintf(stderr, "dp_worker: cannot write %s\n", path);
            return 1;
        }
    }
    dist_grad_sync_destroy(&sync);
    dist_finalize(&comm);
    param_table_free(&pt);
    free(X); free(T); free(teacher); free(order); free(idx); free(seen); free(xb); free(yb); free(dy);
    return 0;
}
