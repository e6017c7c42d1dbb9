// toy_gmm.c: see toy_gmm.h. The construction follows docs/FORMULAS.md section 2 line
// by line (it mirrors edm2's toy_example.py): the order of the randn() draws
// matters, because every later branch depends on the stream position.
#include "data/toy_gmm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/base.h"

#define TOY_MAX_DEPTH 7
#define TOY_PER_BRANCH 8
#define TOY_PER_CLASS (((1 << TOY_MAX_DEPTH) - 1) * TOY_PER_BRANCH)   // 127 * 8

static const double TOY_ORIGIN[2] = {0.0030, 0.0325};
static const double TOY_SCALE[2] = {1.3136, 1.3844};

typedef struct {
    toy_gmm *g;
    mt19937 rng;
    int cls;
} builder;

static void recurse(builder *b, int depth, const double pos[2], double angle) {
    if (depth >= TOY_MAX_DEPTH) return;
    toy_gmm *g = b->g;
    double dir[2] = {cos(angle), sin(angle)};
    // Same association as numpy: (randn * 0.2 + 1) and (scale * dist) * 0.06.
    double dist = 0.292 * pow(0.8, depth) * (mt_randn(&b->rng) * 0.2 + 1.0);
    double thick = 0.2 * pow(0.8, depth) / dist;
    double size[2] = {TOY_SCALE[0] * dist * 0.06, TOY_SCALE[1] * dist * 0.06};
    double th2 = thick * thick;
    // cov = (d d^T + (I - d d^T) thick^2) .* (size size^T)
    double a = dir[0] * dir[0] + (1.0 - dir[0] * dir[0]) * th2;
    double c = dir[1] * dir[1] + (1.0 - dir[1] * dir[1]) * th2;
    double o = dir[0] * dir[1] - dir[0] * dir[1] * th2;
    for (int k = 0; k < TOY_PER_BRANCH; k++) {
        // numpy's linspace(0.07, 0.93, 8): start + k*step, step = 0.86/7.
        double t = 0.07 + k * ((0.93 - 0.07) / (TOY_PER_BRANCH - 1));
        if (k == TOY_PER_BRANCH - 1) t = 0.93;   // linspace pins the endpoint
        int i = g->n++;
        g->cls[i] = b->cls;
        g->depth[i] = depth;
        g->phi_raw[i] = dist * pow(0.5, depth);
        g->mu[2 * i + 0] = (pos[0] + dir[0] * dist * t) * TOY_SCALE[0];
        g->mu[2 * i + 1] = (pos[1] + dir[1] * dist * t) * TOY_SCALE[1];
        g->S[3 * i + 0] = a * (size[0] * size[0]);
        g->S[3 * i + 1] = o * (size[0] * size[1]);
        g->S[3 * i + 2] = c * (size[1] * size[1]);
    }
    double next[2] = {pos[0] + dir[0] * dist, pos[1] + dir[1] * dist};
    for (int sign = 1; sign >= -1; sign -= 2) {
        // drawn just before descending: the +1 subtree consumes its draws first
        double child = angle + sign * pow(0.7, depth) * (mt_randn(&b->rng) * 0.2 + 1.0);
        recurse(b, depth + 1, next, child);
    }
}

int toy_gmm_build(toy_gmm **out, const char *classes) {
    *out = NULL;
    int wantA, wantB;
    if (!classes) return VEL_EINVAL;
    if (!strcmp(classes, "A")) wantA = 1, wantB = 0;
    else if (!strcmp(classes, "B")) wantA = 0, wantB = 1;
    else if (!strcmp(classes, "AB")) wantA = 1, wantB = 1;
    else return VEL_EINVAL;

    toy_gmm *g = calloc(1, sizeof *g);
    if (!g) return VEL_ENOMEM;
    int cap = 2 * TOY_PER_CLASS;   // B needs A's draws first, so build both
    g->cls = malloc(cap * sizeof(int));
    g->depth = malloc(cap * sizeof(int));
    g->phi_raw = malloc(cap * sizeof(double));
    g->phi = malloc(cap * sizeof(double));
    g->mu = malloc(cap * 2 * sizeof(double));
    g->S = malloc(cap * 3 * sizeof(double));
    g->chol = malloc(cap * 3 * sizeof(double));
    g->cum = malloc(cap * sizeof(double));
    if (!g->cls || !g->depth || !g->phi_raw || !g->phi || !g->mu || !g->S || !g->chol || !g->cum) {
        toy_gmm_destroy(&g);
        return VEL_ENOMEM;
    }
    builder b = {.g = g};
    mt_seed(&b.rng, 2);
    b.cls = 0;
    recurse(&b, 0, TOY_ORIGIN, M_PI / 4);
    b.cls = 1;
    recurse(&b, 0, TOY_ORIGIN, M_PI * 5 / 4);
    CHECK(g->n == cap);

    // keep only the wanted classes (compacting in place, order preserved)
    int m = 0;
    for (int i = 0; i < g->n; i++) {
        if ((g->cls[i] == 0 && !wantA) || (g->cls[i] == 1 && !wantB)) continue;
        g->cls[m] = g->cls[i];
        g->depth[m] = g->depth[i];
        g->phi_raw[m] = g->phi_raw[i];
        memmove(g->mu + 2 * m, g->mu + 2 * i, 2 * sizeof(double));
        memmove(g->S + 3 * m, g->S + 3 * i, 3 * sizeof(double));
        m++;
    }
    g->n = m;
    double tot = 0;
    for (int i = 0; i < m; i++) tot += g->phi_raw[i];
    double run = 0;
    for (int i = 0; i < m; i++) {
        g->phi[i] = g->phi_raw[i] / tot;
        run += g->phi[i];
        g->cum[i] = run;
        const double *S = g->S + 3 * i;
        double l11 = sqrt(S[0]), l21 = S[1] / l11;
        g->chol[3 * i + 0] = l11;
        g->chol[3 * i + 1] = l21;
        g->chol[3 * i + 2] = sqrt(S[2] - l21 * l21);
    }
    g->cum[m - 1] = 1.0;   // guard the inverse CDF against rounding
    *out = g;
    return 0;
}

