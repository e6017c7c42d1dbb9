// toy_sampler.c: see toy_sampler.h.
#include "models/toy_sampler.h"

void toy_time_grid_uniform(double *ts, int steps) {
    for (int k = 0; k <= steps; k++) ts[k] = (double)k / steps;
}

void toy_euler(float *x, int64_t n, int dim, const double *ts, int steps, toy_velocity_fn vel,
               void *ctx, float *scratch) {
    int64_t m = n * dim;
    for (int k = 0; k < steps; k++) {
        vel(ctx, scratch, x, ts[k], n);
        float h = (float)(ts[k + 1] - ts[k]);
        for (int64_t i = 0; i < m; i++) x[i] += h * scratch[i];
    }
}