void toy_gmm_destroy(toy_gmm **pg) {
    toy_gmm *g = *pg;
    if (!g) return;
    free(g->cls); free(g->depth); free(g->phi_raw); free(g->phi);
    free(g->mu); free(g->S); free(g->chol); free(g->cum);
    free(g);
    *pg = NULL;
}

// One component at time t: log(phi_i N(x; t mu_i, C_i)) and, if post is not
// NULL, that component's posterior mean of x1.
static double comp_term(const toy_gmm *g, int i, const double x[2], double t, double post[2]) {
    const double *S = g->S + 3 * i, *mu = g->mu + 2 * i;
    double s2 = (1.0 - t) * (1.0 - t), t2 = t * t;
    double a = t2 * S[0] + s2, b = t2 * S[1], c = t2 * S[2] + s2;
    double det = a * c - b * b;
    double d0 = x[0] - t * mu[0], d1 = x[1] - t * mu[1];
    // C^-1 d = [c, -b; -b, a] d / det
    double y0 = (c * d0 - b * d1) / det, y1 = (a * d1 - b * d0) / det;
    double maha = d0 * y0 + d1 * y1;
    if (post) {
        // mu_i + t S_i C_i^-1 (x - t mu_i)
        post[0] = mu[0] + t * (S[0] * y0 + S[1] * y1);
        post[1] = mu[1] + t * (S[1] * y0 + S[2] * y1);
    }
    return log(g->phi[i]) - log(2.0 * M_PI) - 0.5 * log(det) - 0.5 * maha;
}

double toy_gmm_logp_t(const toy_gmm *g, const double x[2], double t) {
    // streaming log-sum-exp: running max m and sum of exp(term - m)
    double m = -INFINITY, s = 0.0;
    for (int i = 0; i < g->n; i++) {
        double l = comp_term(g, i, x, t, NULL);
        if (l > m) {
            s = s * exp(m - l) + 1.0;
            m = l;
        } else {
            s += exp(l - m);
        }
    }
    return m + log(s);
}

void toy_gmm_posterior_mean(const toy_gmm *g, const double x[2], double t, double out[2]) {
    double m = -INFINITY, s = 0.0, acc0 = 0.0, acc1 = 0.0;
    for (int i = 0; i < g->n; i++) {
        double p[2];
        double l = comp_term(g, i, x, t, p);
        if (l > m) {
            double r = exp(m - l);
            s = s * r + 1.0;
            acc0 = acc0 * r + p[0];
            acc1 = acc1 * r + p[1];
            m = l;
        } else {
            double w = exp(l - m);
            s += w;
            acc0 += w * p[0];
            acc1 += w * p[1];
        }
    }
    out[0] = acc0 / s;
    out[1] = acc1 / s;
}

void toy_gmm_velocity(const toy_gmm *g, const double x[2], double t, double v[2]) {
    CHECK(t < 1.0);
    double e[2];
    toy_gmm_posterior_mean(g, x, t, e);
    v[0] = (e[0] - x[0]) / (1.0 - t);
    v[1] = (e[1] - x[1]) / (1.0 - t);
}

void toy_gmm_logp_batch(const toy_gmm *g, const float *x, int64_t n, double *logp) {
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < n; k++) {
        double p[2] = {x[2 * k], x[2 * k + 1]};
        logp[k] = toy_gmm_logp_t(g, p, 1.0);
    }
}

void toy_gmm_velocity_batch(const toy_gmm *g, float *v, const float *x, int64_t n, double t) {
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < n; k++) {
        double p[2] = {x[2 * k], x[2 * k + 1]}, vv[2];
        toy_gmm_velocity(g, p, t, vv);
        v[2 * k] = (float)vv[0];
        v[2 * k + 1] = (float)vv[1];
    }
}

void toy_gmm_sample(const toy_gmm *g, mt19937 *rng, float *out, int64_t n) {
    for (int64_t k = 0; k < n; k++) {
        double u = mt_random_sample(rng);
        int lo = 0, hi = g->n - 1;   // first i with cum[i] > u
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (g->cum[mid] > u) hi = mid;
            else lo = mid + 1;
        }
        const double *L = g->chol + 3 * lo, *mu = g->mu + 2 * lo;
        double e0 = mt_randn(rng), e1 = mt_randn(rng);
        out[2 * k] = (float)(mu[0] + L[0] * e0);
        out[2 * k + 1] = (float)(mu[1] + L[1] * e0 + L[2] * e1);
    }
}
